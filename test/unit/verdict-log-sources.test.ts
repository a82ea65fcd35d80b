// Console and dmesg as evidence: which capture the verdict reads what from, and what a hole in
// the log or a kernel without its group lifecycle messages leaves provable.
import test from 'ava';
import { parseKnownIssues, type SysfsSnapshot } from '../../harness/oracle/index.ts';
import { judgeBoot, unusedKnownIssues, type BootEvidence, type ScenarioOutcome } from '../../harness/report/verdict.ts';

const boot = [
  '[    0.000000] Linux version 6.12.117+ (iommu-harness@localhost) #12 SMP',
  '[    0.512000] iommu: Allocated group 0',
  '[    0.512100] pci 0000:00:00.0: Adding to iommu group 0',
  '[    0.513000] iommu: Allocated group 3',
  '[    0.513100] pci 0000:01:00.0: Adding to iommu group 3',
];
const warn = (at: string) => [
  `[${at}] ------------[ cut here ]------------`,
  `[${at}] WARNING: CPU: 1 PID: 53 at drivers/iommu/iommu.c:940 iommu_group_release+0x5b/0x7e`,
  `[${at}] RIP: 0010:iommu_group_release+0x5b/0x7e`,
  `[${at}] Call Trace:`,
  `[${at}]  <TASK>`,
  `[${at}]  kobject_put+0xa3/0x190`,
  `[${at}]  </TASK>`,
  `[${at}] ---[ end trace 0000000000000000 ]---`,
];
const outcome = (scenario: string, extra: Partial<ScenarioOutcome> = {}): ScenarioOutcome => ({ scenario, goneDevices: [], devices: [], ...extra });

function evidence(console: string[], overrides: Partial<BootEvidence> = {}): BootEvidence {
  return { iommu: 'intel', accel: 'tcg', console: console.join('\n'), consolePath: 'console.log', outcomes: [], known: [], ...overrides };
}

test('a report only dmesg has is not hidden by the same title the console showed in another scenario', (t) => {
  // Scenario a's WARN is known there; b's copy of the same WARN reached only dmesg (the console had
  // already moved on): it is b's finding, and a's entry still counts as used.
  const a = ['[    5.000000] iommu-harness: step a/bind', ...warn('    5.100000')];
  const b = ['[    6.000000] iommu-harness: step b/bind'];
  const known = parseKnownIssues('WARNING in iommu_group_release | scenario=a  # triaged in a only');
  const runs = judgeBoot(
    evidence([...boot, ...a, ...b], { dmesg: [...boot, ...a, ...b, ...warn('    6.100000')].join('\n'), outcomes: [outcome('a'), outcome('b')], known }),
  );
  const verdicts = Object.fromEntries(runs.map((run) => [run.scenario, run.verdict]));
  t.deepEqual(verdicts, { boot: 'pass', a: 'pass', b: 'fail' });
  t.like(runs.find((run) => run.scenario === 'b')?.reports[0], { title: 'WARNING in iommu_group_release', step: 'b/bind' });
  t.falsy(runs.find((run) => run.scenario === 'b')?.reports[0]?.known);
  t.deepEqual(unusedKnownIssues(known, runs), []);
  // The same report in both captures of one step is one report.
  const once = judgeBoot(evidence([...boot, ...a], { dmesg: [...boot, ...a].join('\n'), outcomes: [outcome('a')] }));
  t.is(once.find((run) => run.scenario === 'a')?.reports.length, 1);
});

const vfio = [
  '[    5.000000] iommu-harness: step vfio-bind-unbind/bind',
  '[    6.000000] iommu-harness: step vfio-bind-unbind/remove',
  '[    6.100000] iommu: Releasing group 3',
  '[    6.100100] iommu-harness: device-gone 0000:01:00.0',
];
const vfioOutcome = outcome('vfio-bind-unbind', { goneDevices: ['0000:01:00.0'], devices: ['0000:01:00.0'] });

