// Shared by the integration tests: reading a HarnessResult the way a failing
// assertion needs it.
import type { ExecutionContext } from 'ava';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { createProgress, silentProgress } from '../../harness/log.ts';
import type { HarnessResult, ScenarioRun } from '../../harness/report/result.ts';
import { runHarness } from '../../harness/run.ts';
import type { IommuModel } from '../../harness/machine/topology.ts';
import type { Scenario } from '../../harness/scenario/scenario.ts';

export const patch = (name: string) => fileURLToPath(new URL(`../fixtures/patches/${name}`, import.meta.url));
export const cli = fileURLToPath(new URL('../../bin/iommu-harness.js', import.meta.url));
/** Progress lines in CI logs, silence at a developer's terminal. */
export const progress = process.env.CI ? createProgress(process.stderr) : silentProgress;

/** One line per run: what a failed assertion should show. */
export function summary(result: HarnessResult): string {
  return result.runs
    .map((run) => `${run.iommu}/${run.scenario}: ${run.verdict} groups=${run.groups.length} leaks=${run.leaks.length} reports=${run.reports.map((r) => `${r.kind}: ${r.title}`).join('; ')}${run.error ? ` error=${run.error}` : ''}`)
    .join('\n');
}

export function only(result: HarnessResult, iommu: string, scenario: string): ScenarioRun {
  const run = result.runs.find((candidate) => candidate.iommu === iommu && candidate.scenario === scenario);
  if (!run) throw new Error(`no run ${iommu}/${scenario} in\n${summary(result)}`);
  return run;
}

/** Exactly one leak, of a group that is listed unreleased with the same devices, in `step`. */
export function assertOneGroupLeak(t: ExecutionContext, run: ScenarioRun, step: string): void {
  t.is(run.leaks.length, 1);
  const [leak] = run.leaks;
  const group = run.groups.find((candidate) => candidate.id === leak!.group && !candidate.released);
  t.truthy(group, 'the leaked group is listed, unreleased');
  t.deepEqual(leak!.devices, group!.devices);
  t.is(leak!.step, step);
  t.is(run.error, undefined);
}

/** The default kernel with the given patches (none: the clean kernel) on several vIOMMUs and scenarios. */
export async function runMatrix(t: ExecutionContext, patchNames: string[], iommus: IommuModel[], scenarios: Scenario[]): Promise<HarnessResult> {
  const result = await runHarness({ patches: patchNames.map(patch), kconfigs: [], iommus, scenarios, progress });
  t.log(summary(result));
  t.log(`build ${result.timings.buildSeconds.toFixed(0)} s, boots ${JSON.stringify(result.timings.bootSeconds)}, total ${result.timings.totalSeconds.toFixed(0)} s`);
  return result;
}

/** Every (vIOMMU, scenario) cell the run could have: scenarios only on the machines they apply to. */
export function cells(iommus: IommuModel[], scenarios: Scenario[]): { iommu: IommuModel; scenario: Scenario }[] {
  return iommus.flatMap((iommu) => scenarios.filter((scenario) => scenario.iommus.includes(iommu)).map((scenario) => ({ iommu, scenario })));
}

/** The default kernel with one fault-injection patch, one scenario, intel-iommu: the run and its judgement. */
export async function runWithPatch(t: ExecutionContext, patchName: string, scenario: Scenario): Promise<{ result: HarnessResult; run: ScenarioRun }> {
  const result = await runHarness({ patches: [patch(patchName)], kconfigs: [], iommus: ['intel'], scenarios: [scenario], progress });
  t.log(summary(result));
  t.log(`incremental build ${result.timings.buildSeconds.toFixed(0)} s`);
  return { result, run: only(result, 'intel', scenario.name) };
}

/** `iommu-harness run ARGS` started in the background, once its first guest is up: the child and its log folder. */
export async function startRunUntilGuestUp(args: string[], timeoutMs = 15 * 60_000, env: Record<string, string> = {}): Promise<{ child: ResultPromise<{ reject: false; all: true; env: Record<string, string> }>; runDir: string }> {
  const child = execa('node', [cli, 'run', ...args], { reject: false, all: true, env });
  let runDir = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the guest never came up')), timeoutMs);
    child.stderr?.on('data', (chunk: Buffer) => {
      runDir ||= /logs: (\S+)/.exec(chunk.toString())?.[1] ?? '';
      if (/guest up/.test(chunk.toString())) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  return { child, runDir };
}
