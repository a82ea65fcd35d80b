// The oracle on Linux 7.2's own consoles, next to the 6.12 and 6.1 ones in oracle-reports: each
// file of test/fixtures/oracle/7.2 is an excerpt of a real 7.2 boot under the harness (`.log`, or
// `.log.gz` when large), with its expected findings on top (TITLE, KIND, LOCATION, DEVICE,
// ADDRESS, STEP, EXPECT-REPORTS, EXPECT-LEAKS, GROUPS-RELEASED). The formats each one pins are the
// printk formats of 7.2's source: DMAR faults with the PCI segment (drivers/iommu/intel/dmar.c),
// the WARNING header `WARNING: FILE:LINE at FUNC, CPU#N: COMM/PID` (kernel/panic.c __warn()), the
// group messages (drivers/iommu/iommu.c), lockdep's report.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { accountGroups, parseKernelLog } from '../../harness/oracle/index.ts';
import { expectationsContradicted, parseHeaderLog } from '../fixtures/oracle/header-log.ts';

const dir = new URL('../fixtures/oracle/7.2/', import.meta.url);
const read = (name: string) => {
  const bytes = readFileSync(new URL(name, dir));
  return parseHeaderLog((name.endsWith('.gz') ? gunzipSync(bytes) : bytes).toString('utf8'));
};
const names = readdirSync(dir).filter((name) => /\.log(\.gz)?$/.test(name));

test('there are real 7.2 captures', (t) => {
  t.true(names.length > 0);
});

for (const name of names) {
  test(`7.2 ${name}`, (t) => {
    const { headers, log } = read(name);
    const one = (key: string): string | undefined => headers.get(key)?.[0];
    t.is(one('SOURCE'), 'captured', 'every 7.2 fixture is a real capture');
    t.regex(log, /Linux version 7\.2\.\d+/, 'the excerpt keeps the kernel banner');
    t.not(one('EXPECT-REPORTS'), undefined);
    t.not(one('EXPECT-LEAKS'), undefined);
    t.deepEqual(expectationsContradicted(headers), []);
    const parsed = parseKernelLog(log);
    const ledger = accountGroups(parsed.groupEvents);
    t.is(parsed.reports.length, Number(one('EXPECT-REPORTS')), parsed.reports.map((report) => report.title).join('\n'));
    t.is(ledger.leaks.length, Number(one('EXPECT-LEAKS')));
    if (one('GROUPS-RELEASED') !== undefined) t.is(ledger.groups.filter((group) => group.released).length, Number(one('GROUPS-RELEASED')));
    t.deepEqual(ledger.anomalies, []);
    const title = one('TITLE');
    if (title === undefined) return;
    const report = parsed.reports.find((candidate) => candidate.title === title);
    if (!report) return t.fail(`no report titled ${title}: ${parsed.reports.map((candidate) => candidate.title).join('; ')}`);
    for (const [key, field] of [
      ['KIND', 'kind'],
      ['LOCATION', 'location'],
      ['FRAME', 'guiltyFrame'],
      ['STEP', 'step'],
      ['DEVICE', 'device'],
      ['ADDRESS', 'address'],
    ] as const) {
      if (one(key) !== undefined) t.is(report[field] as string | undefined, one(key), key);
    }
    t.false(report.corrupted, 'a complete report is not corrupted');
  });
}

// The same messages as 7.2's source prints them, for the formats no fault patch makes the kernel print.
test("7.2's late-probe dev_WARN is a WARNING in __iommu_probe_device, read from the new header", (t) => {
  const log = [
    '[    1.200000] ------------[ cut here ]------------',
    '[    1.200001] pci 0000:01:00.0: late IOMMU probe at driver bind, something fishy here!',
    '[    1.200002] WARNING: drivers/iommu/iommu.c:654 at __iommu_probe_device+0x1a2/0x4b0, CPU#0: swapper/0/1',
    '[    1.200003] Modules linked in:',
    '[    1.200004] CPU: 0 UID: 0 PID: 1 Comm: swapper/0 Not tainted 7.2.13 #1 PREEMPT(lazy)',
    '[    1.200005] RIP: 0010:__iommu_probe_device+0x1a2/0x4b0',
    '[    1.200006] Call Trace:',
    '[    1.200007]  <TASK>',
    '[    1.200008]  iommu_probe_device+0x2d/0x70',
    '[    1.200009]  really_probe+0x3c/0x3c0',
    '[    1.200010]  </TASK>',
    '[    1.200011] ---[ end trace 0000000000000000 ]---',
  ].join('\n');
  const [warning, ...rest] = parseKernelLog(log).reports;
  t.like(warning, { kind: 'warning', title: 'WARNING in __iommu_probe_device', location: 'drivers/iommu/iommu.c:654', corrupted: false });
  t.regex(warning?.lines.join('\n') ?? '', /late IOMMU probe at driver bind, something fishy here!/);
  t.deepEqual(rest, []);
});

