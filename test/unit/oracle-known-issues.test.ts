import test from 'ava';
import { readFileSync } from 'node:fs';
import { applyKnownIssues, KnownIssuesError, parseKernelLog, parseKnownIssues } from '../../harness/oracle/index.ts';
import { parseHeaderLog } from '../fixtures/oracle/header-log.ts';

test('titles and regular expressions, comments and blank lines', (t) => {
  const issues = parseKnownIssues(
    ['# triaged', '', 'WARNING in iommu_group_release  # upstream fix pending', '/^possible deadlock in pci_/  # pciehp', '   '].join('\n'),
  );
  t.deepEqual(issues[0], { title: 'WARNING in iommu_group_release', reason: 'upstream fix pending' });
  t.true(issues[1]?.title instanceof RegExp);
  t.is(issues[1]?.reason, 'pciehp');
  t.is(issues.length, 2);
});

test('an entry without a reason is an error naming its line', (t) => {
  const err = t.throws(() => parseKnownIssues('# header\n\nWARNING in foo\n'), { instanceOf: KnownIssuesError });
  t.is(err?.line, 3);
  t.regex(err?.message ?? '', /line 3/);
  t.is(t.throws(() => parseKnownIssues('/(unclosed/  # why'), { instanceOf: KnownIssuesError })?.line, 1);
  t.is(t.throws(() => parseKnownIssues('WARNING in foo  #   '), { instanceOf: KnownIssuesError })?.line, 1);
});

test('known reports are marked, others left alone, input not mutated', (t) => {
  const reports = parseKernelLog('[    1.000000] Kernel panic - not syncing: VFS: Unable to mount root fs\n').reports;
  const marked = applyKnownIssues(reports, parseKnownIssues('/^kernel panic: VFS/  # no rootfs in this image\n'));
  t.deepEqual(marked[0]?.known, { reason: 'no rootfs in this image' });
  t.is(reports[0]?.known, undefined);
  t.is(applyKnownIssues(reports, parseKnownIssues('WARNING in x  # y'))[0]?.known, undefined);
});

test('the shipped known-issues file parses and covers the 6.12 pciehp lockdep report', (t) => {
  const known = parseKnownIssues(readFileSync(new URL('../../scenarios/known-issues.txt', import.meta.url), 'utf8'));
  const fixture = readFileSync(new URL('../fixtures/oracle/reports/lockdep-pciehp-configure-device.log', import.meta.url), 'utf8');
  const reports = applyKnownIssues(parseKernelLog(parseHeaderLog(fixture).log).reports, known);
  t.is(reports.length, 1);
  t.truthy(reports[0]?.known);
});
