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

test('parse exits 1 on a leak or a double release with no report, and 4 when the log dropped lines', async (t) => {
  const { mkdtemp, readFile, rm, writeFile } = await import('node:fs/promises');
  const os = await import('node:os');
  const path = await import('node:path');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-parse-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const leak = await execa('node', [cli, 'parse', fixture('real-group-leak.log')], { reject: false });
  t.is(leak.exitCode, 1, 'a leaked group and no report');
  t.regex(leak.stdout, /FAIL: 0 report\(s\), \d+ group\(s\), 1 leak\(s\)/);
  // The real capture of a clean removal, with its release printed twice.
  const clean = await readFile(fixture('real-warning-default-domain.log'), 'utf8');
  const twice = clean.split('\n').filter((line) => !/WARNING|cut here/.test(line)).join('\n').replace(/(\[ *[\d.]+\] iommu: Releasing group 4\n)/, '$1$1');
  await writeFile(path.join(dir, 'twice.log'), twice);
  const double = await execa('node', [cli, 'parse', path.join(dir, 'twice.log')], { reject: false });
  t.is(double.exitCode, 1, 'a double release and no report');
  t.regex(double.stdout, /FAIL: 0 report\(s\), \d+ group\(s\), 0 leak\(s\), 1 double release\(s\)\n  double release: group 4/);
  await writeFile(path.join(dir, 'dropped.log'), '[    1.000000] iommu-harness: step x/y\n** 3 printk messages dropped **\n[    1.100000] ok\n');
  const dropped = await execa('node', [cli, 'parse', path.join(dir, 'dropped.log')], { reject: false });
  t.is(dropped.exitCode, 4);
  t.regex(dropped.stdout, /inconclusive: x\/y: the kernel dropped 3 log message\(s\)/);
});
