// The tool used as a command, from where the user stands: installed with npm
// (the README's way) and run from another folder, with relative paths meaning
// that folder's files; and `run` inside a kernel tree tests that tree.
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { execa } from 'execa';
import { cacheLayout } from '../../harness/cache.ts';
import type { HarnessResult } from '../../harness/report/result.ts';
import { ensureDebianSource } from '../../harness/source/debian-source.ts';
import { progress, summary } from './helpers.ts';

const checkout = fileURLToPath(new URL('../..', import.meta.url));

test.serial('installed with npm install -g, the command runs from another folder and reads a relative path there', async (t) => {
  const prefix = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-prefix-'));
  const elsewhere = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-elsewhere-'));
  t.teardown(() => Promise.all([rm(prefix, { recursive: true, force: true }), rm(elsewhere, { recursive: true, force: true })]));
  // A local folder installs as a link to it: nothing is fetched.
  await execa('npm', ['install', '-g', '--prefix', prefix, checkout, '--no-audit', '--no-fund'], { cwd: elsewhere });
  const command = path.join(prefix, 'bin', 'iommu-harness');
  const version = await execa(command, ['--version'], { cwd: elsewhere });
  t.regex(version.stdout, /^iommu-harness \d+\.\d+\.\d+/);
  await copyFile(fileURLToPath(new URL('../fixtures/oracle/reports/real-group-leak.log', import.meta.url)), path.join(elsewhere, 'console.log'));
  const parsed = await execa(command, ['parse', 'console.log'], { cwd: elsewhere, reject: false, all: true });
  // The capture holds a leaked group: exit 1, judged from the file in the folder the user is in.
  t.is(parsed.exitCode, 1, parsed.all);
  t.regex(parsed.stdout, /^console\.log: FAIL: .*1 leak/m);
});

test.serial('run inside a kernel git tree tests that tree, and says so', async (t) => {
  t.timeout(40 * 60_000);
  const tree = await ensureDebianSource(cacheLayout(), '6.12', progress);
  const out = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-here-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const json = path.join(out, 'result.json');
  const run = await execa('node', [path.join(checkout, 'bin/iommu-harness.js'), 'run', '--iommu', 'none', '--scenario', 'vfio-noiommu', '--json', json], { cwd: path.join(tree, 'drivers', 'iommu'), reject: false, all: true });
  t.regex(run.all, new RegExp(`testing the kernel tree you are in: ${tree.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
  const result = JSON.parse(await readFile(json, 'utf8')) as HarnessResult;
  t.is(result.kernel.source, tree, summary(result));
  t.is(run.exitCode, 0, run.all.split('\n').slice(-20).join('\n'));
});
