// Night results: signatures, the baseline diff, exit codes, JUnit, merging shards.
import test from 'ava';
import { joinShards, MergeError } from '../../harness/nightly/merge.ts';
import { findingsOfRun, type Night } from '../../harness/nightly/night.ts';
import { renderJUnit, xmlEscape } from '../../harness/nightly/junit.ts';
import { night, run } from './nightly-fixtures.ts';

const warn = (title: string, extra = {}) => ({ kind: 'warning' as const, title, ...extra });

test('signatures keep the report title and the leaked devices, not group numbers', (t) => {
  const a = findingsOfRun(run({ scenario: 'pci-hotplug', reports: [warn('WARNING in iommu_group_release')], leaks: [{ group: 7, devices: ['0000:01:00.0'] }] }));
  const b = findingsOfRun(run({ scenario: 'pci-hotplug', cycle: 2, reports: [warn('WARNING in iommu_group_release')], leaks: [{ group: 12, devices: ['0000:01:00.0'] }] }));
  t.deepEqual(a.map((f) => f.signature), ['default.lockdep.intel.pci-hotplug | report: WARNING in iommu_group_release', 'default.lockdep.intel.pci-hotplug | leak: 0000:01:00.0']);
  t.deepEqual(a.map((f) => f.signature), b.map((f) => f.signature));
  t.regex(a[1]!.evidence, /iommu group 7 \(0000:01:00\.0\) was never released/);
});

test('no baseline: every failure is new, exit 1', (t) => {
  const n = night([run({ scenario: 'vfio-bind-unbind', reports: [warn('WARNING in a')] }), run({ scenario: 'pci-hotplug' })]);
  t.is(n.baseline, null);
  t.deepEqual(n.diff.new, ['default.lockdep.intel.vfio-bind-unbind | report: WARNING in a']);
  t.is(n.exitCode, 1);
  t.is(n.verdict, 'fail');
  t.deepEqual(n.cells.map((c) => c.status), ['new', 'pass']);
});

test('against a baseline: new, still failing and fixed; only new failures make exit 1', (t) => {
  const yesterday = night([run({ scenario: 'vfio-bind-unbind', reports: [warn('WARNING in a')] }), run({ scenario: 'pci-hotplug', leaks: [{ group: 3, devices: ['0000:02:00.0'] }] })], undefined, '2026-11-24');
  const same = night([run({ scenario: 'vfio-bind-unbind', reports: [warn('WARNING in a')] }), run({ scenario: 'pci-hotplug', leaks: [{ group: 9, devices: ['0000:02:00.0'] }] })], yesterday);
  t.deepEqual(same.diff.new, []);
  t.is(same.diff.still.length, 2);
  t.is(same.exitCode, 0, 'failures the baseline already had do not fail the night');
  t.is(same.verdict, 'fail');
  t.deepEqual(same.cells.map((c) => c.status), ['still', 'still']);

  const better = night([run({ scenario: 'vfio-bind-unbind', reports: [warn('WARNING in a'), warn('WARNING in b')] }), run({ scenario: 'pci-hotplug' })], yesterday);
  t.deepEqual(better.diff.new, ['default.lockdep.intel.vfio-bind-unbind | report: WARNING in b']);
  t.deepEqual(better.diff.still, ['default.lockdep.intel.vfio-bind-unbind | report: WARNING in a']);
  t.deepEqual(better.diff.fixed.map((f) => f.signature), ['default.lockdep.intel.pci-hotplug | leak: 0000:02:00.0']);
  t.deepEqual(better.cells.map((c) => c.status), ['new', 'fixed']);
  t.is(better.exitCode, 1);
  t.deepEqual(better.baseline, { name: '2026-11-24', file: '/nights/2026-11-24/night.json' });
});

test('a cell that errored or did not run tonight proves nothing fixed', (t) => {
  const yesterday = night([run({ scenario: 'vfio-bind-unbind', reports: [warn('WARNING in a')] }), run({ scenario: 'pci-hotplug', reports: [warn('WARNING in b')] })], undefined, '2026-11-24');
  const n = night([run({ scenario: 'vfio-bind-unbind', error: 'the guest did not answer SSH within 180 s' })], yesterday);
  t.deepEqual(n.diff.fixed, []);
  t.deepEqual(n.cells.map((c) => [c.verdict, c.status]), [['error', 'error'], ['not-run', 'not-run']]);
  t.is(n.exitCode, 3, 'infrastructure errors only');
  t.is(n.verdict, 'error');
  t.is(n.summary.notRun, 1);
});

