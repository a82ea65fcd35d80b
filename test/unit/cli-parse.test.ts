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

/** A real console capture (a leaked group) and a scratch folder. */
async function captures(t: import('ava').ExecutionContext) {
  const { mkdtemp, readFile, rm } = await import('node:fs/promises');
  const os = await import('node:os');
  const path = await import('node:path');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-parse-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const plain = fixture('real-group-leak.log');
  return { dir, path, plain, bytes: await readFile(plain) };
}

const verdictOf = (stdout: string) => {
  const { file: _file, ...rest } = JSON.parse(stdout) as { file: string };
  return rest;
};

test('parse reads gzip and xz logs by their bytes, whatever their name, and finds what the plain log holds', async (t) => {
  const { gzipSync } = await import('node:zlib');
  const { writeFile } = await import('node:fs/promises');
  const { dir, path, plain, bytes } = await captures(t);
  const expected = await execa('node', [cli, 'parse', '--json', plain], { reject: false });
  t.is(expected.exitCode, 1);
  const gz = path.join(dir, 'console.log.gz');
  await writeFile(gz, gzipSync(bytes));
  // Stored under a plain name, as artifact stores and mail clients rename them.
  const gzNoExtension = path.join(dir, 'console-gz.log');
  await writeFile(gzNoExtension, gzipSync(bytes));
  const xz = path.join(dir, 'console.log.xz');
  await writeFile(xz, (await execa('xz', ['--compress', '--stdout'], { input: bytes, encoding: 'buffer' })).stdout);
  for (const file of [gz, gzNoExtension, xz]) {
    const result = await execa('node', [cli, 'parse', '--json', file], { reject: false });
    t.is(result.exitCode, 1, `${file}: ${result.stderr}`);
    t.deepEqual(verdictOf(result.stdout), verdictOf(expected.stdout), file);
  }
  // A real gzip console from a booted run (two IOMMU faults) is judged as such.
  const fault = await execa('node', [cli, 'parse', fileURLToPath(new URL('../fixtures/viommu/intel-removal-no-flush.console.log.gz', import.meta.url))], { reject: false });
  t.is(fault.exitCode, 1, fault.stderr);
  t.regex(fault.stdout, /FAIL: 2 report\(s\)/);
});

test('parse - reads the log from stdin, plain or compressed', async (t) => {
  const { gzipSync } = await import('node:zlib');
  const { plain, bytes } = await captures(t);
  const expected = verdictOf((await execa('node', [cli, 'parse', '--json', plain], { reject: false })).stdout);
  for (const input of [bytes, gzipSync(bytes)]) {
    const result = await execa('node', [cli, 'parse', '--json', '-'], { input, reject: false });
    t.is(result.exitCode, 1, result.stderr);
    t.deepEqual(verdictOf(result.stdout), expected);
  }
  const clean = await execa('node', [cli, 'parse', '-'], { inputFile: fileURLToPath(new URL('../fixtures/machine/intel-boot-console.log', import.meta.url)), reject: false });
  t.is(clean.exitCode, 0, clean.stderr);
  t.regex(clean.stdout, /^-: PASS: 0 report\(s\), 16 group\(s\)/);
});

test('input with no kernel log in it is exit 2 naming the file, never a pass: /etc/passwd, an empty file, empty stdin, a broken archive', async (t) => {
  const { writeFile } = await import('node:fs/promises');
  const { dir, path, plain } = await captures(t);
  const empty = path.join(dir, 'empty.log');
  await writeFile(empty, '');
  const passwd = await execa('node', [cli, 'parse', '/etc/passwd'], { reject: false });
  t.is(passwd.exitCode, 2);
  t.regex(passwd.stderr, /\/etc\/passwd holds no kernel log/);
  t.is(passwd.stdout, '');
  const emptyFile = await execa('node', [cli, 'parse', empty], { reject: false });
  t.is(emptyFile.exitCode, 2);
  t.regex(emptyFile.stderr, new RegExp(`${empty.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is empty`));
  const emptyStdin = await execa('node', [cli, 'parse', '-'], { input: '', reject: false });
  t.is(emptyStdin.exitCode, 2);
  t.regex(emptyStdin.stderr, /stdin is empty/);
  // A good log beside a bad one: no verdict for either.
  const mixed = await execa('node', [cli, 'parse', plain, '/etc/passwd'], { reject: false });
  t.is(mixed.exitCode, 2);
  t.is(mixed.stdout, '');
  const broken = path.join(dir, 'broken.log.gz');
  await writeFile(broken, Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02]));
  const brokenResult = await execa('node', [cli, 'parse', broken], { reject: false });
  t.is(brokenResult.exitCode, 2);
  t.regex(brokenResult.stderr, /broken\.log\.gz: not a readable gzip file/);
});
