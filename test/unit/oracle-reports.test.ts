// Walks test/fixtures/oracle/reports: each file is a raw log with its expected findings on top
// (TITLE, KIND, LOCATION, FRAME, STEP, REPORTS, LEAKS, LOCKDEP-OFF; SOURCE says whether it is a
// real capture or hand-written; real captures carry EXPECT-REPORTS/EXPECT-LEAKS written by a person
// who read the log). A new case is a new file.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { accountGroups, parseKernelLog } from '../../harness/oracle/index.ts';
import { maxReportLines } from '../../harness/oracle/reports.ts';
import { expectationsContradicted, parseHeaderLog } from '../fixtures/oracle/header-log.ts';

const dir = new URL('../fixtures/oracle/reports/', import.meta.url);
const fixture = (name: string) => parseHeaderLog(readFileSync(new URL(name, dir), 'utf8'));

for (const name of readdirSync(dir).filter((f) => f.endsWith('.log'))) {
  test(name, (t) => {
    const { headers, log } = fixture(name);
    const one = (key: string): string | undefined => headers.get(key)?.[0];
    const source = one('SOURCE');
    t.true(source === 'captured' || source === 'hand-written', 'SOURCE: captured or hand-written');
    if (source === 'captured') {
      t.not(one('EXPECT-REPORTS'), undefined, 'a real capture carries EXPECT-REPORTS from a person who read it');
      t.not(one('EXPECT-LEAKS'), undefined, 'a real capture carries EXPECT-LEAKS from a person who read it');
    }
    t.deepEqual(expectationsContradicted(headers), []);
    const parsed = parseKernelLog(log);
    const first = parsed.reports[0];
    const leaked = accountGroups(parsed.groupEvents).leaks.length;
    for (const key of ['REPORTS', 'EXPECT-REPORTS']) {
      if (one(key) !== undefined) t.is(parsed.reports.length, Number(one(key)), key);
    }
    for (const key of ['LEAKS', 'EXPECT-LEAKS']) {
      if (one(key) !== undefined) t.is(leaked, Number(one(key)), key);
    }
    const title = one('TITLE');
    if (title === undefined) {
      t.is(first, undefined);
      return;
    }
    if (!first) return t.fail('no report found');
    t.is(first.title, title);
    const kind = one('KIND');
    if (kind !== undefined) t.is<string, string>(first.kind, kind);
    if (one('LOCATION') !== undefined) t.is(first.location, one('LOCATION'));
    if (one('FRAME') !== undefined) t.is(first.guiltyFrame, one('FRAME'));
    if (one('STEP') !== undefined) t.is(first.step, one('STEP'));
    if (one('LOCKDEP-OFF') === 'Y') t.is(parsed.lockdepOff?.title, title);
    t.false(first.corrupted, 'a complete report is not corrupted');
    t.true(first.lines.length > 0 && first.endLine > first.startLine);
  });
}

test('a machine expectation a person contradicts is caught, even when it equals what the oracle prints', (t) => {
  // What scripts/capture-fixtures.ts used to write for the hang capture (the oracle then counted
  // the re-reported hung task twice), next to what a person reading the log writes.
  const headers = new Map([
    ['REPORTS', ['2']],
    ['EXPECT-REPORTS', ['1']],
    ['LEAKS', ['0']],
    ['EXPECT-LEAKS', ['0']],
  ]);
  t.deepEqual(expectationsContradicted(headers), ['REPORTS: 2, but a person who read the log wrote EXPECT-REPORTS: 1']);
});

test('a hung task the kernel re-reports every timeout is one report, with its repeats counted', (t) => {
  const [hang, ...rest] = parseKernelLog(fixture('real-hang-rescan-behind-removal.log').log).reports;
  t.is(hang?.title, 'INFO: task hung in rescan_store');
  t.is(hang?.repeats, 1);
  t.deepEqual(rest, []);
  // The report ends with the kernel's printing: the release 10 s later is not part of it.
  t.false(hang?.lines.some((line) => line.includes('Releasing group')));
  t.is(hang?.lines.filter((line) => line !== '').at(-1), '=============================================');
});

