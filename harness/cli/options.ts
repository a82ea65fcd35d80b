// Every option is checked before any work: a typo must not cost a kernel
// build (or a night) before it is found. Each check ends in a usage error
// (exit 2) naming the option and the value.
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError } from 'commander';
import { HarnessError } from '../errors.ts';
import { iommuModels, type IommuModel } from '../machine/topology.ts';
import { planBoots } from '../scenario/runner.ts';
import type { Scenario } from '../scenario/scenario.ts';
import { debianReleaseOf } from '../source/debian-source.ts';
import { checkGitTree, resolveCommit } from '../source/worktree.ts';
import { uncommittedFiles } from '../source/uncommitted.ts';
import { requestFromEnv } from '../machine/accel.ts';
import { checkReliedOnOptions, loadFragments } from '../build/index.ts';
import { ConfigSyntaxError } from '../build/kconfig.ts';

/** `--iommu intel,virtio`: known models, each once. */
export function parseIommus(value: string): IommuModel[] {
  const models = value.split(',').map((model) => model.trim());
  const seen = new Set<string>();
  for (const model of models) {
    if (!iommuModels.includes(model as IommuModel)) throw new InvalidArgumentError(`unknown vIOMMU "${model}" (known: ${iommuModels.join(', ')})`);
    if (seen.has(model)) throw new InvalidArgumentError(`"${model}" is listed twice`);
    seen.add(model);
  }
  return models as IommuModel[];
}

/** A whole number of at least 1 (`--cycles`, `--runs`). */
export function parsePositive(value: string): number {
  const number = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isInteger(number) || number < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return number;
}

/** At least one selected scenario runs on one selected vIOMMU; otherwise there would be nothing to boot for. */
export function checkCoverage(iommus: IommuModel[], scenarios: readonly Scenario[]): void {
  if (planBoots(iommus, scenarios).length > 0) return;
  const runsOn = scenarios.map((scenario) => `${scenario.name} runs on ${scenario.iommus.join(', ')}`).join('; ');
  throw new HarnessError('usage', `no selected scenario runs on --iommu ${iommus.join(',')} (${runsOn})`);
}

/** A file the harness will write at the end (`--json`): its folder must exist and be writable now. */
export async function checkOutputFile(file: string, option: string): Promise<void> {
  const target = await stat(file).catch(() => undefined);
  if (target?.isDirectory()) throw new HarnessError('usage', `${option} ${file} is a folder, not a file`);
  const dir = path.dirname(path.resolve(file));
  const parent = await stat(dir).catch(() => undefined);
  if (!parent) throw new HarnessError('usage', `${option} ${file}: folder ${dir} does not exist`);
  if (!parent.isDirectory()) throw new HarnessError('usage', `${option} ${file}: ${dir} is not a folder`);
  if (!(await writable(target ? file : dir))) throw new HarnessError('usage', `${option} ${file}: ${target ? 'the file' : `folder ${dir}`} is not writable`);
}

/** A folder the harness will create or fill (`--out`): not a file, and its nearest existing ancestor writable. */
export async function checkOutputDir(dir: string, option: string): Promise<void> {
  let existing = path.resolve(dir);
  for (;;) {
    const info = await stat(existing).catch(() => undefined);
    if (info) {
      if (!info.isDirectory()) throw new HarnessError('usage', `${option} ${dir}: ${existing} is not a folder`);
      if (!(await writable(existing))) throw new HarnessError('usage', `${option} ${dir}: ${existing} is not writable`);
      return;
    }
    existing = path.dirname(existing);
  }
}

/** Files the harness reads (`--patch`, `--kconfig`, `--known-issues`, `--plan`): each readable now. */
export async function checkReadable(files: readonly string[], option: string): Promise<void> {
  for (const file of files) {
    const info = await stat(file).catch(() => undefined);
    if (!info) throw new HarnessError('usage', `${option} ${file}: no such file`);
    if (info.isDirectory()) throw new HarnessError('usage', `${option} ${file} is a folder, not a file`);
    if (!(await readable(file))) throw new HarnessError('usage', `${option} ${file} is not readable`);
  }
}

/** `--src DIR` is a git tree (said before anything is looked up in it) and `ref` a commit of it. */
export async function checkSource(src: string | undefined, refs: { option: string; ref: string }[], srcOption = '--src'): Promise<void> {
  // Debian's packaged sources are unpacked later, after the preflight; a bad release name is refused here.
  if (src === undefined || debianReleaseOf(src)) return;
  await checkGitTree(src, srcOption);
  for (const { option, ref } of refs) {
    await resolveCommit(src, ref).catch((error: unknown) => {
      throw error instanceof HarnessError && error.kind === 'usage' ? new HarnessError('usage', `${option} ${ref} is not a commit in ${src}`) : error;
    });
  }
  // A tree tested at HEAD includes its uncommitted changes; another --ref cannot,
  // and building it without them would test something the developer did not ask for.
  // (bisect's --good/--bad walk history, which no edit is part of; each trial says the edit is left out.)
  const other = refs.find(({ option, ref }) => option === '--ref' && ref !== 'HEAD');
  if (!other) return;
  const files = await uncommittedFiles(src);
  if (files.length === 0) return;
  const shown = files.length > 10 ? `${files.slice(0, 10).join(', ')} and ${files.length - 10} more` : files.join(', ');
  throw new HarnessError(
    'usage',
    `${srcOption} ${src} has uncommitted changes (${shown}), which are not of ${other.option} ${other.ref}: test HEAD (the default) to include them, commit them, or pass them as --patch`,
  );
}

/** The fragments parse and leave on what the verdicts rely on (a profile's fragment is checked again with the build). */
async function checkFragments(kconfigs: readonly string[]): Promise<void> {
  try {
    checkReliedOnOptions(await loadFragments([...kconfigs]));
  } catch (error) {
    if (error instanceof ConfigSyntaxError) throw new HarnessError('config', error.message, { logPath: error.source });
    throw error;
  }
}

const writable = (file: string) => access(file, constants.W_OK).then(() => true, () => false);
const readable = (file: string) => access(file, constants.R_OK).then(() => true, () => false);

export interface RunOptionValues {
  src?: string;
  /** The revisions of `src` the command will use, with the option that named each. */
  refs: { option: string; ref: string }[];
  patches: readonly string[];
  kconfigs: readonly string[];
  knownIssues?: string | undefined;
  json?: string | undefined;
  iommus: IommuModel[];
  scenarios: readonly Scenario[];
  accel?: string;
}

/** What run, check and bisect share: the cheap checks first, git last. */
export async function checkRunOptions(values: RunOptionValues): Promise<void> {
  checkCoverage(values.iommus, values.scenarios);
  // Said now, not after the build at the first boot.
  requestFromEnv();
  if (values.accel === 'kvm' && !(await access('/dev/kvm', constants.R_OK | constants.W_OK).then(() => true, () => false))) {
    throw new HarnessError('usage', '--accel kvm: /dev/kvm is missing or not accessible (--accel auto uses KVM only where it works)');
  }
  await checkReadable(values.patches, '--patch');
  await checkReadable(values.kconfigs, '--kconfig');
  await checkFragments(values.kconfigs);
  if (values.knownIssues) await checkReadable([values.knownIssues], '--known-issues');
  if (values.json) await checkOutputFile(values.json, '--json');
  await checkSource(values.src, values.refs);
}
