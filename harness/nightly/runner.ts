// Runs a night (or one shard of it): each kernel x profile prepared once, then
// one boot per unit through runHarness, each result saved as soon as it ends
// so --resume can continue, then the outputs and the tarball.
import { copyFile, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { builtinProfiles } from '../build/index.ts';
import { cacheLayout, ensureDir } from '../cache.ts';
import { describeError, HarnessError } from '../errors.ts';
import { exists } from '../files.ts';
import type { Progress } from '../log.ts';
import { reapAll } from '../machine/reaper.ts';
import type { ScenarioRun } from '../report/result.ts';
import { prepareKernel, runHarness, scenarioKconfigs } from '../run.ts';
import type { Scenario } from '../scenario/scenario.ts';
import { everyScenario as allScenarios, scenarioByName, scenarios as defaultScenarios } from '../../scenarios/index.ts';
import {
  buildDirOf,
  findPreviousNight,
  nightFiles,
  readBuilds,
  readNight,
  readUnits,
  runDirOf,
  unitFile,
  writeJson,
  writeNightOutputs,
} from './folder.ts';
import { cellsOf, expandMatrix, selectShard, type MatrixUnit, type Shard } from './matrix.ts';
import { assembleNight, type Night, type NightBuild, type NightError, type NightRun } from './night.ts';
import { parsePlan, PlanError, type Plan, type PlanKernel, type PlanProfile } from './plan.ts';

export async function loadPlan(file: string): Promise<Plan> {
  const text = await readFile(file, 'utf8').catch(() => {
    throw new HarnessError('usage', `cannot read plan ${file}`);
  });
  try {
    return parsePlan(text, file, {
      baseDir: path.dirname(path.resolve(file)),
      scenarios: allScenarios.map((scenario) => scenario.name),
      defaultScenarios: defaultScenarios.map((scenario) => scenario.name),
      builtinProfiles: await builtinProfiles(),
    });
  } catch (error) {
    if (error instanceof PlanError) throw new HarnessError('usage', `invalid plan ${error.message}`);
    throw error;
  }
}

export function planUnits(plan: Plan): MatrixUnit[] {
  return expandMatrix(plan, Object.fromEntries(allScenarios.map((scenario) => [scenario.name, scenario.iommus])));
}

export interface NightlyRequest {
  plan: Plan;
  /** The night's folder; its name is the night's name. */
  dir: string;
  shard?: Shard;
  resume?: boolean;
  /** A night.json (or its folder) to compare against; default: the previous night next to `dir`. */
  baseline?: string;
  /** Overrides the plan's. */
  knownIssuesFile?: string;
  progress: Progress;
}

export interface NightlyOutcome {
  night: Night;
  dir: string;
  tarball: string;
}

export async function runNightly(request: NightlyRequest): Promise<NightlyOutcome> {
  const { plan, progress } = request;
  const dir = path.resolve(request.dir);
  const started = new Date();
  const deadline = started.getTime() + plan.timeouts.overallMinutes * 60_000;
  const all = planUnits(plan);
  const selected = request.shard ? selectShard(all, request.shard) : all;
  progress.step(`night ${path.basename(dir)}: ${selected.length} of ${all.length} run(s)${request.shard ? ` (shard ${request.shard.index}/${request.shard.count})` : ''} in ${dir}`);

  // A bad --baseline is said before the night, not after it.
  const baseline = await loadBaseline(dir, request.baseline);
  await ensureDir(dir);
  const planFile = path.join(dir, nightFiles.plan);
  const done = new Map<string, NightRun>();
  if (await exists(planFile)) {
    if (!request.resume) throw new HarnessError('usage', `${dir} already holds a night; pass --resume to continue it, or another --out`);
    const previousPlan = JSON.parse(await readFile(planFile, 'utf8')) as Plan;
    if (JSON.stringify(previousPlan) !== JSON.stringify(plan)) throw new HarnessError('usage', `${dir} was started with another plan (${planFile}); --resume needs the same one`);
    const wanted = new Set(selected.map((unit) => unit.unit));
    for (const run of await readUnits(dir)) if (wanted.has(run.unit)) done.set(run.unit, run);
    progress.step(`resuming: ${done.size} run(s) already done`);
  } else {
    await writeJson(planFile, plan);
  }

  const builds = new Map((await readBuilds(dir)).map((build) => [`${build.kernel}.${build.profile}`, build]));
  const pending = selected.filter((unit) => !done.has(unit.unit));
  let position = selected.length - pending.length;
  for (const group of groupConsecutive(pending, (unit) => `${unit.kernel}.${unit.profile}`)) {
    const kernel = plan.kernels.find((k) => k.name === group[0]!.kernel)!;
    const profile = plan.profiles.find((p) => p.name === group[0]!.profile)!;
    let build: NightBuild;
    if (Date.now() > deadline) {
      build = { kernel: kernel.name, profile: profile.name, patches: kernel.patches, error: overallTimeout(plan) };
    } else {
      build = await prepareBuild(dir, kernel, profile, progress);
      builds.set(`${kernel.name}.${profile.name}`, build);
      if (!build.error) await prepareSelftestKernel(kernel, profile, group.map((unit) => scenarioByName(unit.scenario)!), progress);
    }
    for (const unit of group) {
      position++;
      const run = build.error
        ? notRun(unit, build.error.kind === 'timeout' ? build.error : { ...build.error, message: `kernel ${kernel.name} (${profile.name}) could not be prepared: ${build.error.message}` }, build)
        : Date.now() > deadline
          ? notRun(unit, overallTimeout(plan), build)
          : await runUnit(unit, kernel, profile, build, dir, plan, request, Math.min(plan.timeouts.runMinutes * 60_000, deadline - Date.now())).catch((error: unknown) => {
              // runUnit records the run's own failures; this is one around it (its folder, its logs).
              const failure = failureOf(error);
              return notRun(unit, { kind: failure.kind, message: failure.message, ...(failure.logPath ? { log: failure.logPath } : {}) }, build);
            });
      await writeJson(unitFile(dir, unit.unit), run);
      done.set(unit.unit, run);
      progress.step(`[${position}/${selected.length}] ${unit.unit}: ${run.verdict.toUpperCase()}${run.error ? ` (${run.error.kind}: ${run.error.message})` : ''} in ${run.seconds.toFixed(0)} s`);
    }
  }

  const night = assembleNight({
    name: path.basename(dir),
    plan,
    cells: cellsOf(selected),
    runs: [...done.values()],
    builds: [...builds.values()].filter((build) => selected.some((unit) => unit.kernel === build.kernel && unit.profile === build.profile)),
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    ...(request.shard ? { shard: request.shard } : {}),
    ...(baseline ? { baseline } : {}),
  });
  const { tarball } = await writeNightOutputs(dir, night);
  return { night, dir, tarball };
}

export async function loadBaseline(dir: string, given: string | undefined): Promise<{ name: string; file: string; night: Night } | undefined> {
  if (given) {
    const found = await readNight(given);
    return { name: found.night.name, file: found.file, night: found.night };
  }
  const previous = await findPreviousNight(dir);
  return previous ? { name: previous.night.name, file: previous.file, night: previous.night } : undefined;
}

function overallTimeout(plan: Plan): NightError {
  return { kind: 'timeout', message: `not started: the night's overall timeout (${plan.timeouts.overallMinutes} min) had passed` };
}

function notRun(unit: MatrixUnit, error: NightError, build: NightBuild): NightRun {
  return {
    ...unitFields(unit),
    verdict: 'error',
    error,
    startedAt: new Date().toISOString(),
    seconds: 0,
    results: [],
    logs: buildLogs(build),
  };
}

function unitFields(unit: MatrixUnit) {
  return { unit: unit.unit, cell: unit.id, cycle: unit.cycle, kernel: unit.kernel, profile: unit.profile, iommu: unit.iommu, scenario: unit.scenario };
}

function buildLogs(build: NightBuild): NightRun['logs'] {
  return { ...(build.config ? { config: build.config } : {}), ...(build.buildLog ? { buildLog: build.buildLog } : {}) };
}

/**
 * The kernel the selected selftest scenarios need (the profile plus their kconfigs/scenarios/ fragment)
 * and their programs, built here with the kernel x profile so no unit's run timeout pays for a cold
 * build. A failure is the units' own to report (they build it again and say why).
 */
async function prepareSelftestKernel(kernel: PlanKernel, profile: PlanProfile, scenarios: Scenario[], progress: Progress): Promise<void> {
  const extra = scenarioKconfigs(scenarios);
  if (extra.length === 0) return;
  const request = kernelRequest(kernel, profile);
  const selftests = [...new Set(scenarios.flatMap((scenario) => scenario.selftests ?? []))];
  progress.step(`kernel ${kernel.name}, profile ${profile.name}, with ${extra.map((file) => path.basename(file)).join(', ')} for ${[...new Set(scenarios.filter((scenario) => scenario.kconfig).map((scenario) => scenario.name))].join(', ')}`);
  await prepareKernel({ ...request, kconfigs: [...request.kconfigs, ...extra] }, progress, cacheLayout(), { selftests }).catch((error: Error) => progress.warn(`the selftests' kernel did not build: ${error.message}`));
}

/** Builds (or finds in the cache) one kernel x profile and keeps its .config and build log in the night folder. */
async function prepareBuild(dir: string, kernel: PlanKernel, profile: PlanProfile, progress: Progress): Promise<NightBuild> {
  const folder = await ensureDir(buildDirOf(dir, kernel.name, profile.name));
  const relative = (file: string) => path.relative(dir, file);
  const base: NightBuild = { kernel: kernel.name, profile: profile.name, ...(kernel.src ? { source: kernel.src } : {}), patches: kernel.patches };
  progress.step(`kernel ${kernel.name}, profile ${profile.name}`);
  let build: NightBuild;
  try {
    const prepared = await prepareKernel(kernelRequest(kernel, profile), progress, cacheLayout());
    const { artifacts, source } = prepared.kernel;
    await copyFile(artifacts.config, path.join(folder, 'config'));
    const buildLog = (await exists(artifacts.buildLog)) ? path.join(folder, 'build.log') : undefined;
    if (buildLog) await copyFile(artifacts.buildLog, buildLog);
    build = {
      ...base,
      source: source.source,
      commit: source.commit,
      release: artifacts.release,
      buildSeconds: prepared.kernel.buildSeconds,
      config: relative(path.join(folder, 'config')),
      ...(buildLog ? { buildLog: relative(buildLog) } : {}),
    };
  } catch (caught) {
    const error = failureOf(caught);
    // The log that shows a failed build (or patch) goes with the night.
    let log: string | undefined;
    if (error.logPath && (await exists(error.logPath))) {
      log = path.join(folder, path.basename(error.logPath));
      await copyFile(error.logPath, log).catch(() => (log = undefined));
    }
    const excerpt = error.excerpt.length ? `\n${error.excerpt.join('\n')}` : '';
    build = { ...base, error: { kind: error.kind, message: `${error.message}${excerpt}`, ...(log ? { log: relative(log) } : {}) }, ...(log && error.kind === 'build' ? { buildLog: relative(log) } : {}) };
    progress.warn(`kernel ${kernel.name}, profile ${profile.name}: ${error.kind} error: ${error.message}`);
  }
  await writeJson(path.join(folder, 'build.json'), build);
  return build;
}

function kernelRequest(kernel: PlanKernel, profile: PlanProfile) {
  return { ...(kernel.src ? { src: kernel.src } : {}), ...(kernel.ref ? { ref: kernel.ref } : {}), patches: kernel.patches, kconfigs: profile.kconfigs };
}

async function runUnit(
  unit: MatrixUnit,
  kernel: PlanKernel,
  profile: PlanProfile,
  build: NightBuild,
  dir: string,
  plan: Plan,
  request: NightlyRequest,
  timeoutMs: number,
): Promise<NightRun> {
  const runDir = runDirOf(dir, unit.unit);
  // What an interrupted attempt left would be mistaken for this run's logs.
  await rm(runDir, { recursive: true, force: true });
  const startedAt = new Date();
  const scenario = scenarioByName(unit.scenario)!;
  const knownIssuesFile = request.knownIssuesFile ?? plan.knownIssues;
  const work = runHarness({
    ...kernelRequest(kernel, profile),
    iommus: [unit.iommu],
    scenarios: [scenario],
    accel: plan.accel,
    ...(knownIssuesFile ? { knownIssuesFile } : {}),
    runDir,
    progress: request.progress,
  });
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(resolve, Math.max(timeoutMs, 1000), 'timeout');
  });
  let error: NightError | undefined;
  let results: ScenarioRun[] = [];
  try {
    const first = await Promise.race([work, timedOut]);
    if (first === 'timeout') {
      // runHarness has no cancel: stopping its QEMU makes the boot end, and it returns or throws soon after.
      reapAll();
      await Promise.race([work.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 60_000))]);
      error = { kind: 'timeout', message: `the run took longer than ${(timeoutMs / 60_000).toFixed(1)} min and was stopped` };
    } else {
      results = first.runs;
    }
  } catch (caught) {
    const failure = failureOf(caught);
    error = { kind: failure.kind, message: failure.message, ...(failure.logPath ? { log: failure.logPath } : {}) };
  } finally {
    clearTimeout(timer);
  }
  const relative = (file: string) => (path.isAbsolute(file) ? path.relative(dir, file) : file);
  const relativeResults = results.map((result) => ({
    ...result,
    logs: { console: relative(result.logs.console), ...(result.logs.dmesg ? { dmesg: relative(result.logs.dmesg) } : {}) },
  }));
  const consoleLog = relativeResults[0]?.logs.console ?? (await firstFile(runDir, 'console.log', dir));
  const dmesg = relativeResults.find((result) => result.logs.dmesg)?.logs.dmesg;
  const judged = relativeResults.find((result) => result.verdict === 'error' && result.error);
  if (!error && judged) error = { kind: 'guest', message: `${judged.scenario}: ${judged.error}` };
  const verdict = error && !relativeResults.some((result) => result.verdict === 'fail') ? 'error' : worstVerdict(relativeResults);
  return {
    ...unitFields(unit),
    verdict,
    ...(error ? { error } : {}),
    startedAt: startedAt.toISOString(),
    seconds: (Date.now() - startedAt.getTime()) / 1000,
    results: relativeResults,
    logs: { ...(consoleLog ? { console: consoleLog } : {}), ...(dmesg ? { dmesg } : {}), ...buildLogs(build) },
  };
}