test('a dmesg whose ring buffer wrapped is not the group ledger, whatever marks it has', (t) => {
  // The old runner appended the kmemleak scan's mark to dmesg, one mark more than the console: a
  // dmesg that had lost the boot's first lines (and with them every "Adding to iommu group") was
  // read instead, and the removed device "never joined a group" (an error, a bisect skip).
  const wrapped = [...vfio, 'iommu-harness: step kmemleak/scan'].join('\n');
  const runs = judgeBoot(evidence([...boot, ...vfio], { dmesg: wrapped, outcomes: [vfioOutcome, outcome('kmemleak')] }));
  const run = runs.find((candidate) => candidate.scenario === 'vfio-bind-unbind');
  t.is(run?.error, undefined);
  t.is(run?.verdict, 'pass');
  t.deepEqual(run?.groups, [{ id: 3, devices: ['0000:01:00.0'], released: true, madeIn: 'boot' }]);
});

test("the kmemleak dump is judged under the kmemleak pseudo-scenario, apart from dmesg", (t) => {
  const dump = [
    'unreferenced object 0xffff8880009c6590 (size 16):',
    '  comm "swapper/0", pid 1, jiffies 4294892631',
    '  hex dump (first 16 bytes):',
    '    30 30 30 30 3a 30 31 3a 30 30 2e 30 00 88 ff ff  0000:01:00.0....',
    '  backtrace (crc 9b6309b2):',
    '    slab_post_alloc_hook.constprop.0+0x61/0x7b',
    '    __kmalloc_node_track_caller_noprof+0x65/0x8e',
    '    kvasprintf+0x57/0x99',
    '    kasprintf+0x50/0x52',
    '    iommu_group_alloc_device+0x6c/0x1ad',
    '    __iommu_probe_device+0x209/0x320',
    '    probe_iommu_group+0x22/0x41',
    '',
  ].join('\n');
  const runs = judgeBoot(evidence([...boot, ...vfio], { dmesg: [...boot, ...vfio].join('\n'), kmemleak: dump, outcomes: [vfioOutcome, outcome('kmemleak')] }));
  const byScenario = Object.fromEntries(runs.map((run) => [run.scenario, run]));
  t.is(byScenario['vfio-bind-unbind']?.verdict, 'pass');
  t.is(byScenario['kmemleak']?.verdict, 'fail');
  t.like(byScenario['kmemleak']?.reports[0], { kind: 'kmemleak', title: 'memory leak in __iommu_probe_device', step: 'kmemleak/scan' });
});

const removal = ['[    5.000000] iommu-harness: step vfio-bind-unbind/bind', '[    6.000000] iommu-harness: step vfio-bind-unbind/remove'];
const goneMark = '[    6.100100] iommu-harness: device-gone 0000:01:00.0';
const flood = '** 5 printk messages dropped **';

test('a leak inferred across a hole in the log is inconclusive, not a finding: the release may be in the hole', (t) => {
  const runs = judgeBoot(evidence([...boot, ...removal, flood, goneMark], { outcomes: [vfioOutcome] }));
  const run = runs.find((candidate) => candidate.scenario === 'vfio-bind-unbind')!;
  t.is(run.verdict, 'inconclusive');
  t.deepEqual(run.leaks, []);
  t.deepEqual(run.unconfirmedLeaks, [{ group: 3, devices: ['0000:01:00.0'], step: 'vfio-bind-unbind/remove' }]);
  t.true(run.inconclusive.includes('vfio-bind-unbind/remove: iommu group 3 (0000:01:00.0) was never seen released, but the kernel dropped 5 log message(s) at vfio-bind-unbind/remove, after it was made: its release may be among them'));
  // A late release may fall in a later scenario's hole just as well.
  const later = judgeBoot(evidence([...boot, ...removal, goneMark, '[    7.000000] iommu-harness: step pci-hotplug/add', flood], { outcomes: [vfioOutcome, outcome('pci-hotplug')] }));
  t.is(later.find((candidate) => candidate.scenario === 'vfio-bind-unbind')?.verdict, 'inconclusive');
});

