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
// What the first boot did see stays in the result: its earlier cycles' blind
// spots and known issues, and the kmemleak scan it never got to.
// A second loss stays an error. Pure.
import type { ResultLeak, ScenarioRun, Verdict } from '../report/result.ts';
import { bootScenario, verdictOf } from '../report/verdict.ts';
import { addCosts } from './guest-cost.ts';
import { kmemleakScenario, type BootOutcome, type BootPlan, type LostGuest } from './runner.ts';

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
 * The first boot's runs of the scenarios it finished, then the new boot's, each carrying what the
 * first boot saw of it. The first boot's own "boot" run goes when its only trouble was the loss
 * (its known issues go on in the new boot's).
 */
export function mergeRetried(first: BootOutcome & { lost: LostGuest }, second: BootOutcome): BootOutcome {
  const { lost } = first;
  const lostRun = first.runs.find((run) => run.scenario === lost.scenario);
  const where = lostRun?.logs.console ?? 'its console log';
  const unconfirmed = [...(lostRun?.unconfirmedLeaks ?? []), ...(lostRun?.leaks ?? [])]
    .filter((leak) => leak.step === lost.step)
    .map((leak) => `iommu group ${leak.group} (${leak.devices.join(' ')})`);
  const retried =
    `the first boot (${where}) lost its guest in ${lost.scenario}${lost.cycle > 1 ? ` cycle ${lost.cycle}` : ''}: ${lost.why}` +
    (unconfirmed.length ? `; not released there before the loss, so not a leak it could show: ${unconfirmed.join(', ')}` : '');
  const taken = new Set(second.runs.map((run) => run.scenario));
  const kept = first.runs.filter((run) => (run.scenario === bootScenario ? run.verdict !== 'error' : !taken.has(run.scenario)));
  const droppedBootRun = first.runs.find((run) => run.scenario === bootScenario && run.verdict === 'error');
  // What the first boot ran to the end or in part; its kmemleak scan, had it run, would have covered them.
  const scannedNever = [...kept.filter((run) => run.scenario !== bootScenario && run.scenario !== kmemleakScenario).map((run) => run.scenario), `${lost.scenario}${lost.cycle > 1 ? ` (cycles before ${lost.cycle})` : ''}`];
  const fromRetry = second.runs.map((secondRun) => {
    const run = second.lost ? withoutLostStepLeaks(secondRun, second.lost) : secondRun;
    if (run.scenario === bootScenario) return droppedBootRun ? withKnownReports(run, droppedBootRun) : run;
    const earlier = first.runs.find((candidate) => candidate.scenario === run.scenario);
    let merged = earlier ? withEarlierEvidence(run, earlier, where, lost) : run;
    if (run.scenario === kmemleakScenario && !earlier) {
      merged = rejudged({
        ...merged,
        inconclusive: [`the first boot (${where}) lost its guest before its kmemleak scan: what ${scannedNever.join(', ')} leaked there was never scanned`, ...merged.inconclusive],
      }, merged.verdict);
    }
    return { ...merged, retried, notes: [...merged.notes, `run again in a new boot: ${retried}`] };
  });
  return {
    runs: [...kept, ...fromRetry],
    ...(second.lost ? { lost: second.lost } : {}),
    ...(first.bootSeconds !== undefined ? { bootSeconds: first.bootSeconds } : {}),
    ...(first.bootTimeline ? { bootTimeline: first.bootTimeline } : {}),
  };
}

const worstFirst: Verdict[] = ['fail', 'error', 'inconclusive', 'pass'];

/**
 * The run's verdict from its evidence; with `atLeast`, never better than that: evidence carried over
 * from the first boot can only add to what the new boot's own judgement found.
 */
function rejudged(run: ScenarioRun, atLeast?: Verdict): ScenarioRun {
  const verdict = verdictOf(run);
  return { ...run, verdict: atLeast && worstFirst.indexOf(atLeast) < worstFirst.indexOf(verdict) ? atLeast : verdict };
}

/** A leak in the step a guest was lost in proves nothing, in the second boot as in the first: never a finding (exit 1) for a loss. */
function withoutLostStepLeaks(run: ScenarioRun, lost: LostGuest): ScenarioRun {
  if (run.scenario !== lost.scenario || !run.leaks.some((leak) => leak.step === lost.step)) return run;
  return rejudged({
    ...run,
    leaks: run.leaks.filter((leak) => leak.step !== lost.step),
    unconfirmedLeaks: [...(run.unconfirmedLeaks ?? []), ...run.leaks.filter((leak) => leak.step === lost.step)],
    error: run.error ?? `the guest was lost again: ${lost.why}`,
  });
}

/**
 * The new boot's run with what the first boot saw of the same scenario: the cycles it ran before the
 * loss were blind where they were blind, matched the known issues they matched, and found what they
 * found. Its error (the loss, or "not run") and the leaks of the lost step are not evidence.
 */
function withEarlierEvidence(run: ScenarioRun, earlier: ScenarioRun, where: string, lost: LostGuest): ScenarioRun {
  const inFirst = (text: string) => `in the first boot (${where}): ${text}`;
  const lostStep = (leak: ResultLeak) => earlier.scenario === lost.scenario && leak.step === lost.step;
  const unconfirmedLeaks = [...(earlier.unconfirmedLeaks ?? []), ...earlier.leaks.filter(lostStep), ...(run.unconfirmedLeaks ?? [])];
  const skippedSteps = [...(earlier.skippedSteps ?? []), ...(run.skippedSteps ?? [])].filter(
    (skipped, index, all) => all.findIndex((other) => other.step === skipped.step) === index,
  );
  const cost = earlier.cost && run.cost ? addCosts(earlier.cost, run.cost) : (run.cost ?? earlier.cost);
  return rejudged({
    ...run,
    groups: [...earlier.groups, ...run.groups],
    leaks: [...earlier.leaks.filter((leak) => !lostStep(leak)), ...run.leaks],
    ...(unconfirmedLeaks.length ? { unconfirmedLeaks } : {}),
    reports: [...earlier.reports, ...run.reports],
    failedChecks: [...earlier.failedChecks.map(inFirst), ...run.failedChecks],
    inconclusive: [...earlier.inconclusive.map(inFirst), ...run.inconclusive],
    ...(skippedSteps.length ? { skippedSteps } : {}),
    ...(cost ? { cost } : {}),
    notes: [...earlier.notes.map(inFirst), ...run.notes],
  }, run.verdict);
}

/** The first boot's known issues at boot, which the new boot's "boot" run did not print again: their entries were used. */
function withKnownReports(run: ScenarioRun, earlier: ScenarioRun): ScenarioRun {
  const carried = earlier.reports.filter((report) => report.known && !run.reports.some((own) => own.title === report.title && own.step === report.step));
  return carried.length ? { ...run, reports: [...run.reports, ...carried] } : run;
}