/**
 * Any error as a night records it. One that is not a HarnessError (a bug, a
 * full disk under a write) is the cell's error of kind `unexpected`: it never
 * ends the night without its night.json and JUnit.
 */
export function failureOf(error: unknown): { kind: string; message: string; excerpt: string[]; logPath?: string } {
  if (error instanceof HarnessError) return { kind: error.kind, message: error.message, excerpt: error.excerpt, ...(error.logPath ? { logPath: error.logPath } : {}) };
  return { kind: 'unexpected', message: describeError(error), excerpt: [] };
}

function worstVerdict(results: ScenarioRun[]): NightRun['verdict'] {
  if (results.some((result) => result.verdict === 'fail')) return 'fail';
  if (results.length === 0 || results.some((result) => result.verdict === 'error')) return 'error';
  if (results.some((result) => result.verdict === 'inconclusive')) return 'inconclusive';
  return 'pass';
}

async function firstFile(runDir: string, name: string, dir: string): Promise<string | undefined> {
  for (const sub of await readdir(runDir).catch(() => [] as string[])) {
    const file = path.join(runDir, sub, name);
    if (await exists(file)) return path.relative(dir, file);
  }
  return undefined;
}

function groupConsecutive<T>(items: readonly T[], key: (item: T) => string): T[][] {
  const groups: T[][] = [];
  for (const item of items) {
    const last = groups.at(-1);
    if (last && key(last[0]!) === key(item)) last.push(item);
    else groups.push([item]);
  }
  return groups;
}
