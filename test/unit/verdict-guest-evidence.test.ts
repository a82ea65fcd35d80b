// What the runner knows about a scenario beyond the log, judged: a guest lost mid-step, a check the
// runner could not switch on, a kmemleak scan that never ran, a guest-side failure that is the kernel's.
import test from 'ava';
import { judgeBoot, type BootEvidence, type ScenarioOutcome } from '../../harness/report/verdict.ts';
import { hungTaskTimeoutNotSet, kmemleakNotScanned } from '../../harness/scenario/runner.ts';

const boot = [
  '[    0.000000] Linux version 6.12.117+ (iommu-harness@localhost) #12 SMP',
  '[    0.513000] iommu: Allocated group 3',
  '[    0.513100] pci 0000:01:00.0: Adding to iommu group 3',
];
const removal = [
  '[    5.000000] iommu-harness: step b/cycle7/bind',
  '[    6.000000] iommu-harness: step b/cycle7/rescan',
  '[    6.100100] iommu-harness: device-gone 0000:01:00.0',
];
const outcome = (extra: Partial<ScenarioOutcome> = {}): ScenarioOutcome => ({ scenario: 'b', goneDevices: ['0000:01:00.0'], devices: ['0000:01:00.0'], ...extra });

function evidence(console: string[], outcomes: ScenarioOutcome[]): BootEvidence {
  return { iommu: 'intel', accel: 'tcg', console: console.join('\n'), consolePath: 'console.log', outcomes, known: [] };
}

const scenarioRun = (runs: ReturnType<typeof judgeBoot>, name = 'b') => runs.find((run) => run.scenario === name)!;

test('a leak in the step the guest was lost in is no finding: the run is the loss, an error (exit 3, never 1)', (t) => {
  const why = 'b/cycle7/rescan: the guest shell ended during a command (QEMU itself had ended, signal SIGSEGV)';
  const run = scenarioRun(judgeBoot(evidence([...boot, ...removal], [outcome({ error: why, lostInStep: 'b/cycle7/rescan' })])));
  t.is(run.verdict, 'error');
  t.is(run.error, why);
  t.deepEqual(run.leaks, []);
  t.deepEqual(run.unconfirmedLeaks, [{ group: 3, devices: ['0000:01:00.0'], step: 'b/cycle7/rescan' }]);
  t.true(run.notes.some((note) => /iommu group 3 \(0000:01:00\.0\) was not seen released before the guest was lost in that step/.test(note)));
  // A leak in an earlier step of the lost scenario had all the time it needed: it stands.
  const earlier = scenarioRun(judgeBoot(evidence([...boot, removal[0]!, removal[2]!, removal[1]!], [outcome({ error: why, lostInStep: 'b/cycle7/rescan' })])));
  t.is(earlier.verdict, 'fail');
  t.deepEqual(earlier.leaks, [{ group: 3, devices: ['0000:01:00.0'], step: 'b/cycle7/bind' }]);
});

const bound = ['[    5.000000] iommu-harness: step b/bind'];
const helperFailure = (reason: string) => `b/bind: \`vfio-helper container 0000:01:00.0 --dma\` exited 1: error: ${reason}`;

test('a vfio-helper data mismatch or refused VFIO ioctl with the guest and QEMU well is a finding about the kernel, not an error', (t) => {
  for (const reason of ['dma: dma data mismatch', 'VFIO_SET_IOMMU: Invalid argument', 'IOMMU_IOAS_MAP: Bad address']) {
    const run = scenarioRun(judgeBoot(evidence([...boot, ...bound], [outcome({ goneDevices: [], error: helperFailure(reason), guestAnswered: true })])));
    t.is(run.verdict, 'fail', reason);
    t.is(run.error, undefined, reason);
    t.deepEqual(run.failedChecks, [`${helperFailure(reason)} (the guest and QEMU were well afterwards: the kernel's VFIO or IOMMU code did this)`]);
  }
  // With a harness cause possible (the guest lost, QEMU gone or not answering), or a failure the
  // emulator can cause (a DMA that timed out), it stays an error.
  t.is(scenarioRun(judgeBoot(evidence([...boot, ...bound], [outcome({ goneDevices: [], error: helperFailure('dma: dma data mismatch') })]))).verdict, 'error');
  const timeout = scenarioRun(judgeBoot(evidence([...boot, ...bound], [outcome({ goneDevices: [], error: helperFailure('dma: dma timeout'), guestAnswered: true })])));
  t.deepEqual([timeout.verdict, timeout.failedChecks], ['error', []]);
});

test('a boot whose hung-task timeout could not be set leaves its scenarios inconclusive for hangs, with the reason', (t) => {
  const reason = hungTaskTimeoutNotSet("sh: can't create /proc/sys/kernel/hung_task_timeout_secs: Read-only file system");
  t.is(reason, "the hung-task timeout could not be set to 10 s (sh: can't create /proc/sys/kernel/hung_task_timeout_secs: Read-only file system): a task blocked in this scenario's steps may never have been reported");
  const runs = judgeBoot(evidence([...boot, ...bound], [outcome({ goneDevices: [], inconclusive: [reason] })]));
  t.is(scenarioRun(runs).verdict, 'inconclusive');
  t.deepEqual(scenarioRun(runs).inconclusive, [reason]);
  t.deepEqual(runs.find((run) => run.scenario === 'boot')?.inconclusive, [], 'the boot before the first scenario relies on no hang check');
});

test('a kmemleak scan that never ran (dmesg failed or timed out, the guest lost, QEMU gone) is an inconclusive kmemleak run, with the reason', (t) => {
  const runs = judgeBoot(evidence([...boot, ...bound], [outcome({ goneDevices: [] }), kmemleakNotScanned('dmesg could not be read: timed out after 30 s')]));
  const kmemleak = scenarioRun(runs, 'kmemleak');
  t.is(kmemleak.verdict, 'inconclusive');
  t.deepEqual(kmemleak.inconclusive, ['no kmemleak scan after the scenarios (dmesg could not be read: timed out after 30 s): a memory leak in them could not be reported']);
  t.is(scenarioRun(runs).verdict, 'pass');
});
