import test from 'ava';
import { accountGroups, parseKernelLog } from '../../harness/oracle/index.ts';

// Real 6.12 message formats; the harness turns on the pr_debug ones with dyndbg.
const ts = (lines: string[]): string => lines.map((l, i) => `[${(10 + i / 100).toFixed(6).padStart(12)}] ${l}`).join('\n');
const ledger = (lines: string[]) => accountGroups(parseKernelLog(ts(lines)).groupEvents);

test('group ids are reused after release: records are instances', (t) => {
  const acc = ledger([
    'iommu: Allocated group 5',
    'pci 0000:01:00.0: Adding to iommu group 5',
    'pci 0000:01:00.0: Removing from iommu group 5',
    'iommu: Releasing group 5',
    'iommu: Allocated group 5',
    'pci 0000:02:00.0: Adding to iommu group 5',
  ]);
  t.is(acc.groups.length, 2);
  t.deepEqual(acc.groups.map((g) => [g.id, g.devices, g.released]), [
    [5, ['0000:01:00.0'], true],
    [5, ['0000:02:00.0'], false],
  ]);
  t.deepEqual(acc.leaks, []);
  t.deepEqual(acc.anomalies, []);
});

test('a group of three devices is released only with its last member', (t) => {
  const acc = ledger([
    'iommu: Allocated group 3',
    'pci 0000:00:1f.0: Adding to iommu group 3',
    'pci 0000:00:1f.2: Adding to iommu group 3',
    'pci 0000:00:1f.3: Adding to iommu group 3',
    'pci 0000:00:1f.0: Removing from iommu group 3',
    'pci 0000:00:1f.2: Removing from iommu group 3',
    'pci 0000:00:1f.3: Removing from iommu group 3',
    'iommu: Releasing group 3',
  ]);
  t.deepEqual(acc.groups[0]?.devices, ['0000:00:1f.0', '0000:00:1f.2', '0000:00:1f.3']);
  t.true(acc.groups[0]?.released);
  t.deepEqual(acc.leaks, []);
});

test('a group whose devices all left and that is never released leaks, with the step', (t) => {
  const acc = ledger([
    'iommu-harness: step vfio-bind-unbind/bind',
    'iommu: Allocated group 7',
    'vfio-pci 0000:01:00.0: Adding to iommu group 7',
    'pci 0000:01:00.1: Adding to iommu group 7',
    'iommu-harness: step vfio-bind-unbind/unbind',
    'pci 0000:01:00.0: Removing from iommu group 7',
    'iommu-harness: step hotplug/unplug',
    'pci 0000:01:00.1: Removing from iommu group 7',
    'iommu-harness: step done',
  ]);
  t.deepEqual(acc.leaks, [{ group: 7, devices: ['0000:01:00.0', '0000:01:00.1'], step: 'hotplug/unplug' }]);
});

test('a group still holding devices at the end is not a leak', (t) => {
  const acc = ledger(['iommu: Allocated group 1', 'pci 0000:00:02.0: Adding to iommu group 1']);
  t.deepEqual(acc.leaks, []);
  t.false(acc.groups[0]?.released);
});

test('release of a group never seen, and a second release of one instance', (t) => {
  const acc = ledger([
    'iommu: Releasing group 9',
    'iommu: Allocated group 2',
    'pci 0000:03:00.0: Adding to iommu group 2',
    'pci 0000:03:00.0: Removing from iommu group 2',
    'iommu: Releasing group 2',
    'iommu: Releasing group 2',
  ]);
  t.deepEqual(acc.anomalies.map((a) => [a.kind, a.group]), [
    ['release-of-unknown', 9],
    ['double-release', 2],
  ]);
});

test('6.12 device-gone marks resolve the group from the device, even after the id was reused', (t) => {
  const acc = ledger([
    'iommu: Allocated group 4',
    'pci 0000:01:00.0: Adding to iommu group 4',
    'iommu-harness: step hotplug/unplug',
    // 6.12 releases before the harness has confirmed the device is gone.
    'iommu: Releasing group 4',
    'iommu: Allocated group 4',
    'pci 0000:02:00.0: Adding to iommu group 4',
    'iommu-harness: device-gone 0000:01:00.0',
    'iommu-harness: step hotplug/unplug-second',
    'iommu-harness: device-gone 0000:02:00.0',
  ]);
  t.deepEqual(acc.groups.map((g) => g.released), [true, false]);
  t.deepEqual(acc.leaks, [{ group: 4, devices: ['0000:02:00.0'], step: 'hotplug/unplug-second' }]);
});

test('events carry the step and the device; prefixes and CRLF do not matter', (t) => {
  const log = [
    '<6>[    3.100000][    T1] iommu-harness: step boot',
    '<6>[    3.200000][   T53] pci 0000:00:03.0: Adding to iommu group 2',
    '<7>[    3.300000][   T53] iommu: Releasing group 2',
  ].join('\r\n');
  const parsed = parseKernelLog(log);
  t.deepEqual(parsed.marks, [{ step: 'boot', line: 0 }]);
  t.deepEqual(parsed.groupEvents, [
    { type: 'device-added', device: '0000:00:03.0', group: 2, line: 1, step: 'boot' },
    { type: 'released', group: 2, line: 2, step: 'boot' },
  ]);
});
