// A boot whose guest is lost to the emulator gets one more boot. Under TCG,
// QEMU 7.2 now and then loses a guest around PCI rescans (a segfault, a hang,
// a guest whose interrupts stop arriving): about once in 600 rescans here.
// That is nobody's finding, but as an error it turns a night's run or a bisect
// step into "cannot tell". So the rest of the boot runs again in a new one,
// from the cycle that was lost, and every run that comes from the new boot
// says why. A finding is never retried away: when the lost scenario's own
// run found anything, it stands as found. The one exception is a leak in the
// very step the guest was lost in: its release may simply never have reached
// the log, so it is no evidence, and the new boot runs that step again.
// A second loss stays an error. Pure.
import type { ScenarioRun } from '../report/result.ts';
import { bootScenario } from '../report/verdict.ts';
import type { BootOutcome, BootPlan, LostGuest } from './runner.ts';

/** Whether the boot's loss may be retried: its guest was lost and the runs it spoiled found nothing. */
export function retryable(outcome: BootOutcome): outcome is BootOutcome & { lost: LostGuest } {
  const { lost } = outcome;
  if (!lost) return false;
  const lostRun = outcome.runs.find((run) => run.scenario === lost.scenario);
  const bootRun = outcome.runs.find((run) => run.scenario === bootScenario);
  return lostRun !== undefined && foundNothing(lostRun, lost.step) && (bootRun === undefined || foundNothing(bootRun));
}

/** No report that is not a known issue, no failed check, no leak but one left unconfirmed by the loss. */
function foundNothing(run: ScenarioRun, lostStep?: string): boolean {
  return run.reports.every((report) => report.known) && run.failedChecks.length === 0 && run.leaks.every((leak) => leak.step === lostStep);
}

/** The boot that takes over: the scenarios from the lost one on, starting at the lost cycle. */
export function retryPlan(plan: BootPlan, lost: LostGuest): BootPlan {
  const from = plan.scenarios.findIndex((scenario) => scenario.name === lost.scenario);
  return {
    ...plan,
    id: `${plan.id}-retry`,
    scenarios: plan.scenarios.slice(Math.max(0, from)),
    ...(plan.cycle === undefined && lost.cycle > 1 ? { firstCycle: lost.cycle } : {}),
  };
}

/**
 * The first boot's runs of the scenarios it finished, then the new boot's.
 * The first boot's own "boot" run goes when its only trouble was the loss.
 */
export function mergeRetried(first: BootOutcome & { lost: LostGuest }, second: BootOutcome): BootOutcome {
  const { lost } = first;
  const lostRun = first.runs.find((run) => run.scenario === lost.scenario);
  const unconfirmed = [...(lostRun?.unconfirmedLeaks ?? []), ...(lostRun?.leaks ?? [])]
    .filter((leak) => leak.step === lost.step)
    .map((leak) => `iommu group ${leak.group} (${leak.devices.join(' ')})`);
  const retried =
    `the first boot (${lostRun?.logs.console ?? 'its console log'}) lost its guest in ${lost.scenario}${lost.cycle > 1 ? ` cycle ${lost.cycle}` : ''}: ${lost.why}` +
    (unconfirmed.length ? `; not released there before the loss, so not a leak it could show: ${unconfirmed.join(', ')}` : '');
  const taken = new Set(second.runs.map((run) => run.scenario));
  const kept = first.runs.filter((run) => (run.scenario === bootScenario ? run.verdict !== 'error' : !taken.has(run.scenario)));
  const fromRetry = second.runs.map((run) => (run.scenario === bootScenario ? run : { ...run, retried, notes: [...run.notes, `run again in a new boot: ${retried}`] }));
  return {
    runs: [...kept, ...fromRetry],
    ...(second.lost ? { lost: second.lost } : {}),
    ...(first.bootSeconds !== undefined ? { bootSeconds: first.bootSeconds } : {}),
    ...(first.bootTimeline ? { bootTimeline: first.bootTimeline } : {}),
  };
}
