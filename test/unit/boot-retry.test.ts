// A boot that lost its guest to the emulator: which boots are retried, what
// the new boot runs, and how the two boots' runs become one result.
import test from 'ava';
import { parseKnownIssues } from '../../harness/oracle/index.ts';
import { exitCodeOf } from '../../harness/report/exit-code.ts';
import { overallVerdict, type HarnessResult, type ScenarioRun } from '../../harness/report/result.ts';
import { judgeBoot, unusedKnownIssues } from '../../harness/report/verdict.ts';
import { mergeRetried, retryable, retryPlan } from '../../harness/scenario/retry.ts';
import { kmemleakNotScanned, type BootOutcome, type BootPlan, type LostGuest } from '../../harness/scenario/runner.ts';
import type { Scenario } from '../../harness/scenario/scenario.ts';

const scenario = (name: string): Scenario => ({ name, proves: name, iommus: ['intel'], topology: { devices: [] }, run: async () => undefined });
const plan: BootPlan = { id: 'intel', iommu: 'intel', scenarios: [scenario('a'), scenario('b'), scenario('c')] };

function run(scenario: string, verdict: ScenarioRun['verdict'], console: string, extra: Partial<ScenarioRun> = {}): ScenarioRun {
  return { iommu: 'intel', scenario, verdict, groups: [], leaks: [], reports: [], failedChecks: [], inconclusive: [], notes: [], accel: 'tcg', logs: { console }, ...extra };
}

const why = "b/cycle7/rescan: the guest shell ended during a command (QEMU itself had ended, signal SIGSEGV, saying nothing: the emulator, not the kernel under test)";
const lost: LostGuest = { scenario: 'b', cycle: 7, step: 'b/cycle7/rescan', why };
const firstBoot: BootOutcome = {
  lost,
  bootSeconds: 2.5,
  runs: [
    run('boot', 'error', 'first/console.log', { error: 'the machine ended during the scenarios (signal SIGSEGV)' }),
    run('a', 'pass', 'first/console.log'),
    run('b', 'error', 'first/console.log', { error: why }),
    run('c', 'error', 'first/console.log', { error: 'not run: the machine had ended (signal SIGSEGV)' }),
  ],
};

test('a lost guest whose runs found nothing is retried; a finding in the lost scenario or the boot stands as found, but not a known issue or a leak in the step the guest was lost in', (t) => {
  t.true(retryable(firstBoot));
  t.false(retryable({ runs: firstBoot.runs }), 'nothing lost: nothing to retry');
  const leak = { group: 5, devices: ['0000:01:00.0'], step: 'b/cycle6/remove' };
  const withLeak = { ...firstBoot, runs: firstBoot.runs.map((r) => (r.scenario === 'b' ? { ...r, verdict: 'fail' as const, leaks: [leak] } : r)) };
  t.false(retryable(withLeak));
  const report = { kind: 'warning', title: 'WARNING in iommu_group_release', step: 'boot' } as unknown as ScenarioRun['reports'][number];
  const bootReport = { ...firstBoot, runs: firstBoot.runs.map((r) => (r.scenario === 'boot' ? { ...r, verdict: 'fail' as const, reports: [report] } : r)) };
  t.false(retryable(bootReport));
  // A known issue is no finding; a leak in the step the guest was lost in is no evidence (its release may never have been printed).
  const knownReport = { ...report, known: 'pciehp lock order' } as ScenarioRun['reports'][number];
  t.true(retryable({ ...firstBoot, runs: firstBoot.runs.map((r) => (r.scenario === 'b' ? { ...r, reports: [knownReport] } : r)) }));
  const unconfirmed = { ...leak, step: 'b/cycle7/rescan' };
  const lostMidRelease = { ...firstBoot, runs: firstBoot.runs.map((r) => (r.scenario === 'b' ? { ...r, verdict: 'fail' as const, leaks: [unconfirmed] } : r)) };
  t.true(retryable(lostMidRelease));
  if (!retryable(lostMidRelease)) return;
  const merged = mergeRetried(lostMidRelease, { runs: [run('b', 'pass', 'retry/console.log'), run('c', 'pass', 'retry/console.log')] });
  t.deepEqual(merged.runs.map((r) => [r.scenario, r.verdict]), [['a', 'pass'], ['b', 'pass'], ['c', 'pass']]);
  t.regex(merged.runs.find((r) => r.scenario === 'b')?.retried ?? '', /; not released there before the loss, so not a leak it could show: iommu group 5 \(0000:01:00\.0\)$/);
});