test('an inconclusive cell is neither pass nor fail: its own status, counted, exit 4 when nothing failed, skipped in JUnit', (t) => {
  const blind = night([run({ scenario: 'vfio-bind-unbind' }), run({ scenario: 'pci-hotplug', inconclusive: ['lockdep was off during pci-hotplug/del'] })]);
  t.deepEqual(blind.cells.map((c) => c.status), ['pass', 'inconclusive']);
  t.is(blind.summary.inconclusive, 1);
  t.is(blind.verdict, 'inconclusive');
  t.is(blind.exitCode, 4);
  t.regex(renderJUnit(blind), /<skipped message="inconclusive: default\.lockdep\.intel\.pci-hotplug\.c1: pci-hotplug: lockdep was off during pci-hotplug\/del"\/>/);
  const failing = night([run({ scenario: 'vfio-bind-unbind', leaks: [{ group: 3, devices: ['0000:01:00.0'] }] }), run({ scenario: 'pci-hotplug', inconclusive: ['x'] })]);
  t.is(failing.exitCode, 1, 'a new failure outranks a blind cell');
});

test('known issues are listed, never failing, never new', (t) => {
  const n = night([run({ scenario: 'vfio-bind-unbind', reports: [warn('possible deadlock in pci_lock_rescan_remove', { kind: 'lockdep', known: '6.12 pciehp' })] }), run({ scenario: 'pci-hotplug' })]);
  t.is(n.exitCode, 0);
  t.is(n.verdict, 'pass');
  t.deepEqual(n.findings, []);
  t.is(n.known.length, 1);
  t.is(n.known[0]!.known, '6.12 pciehp');
});

test('cycles: one finding per signature listing its runs; the cell counts failed cycles', (t) => {
  const n = night([
    run({ scenario: 'vfio-bind-unbind', cycle: 1, reports: [warn('WARNING in a')] }),
    run({ scenario: 'vfio-bind-unbind', cycle: 2 }),
    run({ scenario: 'vfio-bind-unbind', cycle: 3, reports: [warn('WARNING in a')] }),
    run({ scenario: 'pci-hotplug' }),
  ]);
  t.is(n.findings.length, 1);
  t.deepEqual(n.findings[0]!.runs, ['default.lockdep.intel.vfio-bind-unbind.c1', 'default.lockdep.intel.vfio-bind-unbind.c3']);
  t.is(n.cells[0]!.failedCycles, 2);
  t.is(n.cells[0]!.runs.length, 3);
});

test('JUnit: one testcase per cell with classname kernel.profile.iommu, the failure message the title and its text the evidence', (t) => {
  const n = night([run({ scenario: 'vfio-bind-unbind', reports: [warn('WARNING in <a> & "b"')] }), run({ scenario: 'pci-hotplug', error: 'QEMU died\u0007' })]);
  const xml = renderJUnit(n);
  t.regex(xml, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites name="iommu-harness nightly 2026-11-25" tests="2" failures="1" errors="1"/);
  t.is(xml.match(/<testcase /g)?.length, 2);
  t.regex(xml, /<testcase classname="default\.lockdep\.intel" name="vfio-bind-unbind" time="12\.5">/);
  t.regex(xml, /<failure message="WARNING in &lt;a&gt; &amp; &quot;b&quot;" type="warning">NEW; failed 1 of 1 cycle\(s\)/);
  t.regex(xml, /&lt;script&gt;alert\(1\)&lt;\/script&gt; &amp; &quot;q&quot;/, 'the report text is the evidence, escaped');
  t.regex(xml, /runs\/default\.lockdep\.intel\.vfio-bind-unbind\.c1\/intel\/console\.log/);
  t.regex(xml, /<error message="QEMU died\\x07" type="infrastructure">/);
  t.false(/[\u0000-\u0008]/.test(xml), 'no raw control characters');
  t.false(xml.includes('<script>'));
});

test('xmlEscape escapes the five and spells out control characters', (t) => {
  t.is(xmlEscape(`<&>"'\u0001\n`), '&lt;&amp;&gt;&quot;&apos;\\x01\n');
});

const shardNight = (index: number, runs: ReturnType<typeof run>[]): Night => ({ ...night(runs), shard: { index, count: 2 } });

test('merging shards joins their runs; conflicts are refused by name', (t) => {
  const one = shardNight(1, [run({ scenario: 'vfio-bind-unbind' })]);
  const two = shardNight(2, [run({ scenario: 'pci-hotplug', reports: [warn('WARNING in b')] })]);
  const joined = joinShards([{ label: 's1', night: one }, { label: 's2', night: two }]);
  t.deepEqual(joined.runs.map((r) => r.unit).sort(), ['default.lockdep.intel.pci-hotplug.c1', 'default.lockdep.intel.vfio-bind-unbind.c1']);
  t.is(joined.builds.length, 1);
  t.throws(() => joinShards([{ label: 's1', night: one }, { label: 's1again', night: one }]), { instanceOf: MergeError, message: /s1again and s1 are both shard 1\/2/ });
  t.throws(() => joinShards([{ label: 's1', night: one }, { label: 'x', night: { ...two, shard: { index: 2, count: 3 } } }]), { instanceOf: MergeError, message: /x is shard 2\/3 but s1 is shard 1\/2/ });
  t.throws(() => joinShards([{ label: 's1', night: one }, { label: 'y', night: { ...two, plan: { ...two.plan, cycles: 5 } } }]), { instanceOf: MergeError, message: /y ran a different plan/ });
  t.throws(() => joinShards([]), { instanceOf: MergeError });
});