/** A fixture's raw log lines from the one containing `from` to the one containing `to`. */
function region(name: string, from: string, to: string): string[] {
  const lines = fixture(name).log.split('\n');
  const start = lines.findIndex((line) => line.includes(from));
  const end = lines.findIndex((line, i) => i > start && line.includes(to));
  return lines.slice(start, end + 1);
}

/** The same lines printed later: timestamps moved so the first is at `at` seconds, spacing kept. */
function printedAt(lines: string[], at: number): string[] {
  const stamp = /^\[ *(\d+\.\d+)\]/;
  const first = Number(stamp.exec(lines[0] ?? '')?.[1]);
  return lines.map((line) =>
    line.replace(stamp, (_, time: string) => `[${(at + Number(time) - first).toFixed(6).padStart(12)}]`),
  );
}

// Built from two real captures, concatenated as the kernel would print them: the first hung-task
// report of real-hang-rescan-behind-removal.log (no end marker), then the circular-locking report
// of real-lockdep-remove-inversion.log moved to just after it. Nothing but the timestamps is changed.
const hangReport = region('real-hang-rescan-behind-removal.log', 'iommu-harness: step hung-rescan/remove-and-rescan', '=============================================');
const lockdepReport = region('real-lockdep-remove-inversion.log', 'WARNING: possible circular locking dependency detected', '</TASK>');
const lockdepWithRule = region('real-lockdep-remove-inversion.log', '======================================================', '</TASK>');

test('a hung task (no end marker) does not swallow a circular-locking report printed right after it', (t) => {
  const log = [...hangReport, ...printedAt(lockdepWithRule, 64.5)].join('\n');
  const reports = parseKernelLog(log).reports;
  t.deepEqual(
    reports.map((report) => report.title),
    ['INFO: task hung in rescan_store', 'possible deadlock in __iommu_group_remove_device'],
  );
  t.is(reports[1]?.step, 'hung-rescan/remove-and-rescan');
  t.is(reports[1]?.lines[0], '======================================================', 'the rule opens the lockdep report, not the hang');
  t.false(reports[0]?.lines.some((line) => line.includes('circular locking')));
});

test('a sleeping-function-in-atomic report (no end marker) does not swallow a circular-locking report printed right after it', (t) => {
  // Two real captures, concatenated as the kernel would print them: the atomic-sleep report of
  // real-atomic-sleep-release.log (up to its </TASK>), then real-lockdep-remove-inversion.log's
  // circular-locking report moved to 0.1 s after it, before any further step mark.
  const atomic = region('real-atomic-sleep-release.log', 'iommu-harness: step remove-rescan/remove', '</TASK>');
  const log = [...atomic, ...printedAt(lockdepWithRule, 17.4)].join('\n');
  const reports = parseKernelLog(log).reports;
  t.deepEqual(
    reports.map((report) => [report.title, report.step]),
    [
      ['BUG: sleeping function called from invalid context in iommu_release_device', 'remove-rescan/remove'],
      ['possible deadlock in __iommu_group_remove_device', 'remove-rescan/remove'],
    ],
  );
  t.false(reports[0]?.lines.some((line) => line.includes('circular locking')));
  t.is(parseKernelLog(log).lockdepOff?.title, 'possible deadlock in __iommu_group_remove_device');
});

test('a report printed after the next step mark lands in that step, not in the open report before it', (t) => {
  const mark = printedAt(['[    0.000000] iommu-harness: step hung-rescan/after'], 70);
  const log = [...hangReport, ...mark, ...printedAt(lockdepReport, 71)].join('\n');
  const reports = parseKernelLog(log).reports;
  t.deepEqual(reports.map((report) => [report.title, report.step]), [
    ['INFO: task hung in rescan_store', 'hung-rescan/remove-and-rescan'],
    ['possible deadlock in __iommu_group_remove_device', 'hung-rescan/after'],
  ]);
});

test('an open report is capped: it never owns more than the cap, however long the kernel goes on', (t) => {
  // The hang report, then the real capture's own later lines repeated without a pause or a mark.
  const filler = printedAt(region('real-hang-rescan-behind-removal.log', 'Linux version', 'Switched to clocksource'), 64.3);
  const many = Array.from({ length: Math.ceil((2 * maxReportLines) / filler.length) }, (_, k) => printedAt(filler, 64.3 + k * 0.001)).flat();
  const [hang] = parseKernelLog([...hangReport, ...many].join('\n')).reports;
  t.truthy(hang);
  t.true((hang?.lines.length ?? Infinity) <= maxReportLines);
});