test('the new boot runs the lost scenario from its lost cycle, and every scenario after it', (t) => {
  const again = retryPlan(plan, lost);
  t.is(again.id, 'intel-retry');
  t.deepEqual(again.scenarios.map((s) => s.name), ['b', 'c']);
  t.is(again.firstCycle, 7);
  // Without --cycles there is no cycle to resume at; a boot-per-cycle plan keeps its one cycle.
  t.is(retryPlan(plan, { ...lost, cycle: 1 }).firstCycle, undefined);
  const perCycle = retryPlan({ ...plan, id: 'intel-3', scenarios: [scenario('b')], cycle: 3 }, { ...lost, cycle: 3 });
  t.deepEqual([perCycle.id, perCycle.cycle, perCycle.firstCycle], ['intel-3-retry', 3, undefined]);
});

test('merged: the first boot\'s finished scenarios, then the new boot\'s runs, each saying it was run again and why', (t) => {
  if (!retryable(firstBoot)) return t.fail();
  const secondBoot: BootOutcome = {
    bootSeconds: 2.7,
    runs: [run('boot', 'pass', 'retry/console.log'), run('b', 'pass', 'retry/console.log'), run('c', 'pass', 'retry/console.log')],
  };
  const merged = mergeRetried(firstBoot, secondBoot);
  t.deepEqual(
    merged.runs.map((r) => [r.scenario, r.verdict, r.logs.console, r.retried !== undefined]),
    [
      ['a', 'pass', 'first/console.log', false],
      ['boot', 'pass', 'retry/console.log', false],
      ['b', 'pass', 'retry/console.log', true],
      ['c', 'pass', 'retry/console.log', true],
    ],
  );
  const b = merged.runs.find((r) => r.scenario === 'b')!;
  t.is(b.retried, `the first boot (first/console.log) lost its guest in b cycle 7: ${why}`);
  t.deepEqual(b.notes, [`run again in a new boot: ${b.retried}`]);
  t.is(merged.lost, undefined);
  t.is(merged.bootSeconds, 2.5);

  // A first boot whose own boot-time run is clean keeps it; a second loss is an error and stays one.
  const cleanBootRun = { ...firstBoot, runs: firstBoot.runs.map((r) => (r.scenario === 'boot' ? run('boot', 'pass', 'first/console.log') : r)) };
  const lostAgain: BootOutcome = { lost: { ...lost, why: 'again' }, runs: [run('boot', 'error', 'retry/console.log'), run('b', 'error', 'retry/console.log', { error: 'again' }), run('c', 'error', 'retry/console.log')] };
  const twice = mergeRetried(cleanBootRun, lostAgain);
  t.deepEqual(twice.runs.map((r) => [r.scenario, r.verdict, r.logs.console]), [
    ['boot', 'pass', 'first/console.log'],
    ['a', 'pass', 'first/console.log'],
    ['boot', 'error', 'retry/console.log'],
    ['b', 'error', 'retry/console.log'],
    ['c', 'error', 'retry/console.log'],
  ]);
  t.deepEqual(twice.lost, { ...lost, why: 'again' });
});

// --- what the first boot saw is kept: a retry never turns evidence into a cleaner verdict.

test('a second loss is an error, never a finding: a leak in the step the second boot was lost in proves nothing (exit 3, not 1)', (t) => {
  if (!retryable(firstBoot)) return t.fail();
  const again = 'b/cycle7/rescan: the guest stopped answering SSH';
  const leak = { group: 5, devices: ['0000:01:00.0'], step: 'b/cycle7/rescan' };
  const lostAgain: BootOutcome = {
    lost: { ...lost, why: again },
    runs: [run('boot', 'pass', 'retry/console.log'), run('b', 'fail', 'retry/console.log', { error: again, leaks: [leak] }), run('c', 'error', 'retry/console.log', { error: 'not run: the guest stopped answering SSH after b/cycle7/rescan' })],
  };
  const merged = mergeRetried(firstBoot, lostAgain);
  const b = merged.runs.find((r) => r.scenario === 'b')!;
  t.is(b.verdict, 'error');
  t.deepEqual(b.leaks, []);
  t.deepEqual(b.unconfirmedLeaks, [leak]);
  t.is(exitCodeOf(result(merged.runs)), 3);
  // A leak from an earlier step of the second boot is a finding as ever.
  const earlierLeak = { ...leak, step: 'b/cycle7/remove' };
  const found = mergeRetried(firstBoot, { ...lostAgain, runs: lostAgain.runs.map((r) => (r.scenario === 'b' ? { ...r, leaks: [earlierLeak] } : r)) });
  t.is(found.runs.find((r) => r.scenario === 'b')?.verdict, 'fail');
});

