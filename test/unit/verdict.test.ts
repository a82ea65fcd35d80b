import test from 'ava';
import { judgeBoot, type BootEvidence } from '../../harness/report/verdict.ts';
import { overallVerdict } from '../../harness/report/result.ts';
import { renderTable } from '../../harness/report/table.ts';

const boot = [
  '[    0.512000] iommu: Allocated group 0',
  '[    0.512100] pci 0000:00:00.0: Adding to iommu group 0',
  '[    0.513000] iommu: Allocated group 3',
  '[    0.513100] pci 0000:01:00.0: Adding to iommu group 3',
];
const vfioSteps = ['[    5.000000] iommu-harness: step vfio-bind-unbind/bind', '[    6.000000] iommu-harness: step vfio-bind-unbind/remove'];
const gone = '[    6.100000] iommu-harness: device-gone 0000:01:00.0';
const released = '[    6.100100] iommu: Releasing group 3';
const warn = [
  '[    6.100050] ------------[ cut here ]------------',
  '[    6.100051] WARNING: CPU: 1 PID: 53 at drivers/iommu/iommu.c:940 iommu_group_release+0x5b/0x7e',
  '[    6.100052] Modules linked in:',
  '[    6.100053] CPU: 1 UID: 0 PID: 53 Comm: sh Not tainted 6.12.57 #1',
  '[    6.100054] RIP: 0010:iommu_group_release+0x5b/0x7e',
  '[    6.100055] Call Trace:',
  '[    6.100056]  <TASK>',
  '[    6.100057]  kobject_put+0xa3/0x190',
  '[    6.100058]  __iommu_group_remove_device+0xe5/0x100',
  '[    6.100059]  iommu_release_device+0x3a/0x60',
  '[    6.100060]  </TASK>',
  '[    6.100061] ---[ end trace 0000000000000000 ]---',
];

function evidence(lines: string[], overrides: Partial<BootEvidence> = {}): BootEvidence {
  return {
    iommu: 'intel',
    accel: 'tcg',
    console: lines.join('\n'),
    consolePath: '/runs/x/intel/console.log',
    outcomes: [{ scenario: 'vfio-bind-unbind', goneDevices: ['0000:01:00.0'], devices: ['0000:01:00.0'], observedGroups: { '0000:01:00.0': 3 } }],
    known: [],
    ...overrides,
  };
}

test('a removed device whose group is released passes, with the group accounted', (t) => {
  const runs = judgeBoot(evidence([...boot, ...vfioSteps, gone, released]));
  t.deepEqual(runs.map((run) => [run.scenario, run.verdict]), [
    ['boot', 'pass'],
    ['vfio-bind-unbind', 'pass'],
  ]);
  t.deepEqual(runs[1]?.groups, [{ id: 3, devices: ['0000:01:00.0'], released: true }]);
  t.is(overallVerdict(runs), 'pass');
});

test('a group never released after its last device left is a leak in the step that removed it', (t) => {
  const runs = judgeBoot(evidence([...boot, ...vfioSteps, gone]));
  const run = runs[1]!;
  t.is(run.verdict, 'fail');
  t.deepEqual(run.leaks, [{ group: 3, devices: ['0000:01:00.0'], step: 'vfio-bind-unbind/remove' }]);
  t.regex(renderTable({ verdict: 'fail', kernel: { source: 's', commit: 'c', patches: [], release: 'r' }, runs, timings: { buildSeconds: 0, bootSeconds: {}, totalSeconds: 0 } }), /LEAK: iommu group 3 \(0000:01:00\.0\) never released after vfio-bind-unbind\/remove/);
});

test('a WARNING fails the scenario in whose step it appeared, not the boot', (t) => {
  const runs = judgeBoot(evidence([...boot, ...vfioSteps, gone, ...warn, released]));
  t.is(runs[0]?.verdict, 'pass');
  const run = runs[1]!;
  t.is(run.verdict, 'fail');
  t.is(run.reports[0]?.title, 'WARNING in iommu_group_release');
  t.is(run.reports[0]?.kind, 'warning');
  t.is(run.reports[0]?.step, 'vfio-bind-unbind/remove');
  t.is(run.reports[0]?.location, 'drivers/iommu/iommu.c:940');
});

test('a known issue is shown but does not fail', (t) => {
  const runs = judgeBoot(evidence([...boot, ...vfioSteps, gone, ...warn, released], { known: [{ title: 'WARNING in iommu_group_release', reason: 'triaged' }] }));
  t.is(runs[1]?.verdict, 'pass');
  t.is(runs[1]?.reports[0]?.known, 'triaged');
});

test('a device that left without ever joining a group cannot be judged', (t) => {
  const runs = judgeBoot(evidence([...vfioSteps, gone], { outcomes: [{ scenario: 'vfio-bind-unbind', goneDevices: ['0000:01:00.0'], devices: ['0000:01:00.0'] }] }));
  t.is(runs[1]?.verdict, 'error');
  t.regex(runs[1]?.error ?? '', /without ever joining an iommu group/);
});

test('sysfs and the log disagreeing about a group is an error, not a pass', (t) => {
  const runs = judgeBoot(evidence([...boot, ...vfioSteps, gone, released], { outcomes: [{ scenario: 'vfio-bind-unbind', goneDevices: ['0000:01:00.0'], devices: ['0000:01:00.0'], observedGroups: { '0000:01:00.0': 7 } }] }));
  t.is(runs[1]?.verdict, 'error');
  t.regex(runs[1]?.error ?? '', /sysfs put 0000:01:00\.0 in iommu group 7/);
});

test('a guest error with no finding is an error; with a finding it is a fail', (t) => {
  const outcome = { scenario: 'vfio-bind-unbind', goneDevices: [], devices: [], error: 'timed out' };
  t.is(judgeBoot(evidence([...boot, ...vfioSteps], { outcomes: [outcome] }))[1]?.verdict, 'error');
  t.is(judgeBoot(evidence([...boot, ...vfioSteps, ...warn], { outcomes: [outcome] }))[1]?.verdict, 'fail');
});

test('a group released twice fails the scenario it happened in', (t) => {
  const runs = judgeBoot(evidence([...boot, ...vfioSteps, gone, released, released]));
  t.is(runs[1]?.verdict, 'fail');
  t.deepEqual(runs[1]?.failedChecks, ['vfio-bind-unbind/remove: iommu group 3 released twice']);
});

test('a release of a group the log never showed made is a note, not a failure', (t) => {
  const runs = judgeBoot(evidence([...boot, ...vfioSteps, gone, released, '[    6.2] iommu: Releasing group 9']));
  t.is(runs[1]?.verdict, 'pass');
  t.deepEqual(runs[1]?.notes, ['iommu group 9 was released but the log never showed it made']);
});
