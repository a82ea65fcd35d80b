import test from 'ava';
import { readFileSync } from 'node:fs';
import { applyKnownIssues, KnownIssuesError, matchesKnownIssue, parseKernelLog, parseKnownIssues } from '../../harness/oracle/index.ts';
import { parseHeaderLog } from '../fixtures/oracle/header-log.ts';

test('titles and regular expressions, comments and blank lines', (t) => {
  const issues = parseKnownIssues(
    ['# triaged', '', 'WARNING in iommu_group_release  # upstream fix pending', '/possible deadlock in pci_\\w+/  # pciehp', '   '].join('\n'),
  );
  t.deepEqual(issues[0], { title: 'WARNING in iommu_group_release', reason: 'upstream fix pending', entry: 'WARNING in iommu_group_release' });
  t.true(issues[1]?.title instanceof RegExp);
  t.is(issues[1]?.reason, 'pciehp');
  t.is(issues.length, 2);
});

test('a regular expression must match the whole title: a longer title with the same words is not known', (t) => {
  const [issue] = parseKnownIssues('/possible deadlock in pciehp_\\w+/  # pciehp');
  const report = (title: string) => ({ title, kind: 'lockdep' as const });
  t.true(matchesKnownIssue(issue!, report('possible deadlock in pciehp_configure_device'), {}));
  t.false(matchesKnownIssue(issue!, report('possible deadlock in iommu_group_remove_device (pciehp_configure_device)'), {}));
  t.false(matchesKnownIssue(issue!, report('WARNING: possible deadlock in pciehp_configure_device'), {}));
});

test('scopes: kind, scenario, step, vIOMMU and kernel release must each hold', (t) => {
  const [issue] = parseKnownIssues(
    'possible deadlock in pciehp_configure_device | kind=lockdep | scenario=pci-hotplug-native | step=add | iommu=intel,virtio | release=6.12  # pciehp',
  );
  const report = { title: 'possible deadlock in pciehp_configure_device', kind: 'lockdep' as const, step: 'pci-hotplug-native/add' };
  const scope = { scenario: 'pci-hotplug-native', iommu: 'intel', release: '6.12.117+' };
  t.true(matchesKnownIssue(issue!, report, scope));
  t.false(matchesKnownIssue(issue!, { ...report, kind: 'warning' }, scope), 'another kind');
  t.false(matchesKnownIssue(issue!, { ...report, step: 'pci-hotplug-native/del' }, scope), 'another step');
  t.true(matchesKnownIssue(issue!, { ...report, step: 'pci-hotplug-native/cycle7/add' }, scope), 'the same step in a later --cycles cycle');
  t.false(matchesKnownIssue(issue!, { ...report, step: 'pci-hotplug-native/cycle7/del' }, scope), 'another step in a cycle');
  t.false(matchesKnownIssue(issue!, { ...report, step: 'remove-rescan/add' }, { ...scope, scenario: 'remove-rescan' }), 'another scenario');
  t.false(matchesKnownIssue(issue!, report, { ...scope, iommu: 'none' }), 'another vIOMMU');
  t.false(matchesKnownIssue(issue!, report, { ...scope, release: '6.1.0' }), 'another release');
  t.false(matchesKnownIssue(issue!, report, { ...scope, release: '6.120' }), '6.12 is not a prefix of 6.120');
  t.false(matchesKnownIssue(issue!, report, { scenario: 'pci-hotplug-native', iommu: 'intel' }), 'an unknown release does not match a release scope');
  const [byRegex] = parseKnownIssues('x | release=/6\\.1[2-3]\\..*/ | step=pci-hotplug-native/add  # y');
  t.true(matchesKnownIssue(byRegex!, { title: 'x', kind: 'bug', step: 'pci-hotplug-native/add' }, { release: '6.13.1' }));
  t.true(matchesKnownIssue(byRegex!, { title: 'x', kind: 'bug', step: 'pci-hotplug-native/cycle2/add' }, { release: '6.13.1' }));
});

test('bad entries are errors naming their line', (t) => {
  const err = t.throws(() => parseKnownIssues('# header\n\nWARNING in foo\n'), { instanceOf: KnownIssuesError });
  t.is(err?.line, 3);
  t.regex(err?.message ?? '', /line 3/);
  t.is(t.throws(() => parseKnownIssues('/(unclosed/  # why'), { instanceOf: KnownIssuesError })?.line, 1);
  t.is(t.throws(() => parseKnownIssues('WARNING in foo  #   '), { instanceOf: KnownIssuesError })?.line, 1);
  t.regex(t.throws(() => parseKnownIssues('x | kind=lockdeep  # y'))?.message ?? '', /unknown kind "lockdeep"/);
  t.regex(t.throws(() => parseKnownIssues('x | colour=red  # y'))?.message ?? '', /expected a scope/);
  t.regex(t.throws(() => parseKnownIssues('x | step=a | step=b  # y'))?.message ?? '', /step given twice/);
});

test('known reports are marked, others left alone, input not mutated', (t) => {
  const reports = parseKernelLog('[    1.000000] Kernel panic - not syncing: VFS: Unable to mount root fs\n').reports;
  const marked = applyKnownIssues(reports, parseKnownIssues('/kernel panic: VFS: .*/  # no rootfs in this image\n'));
  t.deepEqual(marked[0]?.known, { reason: 'no rootfs in this image' });
  t.is(reports[0]?.known, undefined);
  t.is(applyKnownIssues(reports, parseKnownIssues('WARNING in x  # y'))[0]?.known, undefined);
});

test('the shipped known-issues file parses and covers the 6.12 pciehp lockdep report at the native hot-add only', (t) => {
  const known = parseKnownIssues(readFileSync(new URL('../../scenarios/known-issues.txt', import.meta.url), 'utf8'));
  const fixture = readFileSync(new URL('../fixtures/oracle/reports/lockdep-pciehp-configure-device.log', import.meta.url), 'utf8');
  const parsed = parseKernelLog(parseHeaderLog(fixture).log).reports;
  t.is(parsed.length, 1);
  // Captured before native hot-add got a scenario of its own (pci-hotplug-native-add): same step, renamed.
  t.is(parsed[0]?.step, 'pci-hotplug-native/add');
  const reports = parsed.map((report) => ({ ...report, step: 'pci-hotplug-native-add/add' }));
  t.truthy(applyKnownIssues(reports, known, { iommu: 'intel', release: '6.12.117+' })[0]?.known);
  const elsewhere = reports.map((report) => ({ ...report, step: 'remove-rescan/remove' }));
  t.falsy(applyKnownIssues(elsewhere, known, { iommu: 'intel', release: '6.12.117+' })[0]?.known, 'the same title in another scenario is a finding');
});
