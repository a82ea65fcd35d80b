// A nightly job red only for news: the exit code says what is new against the baseline. A cell
// inconclusive (or erroring) as in the baseline is shown as such and does not turn the job red;
// one newly so, or for another reason, does. The shipped plan's Debian 6.1 on intel is
// inconclusive on every boot behind a known lockdep report: that alone must exit 0 night after night.
import test from 'ava';
import { renderNightSummary } from '../../harness/nightly/commands.ts';
import { renderHtml } from '../../harness/nightly/html.ts';
import { renderJUnit } from '../../harness/nightly/junit.ts';
import { normalizeReason, type Night } from '../../harness/nightly/night.ts';
import { goodBuild, night, run, type RunShape } from './nightly-fixtures.ts';

const hotplug = 'default.lockdep.intel.pci-hotplug';
// What Debian's 6.1 prints on every intel-iommu boot (a known issue), and what it costs each scenario.
const msiGetVirq = { kind: 'lockdep' as const, title: 'possible deadlock in msi_get_virq', known: "Debian's 6.1 lacks c7d624520c1b" };
const lockdepOff = "lock checking was off after possible deadlock in msi_get_virq, from boot on: a lock inversion in this scenario's steps would not be reported";

/** A 6.1-like night: vfio-bind-unbind passes, pci-hotplug is inconclusive behind the known report (and whatever else is given). */
function sixOne(extra: Partial<RunShape> = {}, name = '2026-11-25', baseline?: Night): Night {
  return night(
    [
      run({ scenario: 'vfio-bind-unbind' }),
      run({ scenario: 'pci-hotplug', cycle: 1, reports: [msiGetVirq], inconclusive: [lockdepOff], ...extra }),
      run({ scenario: 'pci-hotplug', cycle: 2, reports: [msiGetVirq], inconclusive: [lockdepOff] }),
    ],
    baseline,
    name,
  );
}

/** The baseline as an older harness wrote it: cells without inconclusive or errors. */
function older(baseline: Night): Night {
  const copy = JSON.parse(JSON.stringify(baseline)) as Night;
  for (const cell of copy.cells) {
    delete cell.inconclusive;
    delete cell.errors;
  }
  return copy;
}

const summaryOf = (n: Night) => renderNightSummary({ night: n, dir: `/nights/${n.name}`, tarball: `/nights/${n.name}/iommu-harness-${n.name}.tar.gz` });

