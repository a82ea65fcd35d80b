// The whole job, as a library call: kernel, guest image, machines,
// scenarios, verdict. The CLI and the tests both go through here.
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { obtainKernel, withKernelPlace, type KernelRequest, type ObtainedKernel } from './build/index.ts';
import { cacheLayout, ensureDir, type CacheLayout } from './cache.ts';
import { HarnessError } from './errors.ts';
import { kconfigDir } from './build/index.ts';
import { obtainSelftests, type BuiltSuite } from './selftest/build.ts';
import { guestSelftestDir, type SelftestDir } from './selftest/suites.ts';
import type { SelftestContext } from './scenario/guest.ts';
import { buildGuestImage, type GuestImage } from './image/initramfs.ts';
import { ensureKeys, type HarnessKeys } from './image/keys.ts';
import type { Progress } from './log.ts';
import { preflight } from './host/preflight.ts';
import { debianReleaseOf } from './source/debian-source.ts';
import { chooseAccel } from './machine/accel.ts';
import { sweepDeadMachines, sweepStaging } from './machine/leftovers.ts';
import type { Accel } from './machine/qemu-args.ts';
import type { BootTimeline } from './machine/boot-timeline.ts';
import type { IommuModel } from './machine/topology.ts';
import { archOf, foreignArchAccel, hostArch, type Arch } from './machine/arches.ts';
import { machineOf } from './machine/machines.ts';
import { KnownIssuesError, parseKnownIssues, type KnownIssue } from './oracle/index.ts';
import { overallVerdict, verdictWithCoverage, type HarnessResult, type ScenarioRun } from './report/result.ts';
import { readBuiltChanges } from './build/built-files.ts';
import { gatherProvenance } from './report/provenance.ts';
import { patchCoverage, type PatchCoverage } from './build/patch-coverage.ts';
import { featuresOf } from './scenario/features.ts';
import { retryable, retryPlan, mergeRetried } from './scenario/retry.ts';
import { planBoots, runBoot, type BootPlan } from './scenario/runner.ts';
import { symbolizeRuns } from './report/symbolize.ts';
import { unusedKnownIssues } from './report/verdict.ts';
import type { Scenario } from './scenario/scenario.ts';

export const defaultKnownIssues = fileURLToPath(new URL('../scenarios/known-issues.txt', import.meta.url));

export interface RunRequest extends KernelRequest {
  iommus: IommuModel[];
  scenarios: readonly Scenario[];
  accel?: Accel | 'auto';
  knownIssuesFile?: string;
  /** Repeat each scenario this many times in its boot. */
  cycles?: number;
  /** Boots at once; default: one per two cores, since each guest has two vCPUs. */
  parallelBoots?: number;
  /** The config profile's name (`--profile`), and the command line, for the result to reproduce itself. */
  profile?: string;
  commandLine?: string[];
  /** Where this run's logs go; a fresh folder under the cache by default. */
  runDir?: string;
  /** Seconds each selftest program may spend starting cases (`--selftest-budget`); the cases it leaves are listed as not reached. */
  selftestBudgetSeconds?: number;
  progress: Progress;
  layout?: CacheLayout;
}

/** A kernel and a guest image ready to boot: what a caller needs to drive machines itself. */
export interface PreparedKernel {
  kernel: ObtainedKernel;
  image: GuestImage;
  keys: HarnessKeys;
  /** The tree's own test programs the image carries (or why it has none), when asked for. */
  selftests?: BuiltSuite[];
}

export async function prepareKernel(request: KernelRequest, progress: Progress, layout = cacheLayout(), options: { selftests?: readonly SelftestDir[] } = {}): Promise<PreparedKernel> {
  const selftestDirs = options.selftests ?? [];
  // Milliseconds, and before any unpack or build: a machine that lacks a tool must not find out after the build.
  await preflight({ debianSource: debianReleaseOf(request.src), arm64: request.arch === 'arm64', selftests: selftestDirs.length > 0 });
  for (const line of [...(await sweepDeadMachines()), ...(await sweepStaging([layout.kernels, layout.images]))]) progress.step(`cleaned up: ${line}`);
  const kernel = await obtainKernel(layout, request, progress);
  const keys = await ensureKeys(layout);
  const selftests = selftestDirs.length ? await obtainSelftests(layout, request, kernel, selftestDirs, progress) : undefined;
  const extra = (selftests ?? []).flatMap((suite) =>
    'programs' in suite ? suite.programs.map((program) => ({ path: `${guestSelftestDir(suite.dir).slice(1)}/${program}`, source: path.join(suite.hostDir, program), mode: 0o755 })) : [],
  );
  const image = await buildGuestImage(layout, keys, kernel.artifacts.headers, kernel.artifacts.arch, extra);
  return { kernel, image, keys, ...(selftests ? { selftests } : {}) };
}

