// A boot that lost its guest to the emulator: which boots are retried, what
// the new boot runs, and how the two boots' runs become one result.
import test from 'ava';
import type { ScenarioRun } from '../../harness/report/result.ts';
import { mergeRetried, retryable, retryPlan } from '../../harness/scenario/retry.ts';
import type { BootOutcome, BootPlan, LostGuest } from '../../harness/scenario/runner.ts';
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
