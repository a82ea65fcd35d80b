// The `nightly` and `merge-reports` commands, kept here so the CLI's main file
// only registers them.
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { cacheLayout, cacheRoot, prepareCache } from '../cache.ts';
import { checkOutputDir, checkReadable, checkSource } from '../cli/options.ts';
import { HarnessError } from '../errors.ts';
import { createProgress } from '../log.ts';
import { parseShard, type Shard } from './matrix.ts';
import type { Night } from './night.ts';
import type { Plan } from './plan.ts';
import type { NightlyOutcome } from './runner.ts';

function shardOption(value: string): Shard {
  try {
    return parseShard(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

export function defaultNightDir(now = new Date()): string {
  return path.join(cacheRoot(), 'nights', now.toISOString().slice(0, 10));
}

export function renderNightSummary(outcome: NightlyOutcome): string {
  const { night } = outcome;
  const s = night.summary;
  const byId = new Map(night.findings.map((finding) => [finding.signature, finding]));
  const cellsById = new Map(night.cells.map((cell) => [cell.id, cell]));
  const { diff } = night;
  const newErrors = new Set(diff.newErrors);
  const stillErrors = new Set(diff.stillErrors);
  const lines = [
    `night ${night.name}${night.shard ? ` (shard ${night.shard.index}/${night.shard.count})` : ''}: ${s.cells} cells, ${s.pass} pass, ${s.inconclusive} inconclusive, ${s.fail} fail, ${s.error} error, ${s.notRun} not run`,
    `against ${night.baseline ? `night ${night.baseline.name}` : 'no baseline'}: ${s.new} new, ${s.still} still failing, ${s.fixed} fixed, ${s.known} known`,
    `inconclusive cells: ${diff.newInconclusive.length} new, ${diff.stillInconclusive.length} as in the baseline; error cells: ${diff.newErrors.length} new, ${diff.stillErrors.length} as in the baseline`,
    ...diff.new.map((signature) => `NEW: ${signature}${byId.get(signature)?.runs.length ? ` (${byId.get(signature)!.runs.join(', ')})` : ''}`),
    ...diff.newBuildErrors.map((build) => `NEW BUILD ERROR: ${build}: ${errorLine(night.builds.find((b) => `${b.kernel}.${b.profile}` === build)?.error)}`),
    ...night.runs
      .filter((run) => run.error)
      .map((run) => `${newErrors.has(run.cell) ? 'NEW ERROR' : stillErrors.has(run.cell) ? 'still error' : 'ERROR'}: ${run.unit}: ${errorLine(run.error)}`),
    ...diff.newErrors.filter((id) => cellsById.get(id)?.verdict === 'not-run').map((id) => `NEW NOT RUN: ${id}`),
    ...diff.newInconclusive.map((id) => `NEW INCONCLUSIVE: ${id}: ${(cellsById.get(id)?.inconclusive ?? []).join('; ')}`),
    ...diff.stillInconclusive.map((id) => `still inconclusive: ${id}`),
    `results: ${path.join(outcome.dir, 'night.json')}`,
    `report:  ${path.join(outcome.dir, 'index.html')}`,
    `junit:   ${path.join(outcome.dir, 'junit.xml')}`,
    `bundle:  ${outcome.tarball}`,
    `exit code ${night.exitCode}: ${exitMeaning(night)}`,
  ];
  return `${lines.join('\n')}\n`;
}

function errorLine(error: { kind: string; message: string } | undefined): string {
  return error ? `${error.kind}: ${error.message.split('\n')[0]}` : 'unknown error';
}

function exitMeaning(night: Night): string {
  if (night.exitCode === 1) return 'new failures';
  if (night.exitCode === 3) return 'no new failure, but new errors (runs or builds that could not be judged, and did not fail so in the baseline)';
  if (night.exitCode === 4) return 'no new failure or error, but cells newly inconclusive (or for a reason the baseline did not give)';
  return 'nothing new';
}

/** `nightly --help`'s epilog: what the exit code says. */
export const nightlyExitHelp = `
Exit codes say what is new against the baseline (the previous night.json;
1 outranks 3, which outranks 4):
  0  nothing new: failures the baseline had ("still failing"), known issues,
     cells inconclusive for the same reasons as in the baseline
     ("still-inconclusive") and cells erroring with the same error
     ("still-error", "still-not-run") are shown but do not count
  1  a new failure (a finding signature the baseline does not have)
  2  bad plan or usage
  3  a new error: a cell that errored or did not run tonight and did not in
     the baseline (or with another error), or a build that failed and did not
     (or otherwise)
  4  a new inconclusive cell: one that was not inconclusive in the baseline, or
     is for a reason the baseline's cell did not give
Without a baseline, every failure, error and inconclusive cell is new. Reasons
and errors are compared normalized (night.json cells[].inconclusive and
cells[].errors): numbers (group ids, PIDs, timestamps, counts) read as N, PCI
addresses kept. A baseline written before these fields existed gives none, so
tonight's inconclusive and error cells count as new against it.
`;

/** The plan's trees, revisions and files, checked before the night: each failure names the plan's field. */
async function checkPlanFiles(plan: Plan, file: string): Promise<void> {
  const named = (error: unknown) => {
    throw error instanceof HarnessError && error.kind === 'usage' ? new HarnessError('usage', `invalid plan ${file}: ${error.message}`) : error;
  };
  for (const [index, kernel] of plan.kernels.entries()) {
    await checkReadable(kernel.patches, `kernels[${index}].patches:`).catch(named);
    await checkSource(kernel.src, [{ option: `kernels[${index}].ref:`, ref: kernel.ref ?? 'HEAD' }], `kernels[${index}].src:`).catch(named);
  }
  for (const [index, profile] of plan.profiles.entries()) await checkReadable(profile.kconfigs, `profiles[${index}].kconfigs:`).catch(named);
  if (plan.knownIssues) await checkReadable([plan.knownIssues], 'knownIssues:').catch(named);
}

export function addNightlyCommands(program: Command): void {
  program
    .command('nightly')
    .description('run a nightly plan (kernels x profiles x vIOMMUs x scenarios); the exit code says only what is new against the baseline: 1 new failures, 3 new errors, 4 newly inconclusive cells')
    .requiredOption('--plan <file>', 'the plan (JSON; see scenarios/nightly-plan.example.json)')
    .option('--out <dir>', "this night's folder (default: CACHE/nights/DATE)")
    .option('--shard <i/n>', 'run only slice i of n of the matrix', shardOption)
    .option('--resume', 'continue an interrupted night in --out, skipping finished runs')
    .option('--baseline <file>', "a night.json to compare against (default: the latest earlier night next to --out)")
    .option('--known-issues <file>', "known-issues file (default: the plan's, else scenarios/known-issues.txt)")
    .option('--quiet', 'print only the summary')
    .addHelpText('after', nightlyExitHelp)
    .action(async (options) => {
      // Everything a night needs is checked before it starts: a typo must not surface after hours of runs.
      // Loaded when used: the nightly machinery (tar, zod) costs every other command ~0.2 s of start-up.
      const { loadBaseline, loadPlan, planUnits, runNightly } = await import('./runner.ts');
      const plan = await loadPlan(options.plan);
      if (planUnits(plan).length === 0) throw new HarnessError('usage', `plan ${options.plan}: no scenario of the plan runs on its vIOMMUs (${plan.iommus.join(', ')})`);
      await checkPlanFiles(plan, options.plan);
      const dir = options.out ?? defaultNightDir();
      if (options.out) await checkOutputDir(options.out, '--out');
      if (options.knownIssues) await checkReadable([options.knownIssues], '--known-issues');
      if (options.baseline) await loadBaseline(dir, options.baseline);
      await prepareCache(cacheLayout());
      const outcome = await runNightly({
        plan,
        dir,
        ...(options.shard ? { shard: options.shard } : {}),
        resume: Boolean(options.resume),
        ...(options.baseline ? { baseline: options.baseline } : {}),
        ...(options.knownIssues ? { knownIssuesFile: options.knownIssues } : {}),
        progress: createProgress(process.stderr, options.quiet),
      });
      process.stdout.write(renderNightSummary(outcome));
      process.exitCode = outcome.night.exitCode;
    });

  program
    .command('merge-reports')
    .description('join the folders of nightly shards into one night: results, JUnit, HTML, tarball; exit codes as nightly (what is new against the baseline)')
    .argument('<shard...>', 'shard night folders (or their night.json)')
    .requiredOption('--out <dir>', "the merged night's folder")
    .option('--baseline <file>', 'a night.json to compare against (default: the latest earlier night next to --out)')
    .addHelpText('after', nightlyExitHelp)
    .action(async (shards: string[], options) => {
      await checkOutputDir(options.out, '--out');
      const { mergeNightReports } = await import('./merge-reports.ts');
      const outcome = await mergeNightReports({ shards, out: options.out, ...(options.baseline ? { baseline: options.baseline } : {}) });
      process.stdout.write(renderNightSummary(outcome));
      process.exitCode = outcome.night.exitCode;
    });
}