/** The fragments of kconfigs/scenarios/ the selected scenarios need beyond the profile, each once. */
export function scenarioKconfigs(scenarios: readonly Scenario[]): string[] {
  return [...new Set(scenarios.flatMap((scenario) => (scenario.kconfig ? [path.join(kconfigDir, 'scenarios', scenario.kconfig)] : [])))];
}

/** What the guest's selftest scenarios are told: the programs the image carries per folder, or why there are none. */
function selftestContext(built: BuiltSuite[] | undefined, budgetSeconds: number | undefined): SelftestContext {
  const suites: SelftestContext['suites'] = {};
  for (const suite of built ?? []) suites[suite.dir] = 'programs' in suite ? { programs: suite.programs } : { missing: suite.missing };
  return { suites, ...(budgetSeconds !== undefined ? { budgetSeconds } : {}) };
}

export async function loadKnownIssues(file = defaultKnownIssues): Promise<KnownIssue[]> {
  const text = await readFile(file, 'utf8').catch(() => {
    throw new HarnessError('usage', `cannot read known-issues file ${file}`);
  });
  try {
    return parseKnownIssues(text);
  } catch (error) {
    if (error instanceof KnownIssuesError) throw new HarnessError('usage', `${file}: ${error.message}`);
    throw error;
  }
}

/**
 * Boots at once: one per core, as memory allows (a guest takes 1 GB and QEMU
 * some more). A guest spends most of a scenario waiting (pciehp's 5 s button
 * delay, a held device, its own round trips), so two TCG guests on two cores
 * finish the default run in 31 s where one after the other take 57 s.
 */
export function defaultParallelBoots(): number {
  return Math.max(1, Math.min(os.availableParallelism(), Math.floor(os.totalmem() / (1.5 * 1024 ** 3))));
}

export function newRunDir(layout: CacheLayout): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return path.join(layout.runs, `${stamp}-${process.pid}`);
}