test('a cell inconclusive for the same reason as in the baseline is still-inconclusive: shown everywhere, exit 0', (t) => {
  const yesterday = sixOne({}, '2026-11-24');
  t.is(yesterday.exitCode, 4, 'without a baseline, an inconclusive cell is new (as before)');
  t.deepEqual(yesterday.cells[1]?.inconclusive, [`pci-hotplug: ${lockdepOff}`], 'the reasons are kept in the cell');
  t.deepEqual(yesterday.diff.newInconclusive, [hotplug]);

  const tonight = sixOne({}, '2026-11-25', yesterday);
  t.is(tonight.exitCode, 0, 'the known 6.1 blindness alone does not turn the job red');
  t.is(tonight.verdict, 'inconclusive', 'the verdict still says what tonight is');
  t.deepEqual(tonight.cells.map((c) => [c.verdict, c.status]), [['pass', 'pass'], ['inconclusive', 'still-inconclusive']]);
  t.deepEqual(tonight.diff.stillInconclusive, [hotplug]);
  t.deepEqual(tonight.diff.newInconclusive, []);
  t.is(tonight.summary.inconclusive, 1);

  const junit = renderJUnit(tonight);
  t.regex(junit, /<skipped message="still inconclusive \(as in the baseline\): default\.lockdep\.intel\.pci-hotplug\.c1: pci-hotplug: lock checking was off/);
  t.regex(junit, /<system-out>as in the baseline 2026-11-24: pci-hotplug: lock checking was off/);
  const html = renderHtml(tonight);
  t.regex(html, /<td class="v still-inconclusive" id="cell-default\.lockdep\.intel\.pci-hotplug"[^>]*><a [^>]*>still inconclusive<\/a>/);
  t.regex(html, /<li>default\.lockdep\.intel\.pci-hotplug <strong>as in the baseline<\/strong>: pci-hotplug: lock checking was off/);
  t.regex(html, /0 newly inconclusive<\/strong> · 1 still inconclusive/);
  const text = summaryOf(tonight);
  t.regex(text, /inconclusive cells: 0 new, 1 as in the baseline/);
  t.regex(text, /^still inconclusive: default\.lockdep\.intel\.pci-hotplug$/m);
  t.regex(text, /exit code 0: nothing new/);
  t.notRegex(text, /NEW/);

  // Night after night: the still-inconclusive night is itself a baseline that carries the reasons.
  t.is(sixOne({}, '2026-11-26', tonight).exitCode, 0);
});

test('numbers that change from night to night do not make a reason new', (t) => {
  const reason = (pid: number, group: number, dropped: number, stamp: string, address: string) =>
    `[${stamp}] the kernel dropped ${dropped} log message(s) around PID: ${pid} in iommu group ${group} at ${address} (+0x${pid.toString(16)}/0x2c0), in pci-hotplug/cycle${group % 3}/del`;
  const yesterday = sixOne({ inconclusive: [reason(68, 7, 3, '   12.345678', 'ffff888003a1b000')] }, '2026-11-24');
  const tonight = sixOne({ inconclusive: [reason(1234, 12, 17, '  301.000001', 'ffff88800b2c4e00')] }, '2026-11-25', yesterday);
  t.is(tonight.cells[1]?.status, 'still-inconclusive');
  t.is(tonight.exitCode, 0);
  t.true(tonight.cells[1]!.inconclusive!.includes('pci-hotplug: the kernel dropped N log message(s) around PID: N in iommu group N at N (+0xN/0xN), in pci-hotplug/cycleN/del'));
});

test('normalizeReason: timestamps go, numbers read N, PCI addresses stay', (t) => {
  t.is(normalizeReason('[   12.345678] WARNING: CPU: 1 PID: 68 at drivers/iommu/iommu.c:1234 iommu_group_release+0x99/0xda'), 'WARNING: CPU: N PID: N at drivers/iommu/iommu.c:N iommu_group_release+0xN/0xN');
  t.is(normalizeReason('iommu group 7 (0000:01:00.0 0000:02:00.1) was never released'), 'iommu group N (0000:01:00.0 0000:02:00.1) was never released');
  t.is(normalizeReason('the guest did not answer SSH within  180 s\n'), 'the guest did not answer SSH within N s');
  t.not(normalizeReason('vIOMMU ledger: the trace never showed 0000:01:00.0 behind the vIOMMU'), normalizeReason('vIOMMU ledger: the trace never showed 0000:02:00.0 behind the vIOMMU'), 'another device is another reason');
});

test('a cell inconclusive for a reason the baseline did not give is new: exit 4', (t) => {
  const yesterday = sixOne({}, '2026-11-24');
  const tonight = sixOne({ inconclusive: [lockdepOff, 'kmemleak was disabled (kmemleak: Kernel memory leak detector disabled)'] }, '2026-11-25', yesterday);
  t.is(tonight.exitCode, 4);
  t.is(tonight.cells[1]?.status, 'inconclusive');
  t.deepEqual(tonight.diff.newInconclusive, [hotplug]);
  t.deepEqual(tonight.cells[1]?.inconclusive, ['pci-hotplug: kmemleak was disabled (kmemleak: Kernel memory leak detector disabled)', `pci-hotplug: ${lockdepOff}`], 'sorted');
  t.regex(renderJUnit(tonight), /<skipped message="inconclusive: /);
  t.regex(summaryOf(tonight), /^NEW INCONCLUSIVE: default\.lockdep\.intel\.pci-hotplug: .*kmemleak was disabled/m);
  t.regex(summaryOf(tonight), /exit code 4: /);

  // A cell that passed in the baseline and is inconclusive tonight became so: new.
  const clean = night([run({ scenario: 'vfio-bind-unbind' }), run({ scenario: 'pci-hotplug' })], undefined, '2026-11-24');
  const became = sixOne({}, '2026-11-25', clean);
  t.is(became.exitCode, 4);
  t.deepEqual(became.diff.newInconclusive, [hotplug]);
});

test('a baseline written before cells carried their reasons: tonight\'s inconclusive cell is new, exit 4', (t) => {
  const yesterday = older(sixOne({}, '2026-11-24'));
  t.is(yesterday.cells[1]?.inconclusive, undefined);
  const tonight = sixOne({}, '2026-11-25', yesterday);
  t.is(tonight.exitCode, 4);
  t.is(tonight.cells[1]?.status, 'inconclusive');
  t.deepEqual(tonight.diff.newInconclusive, [hotplug]);
  // And its reasons are recorded, so the next night compares.
  t.is(sixOne({}, '2026-11-26', tonight).exitCode, 0);
});

test('a new error is exit 3; the same error as in the baseline is still-error and exit 0', (t) => {
  const yesterday = sixOne({}, '2026-11-24');
  const erroring = (name: string, baseline: Night | undefined, message = 'QEMU died (exit 1): pid 4242 killed by signal 9') =>
    night([run({ scenario: 'vfio-bind-unbind', error: message, errorKind: 'qemu' }), run({ scenario: 'pci-hotplug', reports: [msiGetVirq], inconclusive: [lockdepOff] })], baseline, name);
  const tonight = erroring('2026-11-25', yesterday);
  t.is(tonight.exitCode, 3, 'vfio-bind-unbind passed in the baseline');
  t.deepEqual(tonight.cells.map((c) => c.status), ['error', 'still-inconclusive']);
  t.deepEqual(tonight.diff.newErrors, ['default.lockdep.intel.vfio-bind-unbind']);
  t.deepEqual(tonight.cells[0]?.errors, ['qemu: QEMU died (exit N): pid N killed by signal N']);
  t.regex(summaryOf(tonight), /^NEW ERROR: default\.lockdep\.intel\.vfio-bind-unbind\.c1: qemu: QEMU died/m);

  const again = erroring('2026-11-26', tonight, 'QEMU died (exit 1): pid 977 killed by signal 9');
  t.is(again.exitCode, 0, 'the same error, other numbers');
  t.deepEqual(again.cells.map((c) => c.status), ['still-error', 'still-inconclusive']);
  t.deepEqual(again.diff.stillErrors, ['default.lockdep.intel.vfio-bind-unbind']);
  t.is(again.verdict, 'error');
  t.regex(renderJUnit(again), /<error message="still erroring \(as in the baseline\): QEMU died \(exit 1\): pid 977 killed by signal 9" type="infrastructure">as in the baseline 2026-11-25: qemu: QEMU died/);
  t.regex(renderHtml(again), />still error</);
  t.regex(summaryOf(again), /^still error: default\.lockdep\.intel\.vfio-bind-unbind\.c1: qemu: /m);

  const other = erroring('2026-11-26', tonight, 'the guest did not answer SSH within 180 s');
  t.is(other.exitCode, 3, 'another error is new');
  t.is(other.cells[0]?.status, 'error');

  t.is(erroring('2026-11-26', older(tonight)).exitCode, 3, 'an older baseline without errors: the error is new');
});

test('a cell not run in the baseline and tonight is still-not-run; not run after running is new', (t) => {
  const missing = (name: string, baseline?: Night) => night([run({ scenario: 'vfio-bind-unbind' })], baseline, name);
  const first = missing('2026-11-24');
  t.is(first.exitCode, 3);
  t.deepEqual(first.cells[1]?.errors, ['not-run']);
  const second = missing('2026-11-25', first);
  t.is(second.cells[1]?.status, 'still-not-run');
  t.is(second.exitCode, 0);
  const ran = night([run({ scenario: 'vfio-bind-unbind' }), run({ scenario: 'pci-hotplug' })], undefined, '2026-11-24');
  t.is(missing('2026-11-25', ran).exitCode, 3);
});

test('a build error is new unless the baseline\'s build failed the same way', (t) => {
  const broken = { ...goodBuild, release: undefined, error: { kind: 'build', message: 'make failed at 12:03:44: drivers/iommu/intel/iommu.c:4711: error: expected ;\nmore lines' } };
  const prepared = `kernel default (lockdep) could not be prepared: ${broken.error.message}`;
  const runs = [run({ scenario: 'vfio-bind-unbind', error: prepared, errorKind: 'build' }), run({ scenario: 'pci-hotplug', error: prepared, errorKind: 'build' })];
  const first = night(runs, sixOne({}, '2026-11-24'), '2026-11-25', [broken]);
  t.is(first.exitCode, 3);
  t.deepEqual(first.diff.newBuildErrors, ['default.lockdep']);
  t.regex(summaryOf(first), /^NEW BUILD ERROR: default\.lockdep: build: make failed/m);
  const second = night(runs, first, '2026-11-26', [{ ...broken, error: { ...broken.error, message: 'make failed at 01:17:02: drivers/iommu/intel/iommu.c:4712: error: expected ;' } }]);
  t.deepEqual(second.diff.newBuildErrors, []);
  t.deepEqual(second.cells.map((c) => c.status), ['still-error', 'still-error']);
  t.is(second.exitCode, 0);
  const fixedBuild = night(runs, first, '2026-11-26', [{ ...broken, error: { kind: 'build', message: 'make failed: drivers/iommu/iommu.c:88: error: unknown type' } }]);
  t.deepEqual(fixedBuild.diff.newBuildErrors, ['default.lockdep']);
  t.is(fixedBuild.exitCode, 3);
});

test('a new finding is exit 1, whatever is still inconclusive or erroring', (t) => {
  const yesterday = sixOne({}, '2026-11-24');
  const tonight = night(
    [run({ scenario: 'vfio-bind-unbind', leaks: [{ group: 5, devices: ['0000:01:00.0'] }] }), run({ scenario: 'pci-hotplug', reports: [msiGetVirq], inconclusive: [lockdepOff] })],
    yesterday,
  );
  t.is(tonight.exitCode, 1);
  t.deepEqual(tonight.cells.map((c) => c.status), ['new', 'still-inconclusive']);
  t.deepEqual(tonight.diff.new, ['default.lockdep.intel.vfio-bind-unbind | leak: 0000:01:00.0']);
  t.regex(summaryOf(tonight), /exit code 1: new failures/);
});
