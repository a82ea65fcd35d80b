import test from 'ava';
import { renderRunJUnit } from '../../harness/report/junit-run.ts';
import { renderKtap } from '../../harness/report/ktap.ts';
import { reportFormat, reportFormats } from '../../harness/report/formats.ts';
import { passRuns, resultOf, warningRuns } from './report-fixtures.ts';

const result = () =>
  resultOf([
    ...warningRuns().map((run) => (run.scenario === 'boot' ? run : { ...run, skippedSteps: [{ step: 'vfio-bind-unbind/iommufd', reason: 'the kernel has no iommufd (6.2)' }] })),
    ...passRuns().slice(1).map((run) => ({ ...run, iommu: 'virtio' as const })),
    ...passRuns().slice(1).map((run) => ({ ...run, iommu: 'virtio' as const, scenario: 'remove-rescan', verdict: 'inconclusive' as const, inconclusive: ['remove-rescan/remove: ** 3 printk messages dropped **: a report or group event may be missing'] })),
  ]);

test('KTAP: version 1, a plan and one line per scenario run; steps as subtests, a skipped step with # SKIP and its reason', (t) => {
  const lines = renderKtap(result()).split('\n');
  t.is(lines[0], 'KTAP version 1');
  t.true(lines.includes('1..4'));
  const subtest = lines.indexOf('    # Subtest: intel.vfio-bind-unbind');
  // Every step the scenario marked, in order: clean ones ok, the finding's not ok, the skipped one SKIP.
  t.deepEqual(lines.slice(subtest - 1, subtest + 8), [
    '    KTAP version 1',
    '    # Subtest: intel.vfio-bind-unbind',
    '    1..5',
    '    ok 1 bind',
    '    ok 2 container',
    '    ok 3 iommufd # SKIP the kernel has no iommufd (6.2)',
    '    ok 4 unbind',
    '    # WARNING in iommu_group_release',
    '    not ok 5 remove',
  ]);
  t.true(lines.includes('ok 1 intel.boot'));
  t.true(lines.includes('not ok 2 intel.vfio-bind-unbind # FAIL: WARNING in iommu_group_release'));
  t.true(lines.includes('ok 3 virtio.vfio-bind-unbind'));
  t.true(lines.includes('# virtio.vfio-bind-unbind: known: WARNING in iommu_group_release (the double put under test is triaged upstream)'));
});

test('KTAP: an inconclusive run is not ok with its reason, never ok', (t) => {
  const text = renderKtap(result());
  t.regex(text, /^not ok 4 virtio\.remove-rescan # INCONCLUSIVE: remove-rescan\/remove: \*\* 3 printk messages dropped \*\*/m);
  t.notRegex(text, /^ok \d+ virtio\.remove-rescan/m);
});

test('JUnit for one run: a testcase per scenario run, a failure with the evidence, inconclusive a failure of its own type, a skipped step skipped', (t) => {
  const xml = renderRunJUnit(result());
  t.regex(xml, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites name="iommu-harness 6\.12\.117\+" tests="5" failures="2" errors="0" skipped="1"/);
  t.regex(xml, /<testsuite name="iommu\.intel" tests="3" failures="1" errors="0" skipped="1" time="[\d.]+" timestamp="2026-11-29T09:13:28\.123Z">/);
  t.regex(xml, /<testcase classname="iommu\.intel" name="vfio-bind-unbind" time="4\.2">\n      <failure message="WARNING in iommu_group_release" type="warning">WARNING in iommu_group_release \[vfio-bind-unbind\/remove\]\n------------\[ cut here \]/);
  t.regex(xml, /<testcase classname="iommu\.intel\.vfio-bind-unbind" name="iommufd" time="0\.0">\n      <skipped message="the kernel has no iommufd \(6\.2\)"\/>/);
  t.regex(xml, /<testcase classname="iommu\.virtio" name="remove-rescan" time="4\.2">\n      <failure message="inconclusive: remove-rescan\/remove: \*\* 3 printk messages dropped \*\*[^"]*" type="inconclusive">/);
  t.regex(xml, /<testcase classname="iommu\.virtio" name="vfio-bind-unbind" time="4\.2">\n      <system-out>known: WARNING in iommu_group_release/);
});

test('formats: one row per format, each rendering the same result to text', (t) => {
  t.deepEqual(reportFormats.map((format) => format.name), ['report', 'kcidb', 'junit', 'tap', 'json']);
  for (const format of reportFormats) t.true(format.render(result(), {}).length > 100, format.name);
  t.deepEqual(JSON.parse(reportFormat('json')!.render(result(), {})), JSON.parse(JSON.stringify(result())));
  t.is(reportFormat('html'), undefined);
});
