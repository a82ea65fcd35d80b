// `iommu-harness parse` on saved logs: the same report objects as `run --json`,
// exit 1 when a report is found, 0 when not.
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { execa } from 'execa';

const cli = fileURLToPath(new URL('../../bin/iommu-harness.js', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/oracle/reports/${name}`, import.meta.url));

test('a log with a report: exit 1, the report in run\'s shape', async (t) => {
  const result = await execa('node', [cli, 'parse', '--json', fixture('real-warning-default-domain.log')], { reject: false });
  t.is(result.exitCode, 1);
  const parsed = JSON.parse(result.stdout);
  t.is(parsed.reports[0].title, 'WARNING in iommu_group_release');
  t.is(parsed.reports[0].kind, 'warning');
  t.is(parsed.reports[0].corrupted, false);
  t.is(typeof parsed.reports[0].text, 'string');
  t.true(parsed.groups.every((group: { id: number; devices: string[]; released: boolean }) => typeof group.released === 'boolean'));
});

test('a clean log: exit 0; a leaked group is listed but is not a report', async (t) => {
  const clean = await execa('node', [cli, 'parse', fixture('clean-boot.log')], { reject: false });
  t.is(clean.exitCode, 0);
  const leak = await execa('node', [cli, 'parse', '--json', fixture('real-group-leak.log')], { reject: false });
  t.deepEqual(JSON.parse(leak.stdout).leaks.map((l: { devices: string[] }) => l.devices), [['0000:01:00.0']]);
});