export async function runHarness(request: RunRequest): Promise<HarnessResult> {
  const started = Date.now();
  const layout = request.layout ?? cacheLayout();
  const { progress } = request;
  const known = await loadKnownIssues(request.knownIssuesFile);
  // One kernel and guest image per architecture among the selected machines
  // (machines.ts names each machine's arch): the q35 machines share x86_64's,
  // smmuv3 boots arm64's. `prepared` is the first machine's architecture's:
  // the result's kernel fields describe it. Only a kernel of the host's own
  // architecture is probed for KVM; another architecture's machines run under TCG.
  const archs = [...new Set(request.iommus.map((iommu) => machineOf(iommu).arch))];
  // A scenario that needs a kernel of its own (the selftests) adds its fragment to the run's kernel.
  const kconfigs = [...request.kconfigs, ...scenarioKconfigs(request.scenarios)];
  const selftestDirs = [...new Set(request.scenarios.flatMap((scenario) => scenario.selftests ?? []))];
  const preparedByArch = new Map<Arch, PreparedKernel>();
  for (const arch of archs) preparedByArch.set(arch, await prepareKernel({ ...request, kconfigs, arch }, progress, layout, { selftests: selftestDirs }));
  const preparedFor = (iommu: IommuModel) => preparedByArch.get(machineOf(iommu).arch) as PreparedKernel;
  const prepared = preparedByArch.get(archs[0] ?? 'x86_64') as PreparedKernel;
  const hostKernel = preparedByArch.get(hostArch() ?? 'x86_64');
  const kvmSubject = { kernel: (hostKernel ?? prepared).kernel.artifacts.bzImage, layout };
  const chooseFor = async (arch: Arch) => foreignArchAccel(arch) ?? (await chooseAccel(request.accel ?? 'auto', process.env, kvmSubject));
  const accel = await chooseFor(hostKernel ? (hostArch() as Arch) : (archs[0] as Arch));
  progress.step(`accelerator: ${accel.accel} (${accel.reason})`);
  // The machines of another architecture than the host's, when the line above was about the host's.
  for (const arch of archs.filter((each) => hostKernel && each !== hostArch())) progress.step(`accelerator for ${arch}: tcg (${foreignArchAccel(arch)?.reason})`);
  const runDir = await ensureDir(request.runDir ?? newRunDir(layout));
  progress.step(`logs: ${runDir}`);

  // Steps that need a feature this kernel lacks (6.1: iommufd) are skipped with the reason.
  const featuresByArch = new Map<Arch, ReturnType<typeof featuresOf>>();
  for (const [arch, kernel] of preparedByArch) featuresByArch.set(arch, featuresOf(await readFile(kernel.kernel.artifacts.config, 'utf8')));
  const plans = planBoots(request.iommus, request.scenarios, request.cycles);
  if (plans.length === 0) throw new HarnessError('usage', 'no selected scenario runs on the selected vIOMMUs');
  const parallel = request.parallelBoots ?? defaultParallelBoots();
  const bootAndRun = async (plan: BootPlan) => {
    // Asked per boot: after a silent KVM boot fell back to TCG, the rest start on TCG.
    const bootAccel = await chooseFor(machineOf(plan.iommu).arch);
    const kernel = preparedFor(plan.iommu);
    return runBoot(plan, {
      bzImage: kernel.kernel.artifacts.bzImage,
      vmlinux: kernel.kernel.artifacts.vmlinux,
      initrd: kernel.image.path,
      keys: kernel.keys,
      accel: bootAccel.accel,
      accelAutomatic: bootAccel.automatic,
      runDir,
      known,
      progress,
      ...(request.cycles ? { cycles: request.cycles } : {}),
      kmemleak: kernel.kernel.artifacts.kmemleak,
      features: featuresByArch.get(machineOf(plan.iommu).arch) as ReturnType<typeof featuresOf>,
      selftests: selftestContext(kernel.selftests, request.selftestBudgetSeconds),
    });
  };
  const outcomes = await mapWithLimit(plans, parallel, async (plan) => {
    const first = await bootAndRun(plan);
    if (!retryable(first)) return first;
    const { scenario, cycle } = first.lost;
    progress.warn(`${plan.id}: the guest was lost in ${scenario}${cycle > 1 ? ` cycle ${cycle}` : ''} with nothing found; the rest of the boot runs again in a new one`);
    return mergeRetried(first, await bootAndRun(retryPlan(plan, first.lost)));
  });
  const runs: ScenarioRun[] = outcomes.flatMap((outcome) => outcome.runs);
  for (const [arch, kernel] of preparedByArch) {
    const place = kernel.kernel.place;
    await symbolizeRuns(runs.filter((run) => machineOf(run.iommu).arch === arch), kernel.kernel.artifacts.vmlinux, archOf(arch).crossCompile, (lookup) =>
      withKernelPlace(layout, place, progress, () => lookup(place.buildDir)),
    );
  }
  const bootSeconds: HarnessResult['timings']['bootSeconds'] = {};
  const bootTimelines: Record<string, BootTimeline> = {};
  plans.forEach((plan, index) => {
    const outcome = outcomes[index];
    if (outcome?.bootSeconds !== undefined) bootSeconds[plan.id] = outcome.bootSeconds;
    if (outcome?.bootTimeline) bootTimelines[plan.id] = outcome.bootTimeline;
  });
  const coverage = await coverageOf([...preparedByArch.values()].map((each) => each.kernel), runs);
  return {
    verdict: verdictWithCoverage(overallVerdict(runs), coverage),
    kernel: { ...prepared.kernel.source, release: prepared.kernel.artifacts.release, config: prepared.kernel.artifacts.config, buildLog: prepared.kernel.artifacts.buildLog },
    runs,
    unusedKnownIssues: unusedKnownIssues(known, runs, prepared.kernel.artifacts.release),
    timings: { buildSeconds: [...preparedByArch.values()].reduce((sum, each) => sum + each.kernel.buildSeconds, 0), bootSeconds, bootTimelines, totalSeconds: (Date.now() - started) / 1000 },
    // Asked again at the end: a silent KVM boot may have moved the run to TCG.
    accelerator: await chooseFor(hostKernel ? (hostArch() as Arch) : (archs[0] as Arch)).then(({ accel, reason }) => ({ accel, reason })),
    ...(coverage ? { patchCoverage: coverage } : {}),
    provenance: await gatherProvenance({
      commandLine: request.commandLine ?? process.argv.slice(2),
      startedAt: new Date(started),
      ...(request.profile ? { profile: request.profile } : {}),
      kconfigs,
      scenarios: request.scenarios.map((scenario) => scenario.name),
      machines: request.iommus,
      patches: request.patches,
      ...(prepared.kernel.source.source.startsWith('debian:') ? {} : { kernelRepo: prepared.kernel.source.source }),
      kernelCommit: prepared.kernel.source.commit,
    }),
    ...(coverage?.inconclusive ? { inconclusive: [coverage.inconclusive] } : {}),
  };
}

/**
 * The changed files held against the build and the machines that booted.
 * Every kernel obtainKernel returns has its record (one without is rebuilt).
 * With a kernel per architecture, a file counts as built when any of them built it.
 */
export async function coverageOf(kernels: ObtainedKernel | ObtainedKernel[], runs: ScenarioRun[]): Promise<PatchCoverage | undefined> {
  const records = await Promise.all((Array.isArray(kernels) ? kernels : [kernels]).map((kernel) => readBuiltChanges(kernel.artifacts.dir)));
  const first = records[0];
  if (!first || records.some((record) => !record)) return undefined;
  const built = new Set(records.flatMap((record) => record?.built ?? []));
  const booted = [...new Set(runs.map((run) => run.iommu))];
  return patchCoverage(first.changed, built, booted);
}

/** Runs `work` over `items` with at most `limit` at once, keeping the order of results. */
async function mapWithLimit<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