test("the lost scenario's earlier cycles keep their blind spots: a retried run that passes is still inconclusive", (t) => {
  const blind = 'b/cycle3/bind: the kernel dropped 7 log message(s): a report or group event may be missing';
  const first = { ...firstBoot, runs: firstBoot.runs.map((r) => (r.scenario === 'b' ? { ...r, inconclusive: [blind] } : r)) };
  if (!retryable(first)) return t.fail();
  const merged = mergeRetried(first, { runs: [run('boot', 'pass', 'retry/console.log'), run('b', 'pass', 'retry/console.log'), run('c', 'pass', 'retry/console.log')] });
  const b = merged.runs.find((r) => r.scenario === 'b')!;
  t.is(b.verdict, 'inconclusive');
  t.deepEqual(b.inconclusive, [`in the first boot (first/console.log): ${blind}`]);
  t.is(merged.runs.find((r) => r.scenario === 'c')?.verdict, 'pass', 'a scenario the first boot never ran has nothing to carry');
});

test("the first boot's known-issue matches are kept, so their entries are not called unused", (t) => {
  const known = parseKnownIssues(['WARNING in pciehp_unconfigure_device | scenario=b  # upstream', 'possible deadlock in msi_get_virq | scenario=boot  # upstream, at boot'].join('\n'));
  const knownIn = (title: string, step: string | undefined) =>
    ({ kind: 'warning', title, text: title, corrupted: false, ...(step ? { step } : {}), known: 'upstream' }) as ScenarioRun['reports'][number];
  const first = {
    ...firstBoot,
    runs: firstBoot.runs.map((r) =>
      r.scenario === 'b' ? { ...r, reports: [knownIn('WARNING in pciehp_unconfigure_device', 'b/cycle2/del')] } : r.scenario === 'boot' ? { ...r, reports: [knownIn('possible deadlock in msi_get_virq', undefined)] } : r,
    ),
  };
  if (!retryable(first)) return t.fail();
  // The new boot printed neither (a boot-time race, a cycle it did not repeat).
  const merged = mergeRetried(first, { runs: [run('boot', 'pass', 'retry/console.log'), run('b', 'pass', 'retry/console.log'), run('c', 'pass', 'retry/console.log')] });
  t.deepEqual(unusedKnownIssues(known, merged.runs), []);
  t.deepEqual(merged.runs.map((r) => [r.scenario, r.verdict]), [['a', 'pass'], ['boot', 'pass'], ['b', 'pass'], ['c', 'pass']]);
});

test("kmemleak across a retry: the lost boot's scan never ran, so the new boot's clean scan alone is inconclusive, with the reason", (t) => {
  if (!retryable(firstBoot)) return t.fail();
  const second: BootOutcome = { runs: [run('boot', 'pass', 'retry/console.log'), run('b', 'pass', 'retry/console.log'), run('c', 'pass', 'retry/console.log'), run('kmemleak', 'pass', 'retry/console.log')] };
  const merged = mergeRetried(firstBoot, second);
  const kmemleak = merged.runs.find((r) => r.scenario === 'kmemleak')!;
  t.is(kmemleak.verdict, 'inconclusive');
  t.deepEqual(kmemleak.inconclusive, ['the first boot (first/console.log) lost its guest before its kmemleak scan: what a, b (cycles before 7) leaked there was never scanned']);
  // The runner now judges the lost boot's missing scan itself; its reason is carried, not doubled.
  const notScanned = judgeBoot({ iommu: 'intel', accel: 'tcg', console: '', consolePath: 'first/console.log', outcomes: [kmemleakNotScanned('the machine ended during the scenarios (signal SIGSEGV)')], known: [] }).find((r) => r.scenario === 'kmemleak')!;
  const withRun = mergeRetried({ ...firstBoot, runs: [...firstBoot.runs, notScanned] }, second);
  t.deepEqual(withRun.runs.find((r) => r.scenario === 'kmemleak')?.inconclusive, [
    'in the first boot (first/console.log): no kmemleak scan after the scenarios (the machine ended during the scenarios (signal SIGSEGV)): a memory leak in them could not be reported',
  ]);
  t.is(exitCodeOf(result(merged.runs)), 4);
});

function result(runs: ScenarioRun[]): HarnessResult {
  return { verdict: overallVerdict(runs), kernel: { source: 's', commit: 'c', patches: [], release: 'r' }, runs, timings: { buildSeconds: 0, bootSeconds: {}, totalSeconds: 0 }, accelerator: { accel: 'tcg', reason: 'test' } };
}
