import test from 'ava';
import { readFileSync } from 'node:fs';
import { appliesToRelease, applyKnownIssues, compareReleases, KnownIssuesError, matchesKnownIssue, parseKernelLog, parseKnownIssues } from '../../harness/oracle/index.ts';
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

test('since= and until= scope an upstream bug by version: a new release inherits an unfixed one, a fixed one stops matching', (t) => {
  const report = { title: 'x', kind: 'lockdep' as const };
  const [fixedIn73] = parseKnownIssues('x | since=6.1 | until=7.3  # fixed upstream in 7.3');
  const [unfixed] = parseKnownIssues('x | since=6.1  # not fixed upstream');
  const on = (issue: typeof unfixed, release?: string) => matchesKnownIssue(issue!, report, release ? { release } : {});
  for (const release of ['6.1', '6.1.192', '6.12.117+', '7.2', '7.2.13']) t.true(on(fixedIn73, release), release);
  for (const release of ['6.0.19', '5.15.1', '7.3', '7.3.1', '7.3-rc1', '7.10.2', '8.0']) t.false(on(fixedIn73, release), release);
  for (const release of ['6.1.192', '7.2.13', '7.3', '8.0']) t.true(on(unfixed, release), `${release}: not fixed upstream, so every later release has it`);
  t.false(on(unfixed, '6.0.19'));
  t.false(on(unfixed), 'an unknown release holds no release scope');
  t.false(on(unfixed, 'unknown'), 'a release that is no version holds none either');
  t.true(appliesToRelease(fixedIn73!, '7.2.13'));
  t.false(appliesToRelease(fixedIn73!, '7.3.0'));
  t.true(appliesToRelease({}, undefined), 'an entry without release scopes applies everywhere');
  // Compared as numbers, not as text: 6.12 is after 6.2 and 7.10 after 7.9.
  t.true(compareReleases('6.12', '6.2') > 0);
  t.true(compareReleases('7.10.1', '7.9.30') > 0);
  t.is(compareReleases('6.1', '6.1.0'), 0);
  t.true(compareReleases('6.1.192', '6.12') < 0);
  // The old prefix form keeps working next to the new ones.
  const [both] = parseKnownIssues('x | release=6.12 | until=7.3  # y');
  t.true(on(both, '6.12.117+'));
  t.false(on(both, '7.2.13'), 'release= still narrows');
});

test('locks= and text= narrow a title to the report it is: another inversion titled after the same function stays a finding', (t) => {
  const [byLocks] = parseKnownIssues('possible deadlock in f | locks=pci_rescan_remove_lock,&ctrl->reset_lock  # y');
  t.deepEqual(byLocks?.locks, ['pci_rescan_remove_lock', '&ctrl->reset_lock']);
  const lines = (...locks: string[]) => locks.map((lock, i) => `${i}: ffffffff81cf0528 (${lock}){+.+.}-{3:3}, at: f+0x1b/0x14f`);
  const report = (...locks: string[]) => ({ title: 'possible deadlock in f', kind: 'lockdep' as const, lines: lines(...locks) });
  t.true(matchesKnownIssue(byLocks!, report('pci_rescan_remove_lock', '&ctrl->reset_lock'), {}));
  t.true(matchesKnownIssue(byLocks!, report('pci_rescan_remove_lock', '&ctrl->reset_lock/1'), {}), 'a subclass is the same class');
  t.false(matchesKnownIssue(byLocks!, report('pci_rescan_remove_lock', '&dev->mutex'), {}), 'one of the two locks differs');
  t.false(matchesKnownIssue(byLocks!, report('pci_rescan_remove_lock', '&ctrl->reset_lock_other'), {}), 'a class whose name only starts the same');
  t.false(matchesKnownIssue(byLocks!, { title: 'possible deadlock in f', kind: 'lockdep' }, {}), 'a report without its text cannot be narrowed, so it is not known');
  // A run's report holds its text as one string.
  t.true(matchesKnownIssue(byLocks!, { title: 'possible deadlock in f', kind: 'lockdep', text: lines('pci_rescan_remove_lock', '&ctrl->reset_lock').join('\n') }, {}));

  const [byText] = parseKnownIssues('WARNING in g | text=pciehp_ist  # y');
  const [byRegex] = parseKnownIssues('WARNING in g | text=/at:\\s+pciehp_(?:ist|power_thread)/  # y');
  const warn = (text: string) => ({ title: 'WARNING in g', kind: 'warning' as const, text });
  t.true(matchesKnownIssue(byText!, warn('Call Trace:\n pciehp_ist+0x1/0x2'), {}));
  t.false(matchesKnownIssue(byText!, warn('Call Trace:\n vfio_pci_core_ioctl+0x1/0x2'), {}));
  t.true(matchesKnownIssue(byRegex!, warn('held at:  pciehp_power_thread+0x10'), {}));
  t.false(matchesKnownIssue(byRegex!, warn('held at: vfio_x'), {}));
  t.regex(t.throws(() => parseKnownIssues('x | since=six  # y'))?.message ?? '', /since= takes a kernel version/);
  t.regex(t.throws(() => parseKnownIssues('x | since=7.3 | until=7.3  # y'))?.message ?? '', /since=7\.3 is not before until=7\.3/);
  t.regex(t.throws(() => parseKnownIssues('x | text=/(/  # y'))?.message ?? '', /bad regular expression/);
});

test('the shipped pciehp entries: 6.1, 6.12 and 7.2 alike (not fixed upstream), only for that lock order', (t) => {
  const known = parseKnownIssues(readFileSync(new URL('../../scenarios/known-issues.txt', import.meta.url), 'utf8'));
  const fixture = readFileSync(new URL('../fixtures/oracle/reports/lockdep-pciehp-configure-device.log', import.meta.url), 'utf8');
  const reports = parseKernelLog(parseHeaderLog(fixture).log).reports.map((report) => ({ ...report, step: 'pci-hotplug-native-add/add' }));
  for (const release of ['6.1.192', '6.12.117+', '7.2.13']) {
    t.truthy(applyKnownIssues(reports, known, { iommu: 'intel', release })[0]?.known, release);
  }
  t.falsy(applyKnownIssues(reports, known, { iommu: 'intel', release: '6.0.1' })[0]?.known, 'older than the entry');
  // Another inversion acquired in pciehp_configure_device: the same title, other locks.
  const other = reports.map((report) => ({ ...report, lines: report.lines.map((line) => line.replaceAll('&ctrl->reset_lock', '&dev->mutex')) }));
  t.is(other[0]?.title, 'possible deadlock in pciehp_configure_device');
  t.falsy(applyKnownIssues(other, known, { iommu: 'intel', release: '7.2.13' })[0]?.known, 'another pciehp inversion is a finding');
  const removal = reports.map((report) => ({ ...report, step: 'pci-hotplug-native/del' }));
  t.truthy(applyKnownIssues(removal, known, { iommu: 'virtio', release: '7.2.13' })[0]?.known, 'the hot-remove entry too');
});