test('the taint notice turns lockdep off for later reports', (t) => {
  // Hand-written fixtures: 6.12 prints "Disabling lock debugging due to kernel taint" after an
  // oops (TAINT_DIE), not after a WARN (which keeps lockdep on); the notice is what is tested.
  const warn = fixture('warn-iommu-group-release.log').log;
  const lockdep = fixture('lockdep-iommu-group-mutex.log').log;
  const tainted = '[   15.110600] Disabling lock debugging due to kernel taint\n';
  const parsed = parseKernelLog(warn + tainted + lockdep);
  t.deepEqual(parsed.reports.map((r) => r.title), ['WARNING in iommu_group_release', 'possible deadlock in __iommu_group_remove_device']);
  t.is(parsed.lockdepOff?.title, 'WARNING in iommu_group_release');
  t.is(parsed.lockdepOff?.step, 'hotplug/unplug');
  t.true(parsed.reports[1]?.afterLockdepOff);
  t.falsy(parsed.reports[0]?.afterLockdepOff);
  t.deepEqual(parsed.blindSpots.map((spot) => [spot.check, spot.step]), [['lockdep', 'hotplug/unplug']]);
});

test('report lines have prefixes stripped and other callers left out', (t) => {
  const [report] = parseKernelLog(fixture('warn-caller-ids-crlf.log').log).reports;
  t.truthy(report);
  t.is(report?.lines[0], '------------[ cut here ]------------');
  t.false(report?.lines.some((l) => l.includes('enabling device') || l.endsWith('\r')));
  t.is(report?.lines.at(-1), '---[ end trace 0000000000000000 ]---');
});

test('a panic after the end of a report is part of it', (t) => {
  const warn = fixture('real-warning-default-domain.log').log.split('\n');
  const end = warn.findIndex((line) => line.includes('---[ end trace'));
  const panic = ['[    7.114200] Kernel panic - not syncing: kernel: panic_on_warn set ...', '[    7.114300] ---[ end Kernel panic - not syncing: kernel: panic_on_warn set ... ]---'];
  const parsed = parseKernelLog([...warn.slice(0, end + 1), ...panic].join('\n'));
  t.is(parsed.reports.length, 1);
  t.true(parsed.reports[0]?.lines.at(-1)?.startsWith('---[ end Kernel panic'));
});

test('dropped console lines and a disabled kmemleak are blind spots in the step they happened', (t) => {
  const log = [
    '[    5.000000] iommu-harness: step vfio-bind-unbind/remove',
    '** 12 printk messages dropped **',
    '[    5.100000] iommu: Releasing group 4',
    '[    6.000000] kmemleak: Cannot allocate a kmemleak_object structure',
    '[    6.000100] kmemleak: Kernel memory leak detector disabled',
    '[    6.100000] dmar_fault: 3 callbacks suppressed',
    '[    6.200000] net_ratelimit: 5 callbacks suppressed',
  ].join('\n');
  t.deepEqual(
    parseKernelLog(log).blindSpots.map((spot) => [spot.check, spot.step, spot.reason]),
    [
      ['log', 'vfio-bind-unbind/remove', 'the kernel dropped 12 log message(s)'],
      ['kmemleak', 'vfio-bind-unbind/remove', 'kmemleak was disabled (kmemleak: Kernel memory leak detector disabled)'],
      ['log', 'vfio-bind-unbind/remove', 'the kernel suppressed 3 message(s) of dmar_fault'],
    ],
  );
});

