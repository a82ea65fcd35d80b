// Walks test/fixtures/oracle/reports: each file is a raw log with its expected findings on top
// (TITLE, KIND, LOCATION, FRAME, STEP, REPORTS, LOCKDEP-OFF). A new case is a new file.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { accountGroups, parseKernelLog } from '../../harness/oracle/index.ts';
import { parseHeaderLog } from '../fixtures/oracle/header-log.ts';

const dir = new URL('../fixtures/oracle/reports/', import.meta.url);

for (const name of readdirSync(dir).filter((f) => f.endsWith('.log'))) {
  test(name, (t) => {
    const { headers, log } = parseHeaderLog(readFileSync(new URL(name, dir), 'utf8'));
    const one = (key: string): string | undefined => headers.get(key)?.[0];
    const parsed = parseKernelLog(log);
    const first = parsed.reports[0];
    const count = one('REPORTS');
    if (count !== undefined) t.is(parsed.reports.length, Number(count), 'number of reports');
    const leaks = one('LEAKS');
    if (leaks !== undefined) t.is(accountGroups(parsed.groupEvents).leaks.length, Number(leaks), 'number of leaked groups');
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

test('report lines have prefixes stripped and other callers left out', (t) => {
  const log = readFileSync(new URL('warn-caller-ids-crlf.log', dir), 'utf8');
  const [report] = parseKernelLog(parseHeaderLog(log).log).reports;
  t.truthy(report);
  t.is(report?.lines[0], '------------[ cut here ]------------');
  t.false(report?.lines.some((l) => l.includes('enabling device') || l.endsWith('\r')));
  t.is(report?.lines.at(-1), '---[ end trace 0000000000000000 ]---');
});

test('a WARN taints the kernel, which turns lockdep off for later reports', (t) => {
  const warn = parseHeaderLog(readFileSync(new URL('warn-iommu-group-release.log', dir), 'utf8')).log;
  const lockdep = parseHeaderLog(readFileSync(new URL('lockdep-iommu-group-mutex.log', dir), 'utf8')).log;
  const tainted = '[   15.110600] Disabling lock debugging due to kernel taint\n';
  const parsed = parseKernelLog(warn + tainted + lockdep);
  t.deepEqual(parsed.reports.map((r) => r.title), ['WARNING in iommu_group_release', 'possible deadlock in __iommu_group_remove_device']);
  t.is(parsed.lockdepOff?.title, 'WARNING in iommu_group_release');
  t.is(parsed.lockdepOff?.step, 'hotplug/unplug');
  t.true(parsed.reports[1]?.afterLockdepOff);
  t.falsy(parsed.reports[0]?.afterLockdepOff);
});

test('a panic after the end of a report is part of it', (t) => {
  const warn = parseHeaderLog(readFileSync(new URL('warn-iommu-group-release.log', dir), 'utf8')).log;
  const parsed = parseKernelLog(`${warn}[   15.200000] Kernel panic - not syncing: panic_on_warn set ...\n[   15.300000] ---[ end Kernel panic - not syncing: panic_on_warn set ... ]---\n`);
  t.is(parsed.reports.length, 1);
  t.true(parsed.reports[0]?.lines.at(-1)?.startsWith('---[ end Kernel panic'));
});
