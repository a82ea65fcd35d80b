import test from 'ava';
import { readFileSync } from 'node:fs';
import { parseKnownIssues, type SysfsSnapshot } from '../../harness/oracle/index.ts';
import { exitCodeOf } from '../../harness/report/exit-code.ts';
import { judgeBoot, unusedKnownIssues, type BootEvidence } from '../../harness/report/verdict.ts';
import { overallVerdict, type HarnessResult, type ScenarioRun } from '../../harness/report/result.ts';
import { renderTable } from '../../harness/report/table.ts';
import { parseHeaderLog } from '../fixtures/oracle/header-log.ts';

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
  t.deepEqual(runs[1]?.groups, [{ id: 3, devices: ['0000:01:00.0'], released: true, madeIn: 'boot' }]);
  t.is(overallVerdict(runs), 'pass');
});

test('a group never released after its last device left is a leak in the step that removed it', (t) => {
  const runs = judgeBoot(evidence([...boot, ...vfioSteps, gone]));
  const run = runs[1]!;
  t.is(run.verdict, 'fail');
  t.deepEqual(run.leaks, [{ group: 3, devices: ['0000:01:00.0'], step: 'vfio-bind-unbind/remove' }]);
  t.regex(renderTable({ verdict: 'fail', kernel: { source: 's', commit: 'c', patches: [], release: 'r' }, runs, timings: { buildSeconds: 0, bootSeconds: {}, totalSeconds: 0 }, accelerator: { accel: 'tcg', reason: '--accel tcg' } }), /LEAK: iommu group 3 \(0000:01:00\.0\) never released after vfio-bind-unbind\/remove/);
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
  const runs = judgeBoot(evidence([...boot, ...vfioSteps, gone, ...warn, released], { known: [{ title: 'WARNING in iommu_group_release', reason: 'triaged', entry: 'WARNING in iommu_group_release' }] }));
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

// --- inconclusive: a check the verdict relies on was off or blind during the scenario's steps.

const pciehpCapture = parseHeaderLog(
  readFileSync(new URL('../fixtures/oracle/reports/lockdep-pciehp-configure-device.log', import.meta.url), 'utf8'),
).log;
const pciehpKnown = parseKnownIssues('possible deadlock in pciehp_configure_device | scenario=pci-hotplug-native | step=add  # upstream pciehp');

test('a known lockdep report at hot-add leaves the del step blind: inconclusive with the reason, not pass (real capture)', (t) => {
  // The real 6.12 capture from when native hot-add and hot-remove were one scenario: the known
  // pciehp report at `add` turns lockdep off, then `del` runs iommu_release_device() unchecked.
  const runs = judgeBoot({
    ...evidence([]),
    console: pciehpCapture,
    outcomes: [{ scenario: 'pci-hotplug-native', goneDevices: ['0000:01:00.0'], devices: ['0000:01:00.0'] }],
    known: pciehpKnown,
  });
  const run = runs[1]!;
  t.is(run.reports[0]?.known, 'upstream pciehp');
  t.deepEqual(run.leaks, []);
  t.is(run.verdict, 'inconclusive');
  t.is(run.inconclusive.length, 1);
  t.regex(run.inconclusive[0] ?? '', /lock checking was off after possible deadlock in pciehp_configure_device, from pci-hotplug-native\/add on/);
  t.is(overallVerdict(runs), 'inconclusive');
  t.regex(renderTable(result(runs)), /pci-hotplug-native +INCONCLUSIVE/);
  t.regex(renderTable(result(runs)), /intel\/pci-hotplug-native: INCONCLUSIVE: lock checking was off/);
  t.is(exitCodeOf(result(runs)), 4);
});

test('lockdep going off after the scenario\'s last kernel work (the group already released) leaves nothing unchecked', (t) => {
  // Native hot-remove: the upstream pciehp report comes once the device and its group are gone.
  const splat = pciehpCapture.split('\n').filter((line) => /\] (?:=+|WARNING: possible circular|.*is trying to acquire|.*at: pciehp_configure_device|.*but task is already holding|.*\*\*\* DEADLOCK)/.test(line));
  const lines = [...boot, '[    5.000000] iommu-harness: step native/bind', '[    6.000000] iommu-harness: step native/del', '[   11.000000] iommu: Releasing group 3', ...splat.map((line) => line.replace(/^\[ *[\d.]+\]/, '[   11.100000]')), '[   12.000000] iommu-harness: device-gone 0000:01:00.0'];
  const runs = judgeBoot(evidence(lines, { outcomes: [{ scenario: 'native', goneDevices: ['0000:01:00.0'], devices: ['0000:01:00.0'] }], known: parseKnownIssues('/possible deadlock in .*/  # upstream') }));
  t.is(runs[1]?.reports.length, 1);
  t.deepEqual(runs[1]?.inconclusive, []);
  t.is(runs[1]?.verdict, 'pass');
});

test('lockdep already off before a scenario makes it inconclusive; the scenario that found the report fails', (t) => {
  const lockdep = parseHeaderLog(readFileSync(new URL('../fixtures/oracle/reports/real-lockdep-remove-inversion.log', import.meta.url), 'utf8')).log;
  const later = ['[   20.000000] iommu-harness: step vfio-bind-unbind/bind', '[   21.000000] iommu-harness: step vfio-bind-unbind/remove'];
  const runs = judgeBoot({
    ...evidence([]),
    console: `${lockdep}\n${later.join('\n')}\n`,
    outcomes: [
      { scenario: 'remove-rescan', goneDevices: [], devices: [] },
      { scenario: 'vfio-bind-unbind', goneDevices: [], devices: [] },
    ],
  });
  t.deepEqual(runs.map((run) => [run.scenario, run.verdict]), [['boot', 'pass'], ['remove-rescan', 'fail'], ['vfio-bind-unbind', 'inconclusive']]);
  t.is(overallVerdict(runs), 'fail');
});

test('kmemleak disabled makes every scenario inconclusive; dropped console lines only the scenario they fell in', (t) => {
  const kmemleakOff = '[    6.200000] kmemleak: Kernel memory leak detector disabled';
  const off = judgeBoot(evidence([...boot, ...vfioSteps, gone, released, kmemleakOff]));
  t.is(off[1]?.verdict, 'inconclusive');
  t.regex(off[1]?.inconclusive[0] ?? '', /kmemleak was disabled/);
  const dropped = judgeBoot(evidence([...boot, ...vfioSteps.slice(0, 1), '** 7 printk messages dropped **', ...vfioSteps.slice(1), gone, released]));
  t.is(dropped[1]?.verdict, 'inconclusive');
  t.deepEqual(dropped[1]?.inconclusive, ['vfio-bind-unbind/bind: the kernel dropped 7 log message(s): a report or group event may be missing']);
});

test('dmesg does not excuse dropped or suppressed console lines: the ring buffer lost them too', (t) => {
  // The console prints "** 7 printk messages dropped **" when the ring buffer overwrote records it had
  // not printed yet, so a dmesg read afterwards holds the same lines minus the lost ones, never them:
  // here the WARNING the flood pushed out is in neither capture.
  const flood = '** 7 printk messages dropped **';
  const withDrop = [...boot, ...vfioSteps.slice(0, 1), flood, ...vfioSteps.slice(1), gone, released];
  const dropped = judgeBoot(evidence(withDrop, { dmesg: withDrop.filter((line) => line !== flood).join('\n') }));
  t.is(dropped[1]?.verdict, 'inconclusive');
  t.deepEqual(dropped[1]?.inconclusive, ['vfio-bind-unbind/bind: the kernel dropped 7 log message(s): a report or group event may be missing']);
  // A rate-limited printk was never stored at all: dmesg has the same "callbacks suppressed" line.
  const suppressed = [...boot, ...vfioSteps.slice(0, 1), '[    5.500000] dmar_fault: 12 callbacks suppressed', ...vfioSteps.slice(1), gone, released];
  const limited = judgeBoot(evidence(suppressed, { dmesg: suppressed.join('\n') }));
  t.is(limited[1]?.verdict, 'inconclusive');
  t.deepEqual(limited[1]?.inconclusive, ['vfio-bind-unbind/bind: the kernel suppressed 12 message(s) of dmar_fault: a report or group event may be missing']);
});

test('overall verdict precedence: fail > error > inconclusive > pass; exit codes 1, 3, 4, 0', (t) => {
  const run = (verdict: ScenarioRun['verdict']) => ({ verdict }) as ScenarioRun;
  t.is(overallVerdict([run('pass'), run('inconclusive'), run('error'), run('fail')]), 'fail');
  t.is(overallVerdict([run('inconclusive'), run('error')]), 'error');
  t.is(overallVerdict([run('pass'), run('inconclusive')]), 'inconclusive');
  t.is(overallVerdict([run('pass')]), 'pass');
  t.is(overallVerdict([]), 'error', 'nothing judged is not a pass');
  const code = (verdict: HarnessResult['verdict']) => exitCodeOf({ ...result([]), verdict });
  t.deepEqual([code('fail'), code('error'), code('inconclusive'), code('pass')], [1, 3, 4, 0]);
});

// --- the second witness: /sys/kernel/iommu_groups after each step.

const stepsWithSysfs = (groups: Array<Record<number, string[]>>) => ({
  scenario: 'vfio-bind-unbind',
  goneDevices: [],
  devices: ['0000:01:00.0'],
  sysfsGroups: groups.map((g, i) => ({ step: ['vfio-bind-unbind/bind', 'vfio-bind-unbind/remove'][i]!, groups: g })),
});

test('a group one scenario leaves empty is its leak only, not again in each later scenario that still sees it in sysfs', (t) => {
  const hotplugStep = '[    7.000000] iommu-harness: step pci-hotplug/add';
  const hotplug = { scenario: 'pci-hotplug', goneDevices: [], devices: [], sysfsGroups: [{ step: 'pci-hotplug/add', groups: { 0: ['0000:00:00.0'], 3: [] } }] };
  const runs = judgeBoot(
    evidence([...boot, ...vfioSteps, hotplugStep], { outcomes: [stepsWithSysfs([{ 0: ['0000:00:00.0'], 3: ['0000:01:00.0'] }, { 0: ['0000:00:00.0'], 3: [] }]), hotplug] }),
  );
  t.deepEqual(runs[1]?.leaks, [{ group: 3, devices: ['0000:01:00.0'], step: 'vfio-bind-unbind/remove' }]);
  t.deepEqual(runs[2]?.leaks, []);
  t.deepEqual(runs[2]?.failedChecks, []);
});

test('a group left in sysfs with no devices and never released is a leak, with no device-gone mark at all', (t) => {
  const runs = judgeBoot(evidence([...boot, ...vfioSteps], { outcomes: [stepsWithSysfs([{ 0: ['0000:00:00.0'], 3: ['0000:01:00.0'] }, { 0: ['0000:00:00.0'], 3: [] }])] }));
  t.is(runs[1]?.verdict, 'fail');
  t.deepEqual(runs[1]?.leaks, [{ group: 3, devices: ['0000:01:00.0'], step: 'vfio-bind-unbind/remove' }]);
});

test('a group gone from sysfs that the log never released is a finding', (t) => {
  const runs = judgeBoot(evidence([...boot, ...vfioSteps], { outcomes: [stepsWithSysfs([{ 0: ['0000:00:00.0'], 3: ['0000:01:00.0'] }, { 0: ['0000:00:00.0'] }])] }));
  t.is(runs[1]?.verdict, 'fail');
  t.deepEqual(runs[1]?.failedChecks, [
    'vfio-bind-unbind/remove: iommu group 3 (0000:01:00.0) left /sys/kernel/iommu_groups but the log never showed it released',
  ]);
});

test('a group the log released while sysfs still lists it with devices is a finding', (t) => {
  const early = ['[    5.000000] iommu-harness: step vfio-bind-unbind/bind', '[    5.500000] iommu: Releasing group 3', '[    6.000000] iommu-harness: step vfio-bind-unbind/remove'];
  const runs = judgeBoot(evidence([...boot, ...early], { outcomes: [stepsWithSysfs([{ 0: ['0000:00:00.0'], 3: ['0000:01:00.0'] }, { 0: ['0000:00:00.0'], 3: ['0000:01:00.0'] }])] }));
  t.is(runs[1]?.verdict, 'fail');
  t.deepEqual(runs[1]?.failedChecks, [
    'vfio-bind-unbind/remove: the log shows iommu group 3 released, but /sys/kernel/iommu_groups still lists it with (0000:01:00.0)',
  ]);
});

test('sysfs agreeing with the log passes: removed, released, gone from sysfs; a group made again after its release is not a disagreement', (t) => {
  const runs = judgeBoot(evidence([...boot, ...vfioSteps, gone, released], { outcomes: [stepsWithSysfs([{ 0: ['0000:00:00.0'], 3: ['0000:01:00.0'] }, { 0: ['0000:00:00.0'] }])] }));
  t.is(runs[1]?.verdict, 'pass');
  const remade = [...boot, ...vfioSteps, gone, released, '[    6.300000] iommu: Allocated group 3', '[    6.300100] pci 0000:01:00.0: Adding to iommu group 3'];
  const again = judgeBoot(evidence(remade, { outcomes: [stepsWithSysfs([{ 0: ['0000:00:00.0'], 3: ['0000:01:00.0'] }, { 0: ['0000:00:00.0'], 3: ['0000:01:00.0'] }])] }));
  t.is(again[1]?.verdict, 'pass');
});

// --- known issues scoped and accounted.

test('a known issue is known only in its scope, and an entry that matched nothing is listed as unused', (t) => {
  const known = parseKnownIssues(['WARNING in iommu_group_release | scenario=pci-hotplug  # elsewhere only', 'WARNING in iommu_map  # never seen'].join('\n'));
  const runs = judgeBoot(evidence([...boot, ...vfioSteps, gone, ...warn, released], { known }));
  t.is(runs[1]?.verdict, 'fail', 'the same title in another scenario is a finding');
  t.falsy(runs[1]?.reports[0]?.known);
  t.deepEqual(unusedKnownIssues(known, runs), ['WARNING in iommu_map'], 'an entry scoped to a scenario that did not run is not called unused');
  const otherKernel = parseKnownIssues('WARNING in iommu_map | release=6.1  # only 6.1');
  t.deepEqual(unusedKnownIssues(otherKernel, runs, '6.12.118+'), [], 'an entry for another kernel is not called unused');
  t.deepEqual(unusedKnownIssues(otherKernel, runs, '6.1.192+'), ['WARNING in iommu_map | release=6.1']);
  // Fixed upstream in 7.0: not stale on 7.2, where it cannot match; still expected on 6.12.
  const fixedUpstream = parseKnownIssues('WARNING in iommu_map | since=6.1 | until=7.0  # fixed in 7.0');
  t.deepEqual(unusedKnownIssues(fixedUpstream, runs, '7.2.13'), [], 'an entry fixed before this release is not called unused');
  t.deepEqual(unusedKnownIssues(fixedUpstream, runs, '6.12.57'), ['WARNING in iommu_map | since=6.1 | until=7.0']);
  t.regex(renderTable({ ...result(runs), unusedKnownIssues: ['WARNING in iommu_map'] }), /known issue matched nothing in this run .*: WARNING in iommu_map/);
});

// --- IOMMU faults are reports.

test('a DMAR fault fails the scenario it happened in, with the device and the address', (t) => {
  const fault = '[    5.600000] DMAR: [DMA Read NO_PASID] Request device [01:00.0] fault addr 0x40000 [fault reason 0x06] PTE Read access is not set';
  const runs = judgeBoot(evidence([...boot, vfioSteps[0]!, fault, fault, ...vfioSteps.slice(1), gone, released]));
  t.is(runs[1]?.verdict, 'fail');
  t.like(runs[1]?.reports[0], { kind: 'iommu-fault', title: 'DMAR: DMA Read fault: PTE Read access is not set', device: '01:00.0', address: '0x40000', step: 'vfio-bind-unbind/bind', repeats: 1 });
});

function result(runs: ScenarioRun[]): HarnessResult {
  return { verdict: overallVerdict(runs), kernel: { source: 's', commit: 'c', patches: [], release: 'r' }, runs, timings: { buildSeconds: 0, bootSeconds: {}, totalSeconds: 0 }, accelerator: { accel: 'tcg', reason: 'test' } };
}

test('the kmemleak scan relies on kmemleak alone: lockdep off earlier does not make it inconclusive', (t) => {
  const lockdep = parseHeaderLog(readFileSync(new URL('../fixtures/oracle/reports/real-lockdep-remove-inversion.log', import.meta.url), 'utf8')).log;
  const runs = judgeBoot({
    ...evidence([]),
    console: lockdep,
    dmesg: `${lockdep}\niommu-harness: step kmemleak/scan\n`,
    outcomes: [{ scenario: 'remove-rescan', goneDevices: [], devices: [] }, { scenario: 'kmemleak', goneDevices: [], devices: [] }],
  });
  t.deepEqual(runs.map((run) => [run.scenario, run.verdict]), [['boot', 'pass'], ['remove-rescan', 'fail'], ['kmemleak', 'pass']]);
});

test('a group made and released within steps the sysfs listings bracket agrees with them (real virtio remove-rescan)', (t) => {
  // The group events and marks of a real virtio-iommu boot (the group is made at bind, as
  // virtio-iommu does), with the listings the guest took: group 3 made in `bind`, gone after `remove`.
  const lines = [
    '[   11.727245] virtio-pci 0000:00:02.0: Adding to iommu group 2',
    '[   35.134020] iommu-harness: step remove-rescan/bind',
    '[   36.568990] iommu: Allocated group 3',
    '[   36.569857] vfio-pci 0000:02:00.0: Adding to iommu group 3',
    '[   38.935270] iommu-harness: step remove-rescan/remove',
    '[   39.367989] iommu: Releasing group 3',
    '[   39.842354] iommu-harness: device-gone 0000:02:00.0',
    '[   40.742127] iommu-harness: step remove-rescan/rescan',
    '[   43.053578] iommu: Allocated group 3',
    '[   43.054426] vfio-pci 0000:02:00.0: Adding to iommu group 3',
  ];
  const sysfsGroups: SysfsSnapshot[] = [
    { step: 'remove-rescan/bind', groups: { 2: ['0000:00:02.0'], 3: ['0000:02:00.0'] } },
    { step: 'remove-rescan/remove', groups: { 2: ['0000:00:02.0'] } },
    { step: 'remove-rescan/rescan', groups: { 2: ['0000:00:02.0'], 3: ['0000:02:00.0'] } },
  ];
  const runs = judgeBoot(evidence(lines, { outcomes: [{ scenario: 'remove-rescan', goneDevices: ['0000:02:00.0'], devices: ['0000:02:00.0'], sysfsGroups }] }));
  t.deepEqual(runs[1]?.failedChecks, []);
  t.deepEqual(runs[1]?.leaks, []);
  t.is(runs[1]?.verdict, 'pass');
  // The same listings with the release missing from the log: now the witnesses disagree.
  const unreleased = judgeBoot(evidence(lines.filter((line) => !line.includes('Releasing')), { outcomes: [{ scenario: 'remove-rescan', goneDevices: [], devices: ['0000:02:00.0'], sysfsGroups }] }));
  t.deepEqual(unreleased[1]?.failedChecks, ['remove-rescan/remove: iommu group 3 (0000:02:00.0) left /sys/kernel/iommu_groups but the log never showed it released']);
  // A group made within a step and left empty: a leak, though it was made after the step's mark.
  const empty: SysfsSnapshot[] = [{ step: 'remove-rescan/bind', groups: { 2: ['0000:00:02.0'], 3: [] } }];
  const leaked = judgeBoot(evidence(lines.slice(0, 5), { outcomes: [{ scenario: 'remove-rescan', goneDevices: [], devices: ['0000:02:00.0'], sysfsGroups: empty }] }));
  t.deepEqual(leaked[1]?.leaks, [{ group: 3, devices: ['0000:02:00.0'], step: 'remove-rescan/bind' }]);
});

test('a second scenario after a spent refcount_t warning type is inconclusive for it: the kernel prints each type once per boot', (t) => {
  const refcount = [
    '[    6.100050] ------------[ cut here ]------------',
    '[    6.100051] refcount_t: underflow; use-after-free.',
    '[    6.100052] WARNING: CPU: 1 PID: 53 at lib/refcount.c:28 refcount_warn_saturate+0xba/0x110',
    '[    6.100053] Call Trace:',
    '[    6.100054]  <TASK>',
    '[    6.100055]  vfio_device_remove_group+0x20/0x40',
    '[    6.100056]  </TASK>',
    '[    6.100057] ---[ end trace 0000000000000000 ]---',
  ];
  const second = ['[    7.000000] iommu-harness: step remove-rescan/remove', '[    7.100000] iommu-harness: device-gone 0000:02:00.0', '[    7.100100] iommu: Releasing group 4'];
  const runs = judgeBoot(
    evidence([...boot, '[    0.514000] iommu: Allocated group 4', '[    0.514100] pci 0000:02:00.0: Adding to iommu group 4', ...vfioSteps, gone, released, ...refcount, ...second], {
      outcomes: [
        { scenario: 'vfio-bind-unbind', goneDevices: ['0000:01:00.0'], devices: ['0000:01:00.0'] },
        { scenario: 'remove-rescan', goneDevices: ['0000:02:00.0'], devices: ['0000:02:00.0'] },
      ],
    }),
  );
  const [first, later] = [runs.find((run) => run.scenario === 'vfio-bind-unbind'), runs.find((run) => run.scenario === 'remove-rescan')];
  t.is(first?.verdict, 'fail', JSON.stringify(first));
  t.is(later?.verdict, 'inconclusive', JSON.stringify(later));
  t.true(later!.inconclusive.some((reason) => /refcount_t: underflow; use-after-free\..* once per boot/.test(reason)), later!.inconclusive.join('\n'));
});
