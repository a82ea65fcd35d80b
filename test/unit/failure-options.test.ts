// Options are checked before any work, each failure a usage error naming the value.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { InvalidArgumentError } from 'commander';
import { execa } from 'execa';
import { checkCoverage, checkOutputDir, checkOutputFile, checkReadable, checkSource, parseIommus, parsePositive } from '../../harness/cli/options.ts';
import { HarnessError } from '../../harness/errors.ts';
import { scenarioByName } from '../../scenarios/index.ts';

async function tempDir(t: { teardown: (fn: () => Promise<void>) => void }) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'failure-options-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('--iommu: known models, each once', (t) => {
  t.deepEqual(parseIommus('intel,virtio'), ['intel', 'virtio']);
  t.deepEqual(parseIommus(' none '), ['none']);
  t.throws(() => parseIommus('intel,intel'), { instanceOf: InvalidArgumentError, message: '"intel" is listed twice' });
  t.throws(() => parseIommus('riscv'), { instanceOf: InvalidArgumentError, message: /unknown vIOMMU "riscv" \(known: intel, virtio, none, amd/ });
  t.deepEqual(parseIommus('amd'), ['amd']);
  t.throws(() => parseIommus('intel,'), { instanceOf: InvalidArgumentError, message: /unknown vIOMMU ""/ });
});

test('--cycles and --runs: whole numbers of at least 1', (t) => {
  t.is(parsePositive('3'), 3);
  for (const bad of ['0', '-1', '1.5', '2x', '', '1e3']) t.throws(() => parsePositive(bad), { instanceOf: InvalidArgumentError }, bad);
});

test('a scenario/vIOMMU mismatch is refused, naming where each scenario runs', (t) => {
  const bridge = scenarioByName('bridge-group')!;
  const noiommu = scenarioByName('vfio-noiommu')!;
  const error = t.throws(() => checkCoverage(['none'], [bridge]), { instanceOf: HarnessError });
  t.is(error?.kind, 'usage');
  t.is(error?.message, 'no selected scenario runs on --iommu none (bridge-group runs on intel)');
  t.notThrows(() => checkCoverage(['none', 'intel'], [bridge, noiommu]));
});

test('--json: its folder must exist and the path must not be a folder', async (t) => {
  const dir = await tempDir(t);
  await t.notThrowsAsync(checkOutputFile(path.join(dir, 'out.json'), '--json'));
  const missing = await t.throwsAsync(checkOutputFile(path.join(dir, 'nope', 'out.json'), '--json'), { instanceOf: HarnessError });
  t.is(missing?.message, `--json ${path.join(dir, 'nope', 'out.json')}: folder ${path.join(dir, 'nope')} does not exist`);
  t.is(missing?.exitCode, 2);
  await t.throwsAsync(checkOutputFile(dir, '--json'), { instanceOf: HarnessError, message: /is a folder, not a file/ });
  await writeFile(path.join(dir, 'file'), '');
  await t.throwsAsync(checkOutputFile(path.join(dir, 'file', 'out.json'), '--json'), { instanceOf: HarnessError, message: /is not a folder/ });
});

test('--out: a file in the way is refused; a folder to be made under a writable one is fine', async (t) => {
  const dir = await tempDir(t);
  await t.notThrowsAsync(checkOutputDir(path.join(dir, 'nights', '2026-11-29'), '--out'));
  await writeFile(path.join(dir, 'night'), '');
  await t.throwsAsync(checkOutputDir(path.join(dir, 'night'), '--out'), { instanceOf: HarnessError, message: /is not a folder/ });
  await t.throwsAsync(checkOutputDir(path.join(dir, 'night', 'sub'), '--out'), { instanceOf: HarnessError, message: /is not a folder/ });
});

test('--patch, --kconfig, --known-issues: each file readable, named when not', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'a.patch'), '');
  await t.notThrowsAsync(checkReadable([path.join(dir, 'a.patch')], '--patch'));
  await t.throwsAsync(checkReadable([path.join(dir, 'a.patch'), path.join(dir, 'b.patch')], '--patch'), {
    instanceOf: HarnessError,
    message: `--patch ${path.join(dir, 'b.patch')}: no such file`,
  });
  await mkdir(path.join(dir, 'sub'));
  await t.throwsAsync(checkReadable([path.join(dir, 'sub')], '--kconfig'), { instanceOf: HarnessError, message: /is a folder/ });
});

test('--src not a git tree is said before the ref; a ref that is not a commit names its option', async (t) => {
  const dir = await tempDir(t);
  const notGit = await t.throwsAsync(checkSource(dir, [{ option: '--ref', ref: 'HEAD' }]), { instanceOf: HarnessError });
  t.is(notGit?.message, `--src ${dir} is not a git tree`);
  await execa('git', ['-C', dir, 'init', '-q']);
  await execa('git', ['-C', dir, '-c', 'user.name=u', '-c', 'user.email=u@x', 'commit', '-q', '--allow-empty', '-m', 'one']);
  await t.notThrowsAsync(checkSource(dir, [{ option: '--good', ref: 'HEAD' }]));
  await t.throwsAsync(checkSource(dir, [{ option: '--good', ref: 'HEAD' }, { option: '--bad', ref: 'v9.9' }]), {
    instanceOf: HarnessError,
    message: `--bad v9.9 is not a commit in ${dir}`,
  });
});