test('a hole before the group was made, or sysfs still listing the emptied group, leaves the leak a finding', (t) => {
  const early = [boot[0]!, flood, ...boot.slice(1)];
  const before = judgeBoot(evidence([...early, ...removal, goneMark], { outcomes: [vfioOutcome] })).find((candidate) => candidate.scenario === 'vfio-bind-unbind')!;
  t.is(before.verdict, 'fail');
  t.deepEqual(before.leaks, [{ group: 3, devices: ['0000:01:00.0'], step: 'vfio-bind-unbind/remove' }]);
  const sysfsGroups = [{ step: 'vfio-bind-unbind/remove', groups: { 0: ['0000:00:00.0'], 3: [] } }];
  const listed = judgeBoot(evidence([...boot, ...removal, flood, goneMark, '[    7.000000] iommu-harness: step pci-hotplug/add'], { outcomes: [{ ...vfioOutcome, sysfsGroups }, outcome('pci-hotplug')] }));
  const run = listed.find((candidate) => candidate.scenario === 'vfio-bind-unbind')!;
  t.is(run.verdict, 'fail');
  t.deepEqual(run.leaks, [{ group: 3, devices: ['0000:01:00.0'], step: 'vfio-bind-unbind/remove' }]);
  t.is(run.unconfirmedLeaks, undefined);
});

test('a group gone from sysfs with its release maybe in a hole is inconclusive, not a disagreement', (t) => {
  const sysfsGroups: SysfsSnapshot[] = [
    { step: 'vfio-bind-unbind/bind', groups: { 0: ['0000:00:00.0'], 3: ['0000:01:00.0'] } },
    { step: 'vfio-bind-unbind/remove', groups: { 0: ['0000:00:00.0'] } },
  ];
  const lines = [...boot, removal[0]!, removal[1]!, flood, '[    7.000000] iommu-harness: step pci-hotplug/add'];
  const run = judgeBoot(evidence(lines, { outcomes: [{ ...vfioOutcome, goneDevices: [], sysfsGroups }, outcome('pci-hotplug')] })).find((candidate) => candidate.scenario === 'vfio-bind-unbind')!;
  t.deepEqual(run.failedChecks, []);
  t.is(run.verdict, 'inconclusive');
  t.true(run.inconclusive.some((reason) => /iommu group 3 \(0000:01:00\.0\) left \/sys\/kernel\/iommu_groups unreleased in the log, but the log has a hole/.test(reason)));
});

test('a boot that shows "Adding to iommu group" but never "Allocated group" is an error naming dynamic debug, not a leak per removal', (t) => {
  // A kernel built without CONFIG_DYNAMIC_DEBUG prints the dev_info add but neither pr_debug line.
  const silent = boot.filter((line) => !/Allocated group/.test(line));
  const runs = judgeBoot(evidence([...silent, ...removal, goneMark], { outcomes: [vfioOutcome] }));
  const run = runs.find((candidate) => candidate.scenario === 'vfio-bind-unbind')!;
  t.is(run.verdict, 'error');
  t.regex(run.error ?? '', /never "Allocated group".*dynamic debug \(CONFIG_DYNAMIC_DEBUG=y/);
  t.deepEqual(run.leaks, []);
  t.deepEqual(run.unconfirmedLeaks, [{ group: 3, devices: ['0000:01:00.0'], step: 'vfio-bind-unbind/remove' }]);
  t.is(runs.find((candidate) => candidate.scenario === 'boot')?.verdict, 'error');
  // A kernel report is still a finding; a log with the lifecycle lines is judged as before.
  t.is(judgeBoot(evidence([...silent, ...removal, ...warn('    6.050000'), goneMark], { outcomes: [vfioOutcome] })).find((candidate) => candidate.scenario === 'vfio-bind-unbind')?.verdict, 'fail');
  t.is(judgeBoot(evidence([...boot, ...removal, goneMark], { outcomes: [vfioOutcome] })).find((candidate) => candidate.scenario === 'vfio-bind-unbind')?.verdict, 'fail');
});