test("7.2's WARNING without a file (`WARNING: at FUNC, CPU#N: COMM/PID`) is titled by its function", (t) => {
  const log = [
    '[    5.100000] ------------[ cut here ]------------',
    '[    5.100002] WARNING: at iommu_group_release+0x1a2/0x4b0, CPU#1: kworker/1:1/53',
    '[    5.100005] RIP: 0010:iommu_group_release+0x1a2/0x4b0',
    '[    5.100006] Call Trace:',
    '[    5.100007]  <TASK>',
    '[    5.100008]  kobject_put+0x2d/0x70',
    '[    5.100010]  </TASK>',
    '[    5.100011] ---[ end trace 0000000000000000 ]---',
  ].join('\n');
  t.like(parseKernelLog(log).reports[0], { kind: 'warning', title: 'WARNING in iommu_group_release', corrupted: false });
});

test("iommufd's object timeout (drivers/iommu/iommufd/main.c, pr_crit) is a leaked-reference report", (t) => {
  const log = [
    '[   70.000000] iommu-harness: step vfio-bind-unbind/iommufd',
    '[  130.500000] iommufd: Time out waiting for iommufd object to become free',
  ].join('\n');
  const [report, ...rest] = parseKernelLog(log).reports;
  t.like(report, { title: 'iommufd: leaked object reference: timed out waiting for an iommufd object to become free', step: 'vfio-bind-unbind/iommufd', corrupted: false });
  t.deepEqual(rest, []);
});

test('intel DMAR faults: 7.2 prints the PCI segment, 6.x does not; both read as the same device, a segment other than 0 is kept', (t) => {
  const lines = [
    'DMAR: [DMA Read NO_PASID] Request device [0000:01:00.0] fault addr 0x100000 [fault reason 0x06] PTE Read access is not set',
    'DMAR: [DMA Read NO_PASID] Request device [01:00.0] fault addr 0x100000 [fault reason 0x06] PTE Read access is not set',
    'DMAR: [DMA Write PASID 0x1] Request device [0001:02:00.1] fault addr 0x2000 [fault reason 0x05] PTE Write access is not set',
    'DMAR: [INTR-REMAP] Request device [0000:00:1f.0] fault index 0x8 [fault reason 0x25] Blocked a compatibility format interrupt request',
    'DMAR: [INTR-REMAP] Request device [00:1f.0] fault index 0x8 [fault reason 0x25] Blocked a compatibility format interrupt request',
  ].map((line, i) => `[   ${i + 10}.000000] ${line}`);
  // The 7.2 line and the 6.x line of one fault are one report, the second its repeat.
  t.deepEqual(
    parseKernelLog(lines.join('\n')).reports.map((report) => [report.kind, report.title, report.device, report.address, report.repeats]),
    [
      ['iommu-fault', 'DMAR: DMA Read fault: PTE Read access is not set', '01:00.0', '0x100000', 1],
      ['iommu-fault', 'DMAR: DMA Write fault: PTE Write access is not set', '0001:02:00.1', '0x2000', undefined],
      ['iommu-fault', 'DMAR: interrupt remapping fault: Blocked a compatibility format interrupt request', '00:1f.0', 'index 0x8', 1],
    ],
  );
});

test("7.2 on virtio-iommu: a device joins its group at add (boot), not at vfio-pci bind, and the ledger still closes every removal's group in the removal step", (t) => {
  const parsed = parseKernelLog(read('clean-virtio-shared-boot.log.gz').log);
  const firstStep = parsed.groupEvents.length ? Math.min(...parsed.groupEvents.filter((event) => event.step !== undefined).map((event) => event.line)) : 0;
  const bootAdds = parsed.groupEvents.filter((event) => event.type === 'device-added' && event.line < firstStep).map((event) => event.device);
  // vfio-bind-unbind's edu (behind its root port) and the root ports themselves: in groups before any step.
  t.true(bootAdds.includes('0000:06:00.0'), bootAdds.join(' '));
  t.true(bootAdds.includes('0000:00:02.0'));
  const released = parsed.groupEvents.filter((event) => event.type === 'released').map((event) => event.step);
  t.deepEqual(released, ['vfio-bind-unbind/remove', 'pci-hotplug/del', 'remove-rescan/remove', 'multifunction/remove-f0', 'unplug-while-open/unplug', 'rebind-original-driver/remove']);
});

test("a real 7.2 iommufd object timeout: the leaked-reference report, the hang that led to it and the WARN after it, all in the step that closed the device", (t) => {
  const reports = parseKernelLog(read('iommufd-object-wait-timeout.log.gz').log).reports;
  t.deepEqual(
    reports.map((report) => [report.kind, report.title, report.step]),
    [
      ['hang', 'INFO: task hung in iommufd_object_remove', 'iommufd-wait/iommufd'],
      ['bug', 'iommufd: leaked object reference: timed out waiting for an iommufd object to become free', 'iommufd-wait/iommufd'],
      ['warning', 'WARNING in iommufd_object_destroy_user', 'iommufd-wait/iommufd'],
    ],
  );
  t.is(reports[2]?.location, 'drivers/iommu/iommufd/iommufd_private.h:231');
  t.is(reports[0]?.repeats, 4, 'the blocked task re-reported every 10 s is one hang');
});