test('IOMMU faults are reports with the device and the address: intel DMAR and virtio-iommu lines (6.12 wording)', (t) => {
  // Format strings from drivers/iommu/intel/dmar.c dmar_fault_do_one() and
  // drivers/iommu/virtio-iommu.c viommu_fault_handler() in the Debian 6.12 source.
  const log = [
    '[    5.000000] iommu-harness: step vfio-bind-unbind/container',
    '[    5.100000] DMAR: [DMA Write NO_PASID] Request device [01:00.0] fault addr 0x41000 [fault reason 0x05] PTE Write access is not set',
    '[    5.100100] DMAR: [DMA Read PASID 0x1] Request device [02:00.1] fault addr 0xfff000 [fault reason 0x06] PTE Read access is not set',
    '[    5.100200] DMAR: [INTR-REMAP] Request device [00:1f.0] fault index 0x1a [fault reason 0x25] Blocked a compatibility format interrupt request',
    '[    5.200000] virtio_iommu virtio0: page fault from EP 256 at 0x40000 [R]',
    '[    5.200100] virtio_iommu virtio0: domain fault from EP 264',
    '[    5.200200] virtio_iommu virtio0: page fault from EP 256 at 0x40000 [R]',
    '[    5.200300] virtio_iommu virtio0: page fault from EP 256 at 0 [W]',
  ].join('\n');
  const reports = parseKernelLog(log).reports;
  t.deepEqual(
    reports.map((r) => [r.kind, r.title, r.device, r.address, r.step, r.repeats]),
    [
      ['iommu-fault', 'DMAR: DMA Write fault: PTE Write access is not set', '01:00.0', '0x41000', 'vfio-bind-unbind/container', undefined],
      ['iommu-fault', 'DMAR: DMA Read fault: PTE Read access is not set', '02:00.1', '0xfff000', 'vfio-bind-unbind/container', undefined],
      ['iommu-fault', 'DMAR: interrupt remapping fault: Blocked a compatibility format interrupt request', '00:1f.0', 'index 0x1a', 'vfio-bind-unbind/container', undefined],
      ['iommu-fault', 'virtio-iommu: page fault [R]', '01:00.0', '0x40000', 'vfio-bind-unbind/container', 1],
      ['iommu-fault', 'virtio-iommu: domain fault', '01:01.0', undefined, 'vfio-bind-unbind/container', undefined],
      ['iommu-fault', 'virtio-iommu: page fault [W]', '01:00.0', '0', 'vfio-bind-unbind/container', undefined],
    ],
  );
});

test('a device-gone mark written while a WARN is still printing (the removal path) does not cut the report', (t) => {
  // The real WARN capture, with the harness's device-gone mark moved to where a second CPU could
  // have written it: between the WARN's header and its stack.
  const lines = fixture('real-warning-default-domain.log').log.split('\n').filter((line) => !line.includes('device-gone'));
  const trace = lines.findIndex((line) => line.includes('Call Trace:'));
  lines.splice(trace, 0, '[    7.110000] iommu-harness: device-gone 0000:01:00.0');
  const [warn, ...rest] = parseKernelLog(lines.join('\n')).reports;
  t.is(warn?.title, 'WARNING in iommu_group_release');
  t.false(warn?.corrupted);
  t.deepEqual(rest, []);
});

test('a real DMAR fault: one report with the device and the address, its repeat counted', (t) => {
  const [fault, ...rest] = parseKernelLog(fixture('real-dmar-fault-identity-bridge.log').log).reports;
  t.like(fault, { kind: 'iommu-fault', device: '02:00.0', address: '0x3039000', step: 'identity-behind-bridge/dma', repeats: 1 });
  t.deepEqual(rest, []);
});

test('AMD-Vi I/O page faults are reports with the device and the address, on the device or by device ID (6.12 and 7.2 format strings)', (t) => {
  // drivers/iommu/amd/iommu.c amd_iommu_report_page_fault(), the same in Debian's 6.12 and 7.2:
  // pci_err() with the device, else pr_err_ratelimited() naming the device ID; pr_fmt "AMD-Vi: ".
  const log = [
    '[    5.000000] iommu-harness: step vfio-bind-unbind/container',
    '[    5.100000] vfio-pci 0000:00:11.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0003 address=0x100000 flags=0x0000]',
    '[    5.100100] AMD-Vi: Event logged [IO_PAGE_FAULT device=0000:01:00.0 domain=0x0004 address=0x41000 flags=0x0020]',
  ].join('\n');
  t.deepEqual(
    parseKernelLog(log).reports.map((r) => [r.kind, r.title, r.device, r.address, r.step]),
    [
      ['iommu-fault', 'AMD-Vi: IO_PAGE_FAULT', '00:11.0', '0x100000', 'vfio-bind-unbind/container'],
      ['iommu-fault', 'AMD-Vi: IO_PAGE_FAULT', '01:00.0', '0x41000', 'vfio-bind-unbind/container'],
    ],
  );
});
