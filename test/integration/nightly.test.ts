// A real night in two shards: the default kernel (already built for the other
// integration tests: no rebuild), lockdep profile, intel, two scenarios, one
// cycle; then merge-reports, --resume and a baseline. Costs two boots.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { execa } from 'execa';
import * as tar from 'tar';
import type { Night } from '../../harness/nightly/night.ts';

const cli = fileURLToPath(new URL('../../bin/iommu-harness.js', import.meta.url));
const readNight = async (dir: string) => JSON.parse(await readFile(path.join(dir, 'night.json'), 'utf8')) as Night;
const nightly = (...args: string[]) => execa('node', [cli, ...args], { reject: false, env: { CI: '1' } });

let root: string;
test.before(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'nightly-it-'));
});
test.after.always(async () => {
  if (root && !process.env.IOMMU_HARNESS_KEEP) await rm(root, { recursive: true, force: true });
});

test.serial('two shards run their halves; merge-reports joins them into one night with JUnit, HTML and a tarball', async (t) => {
  // The build lock may be held by another test file building a patched kernel.
  t.timeout(15 * 60_000);
  const plan = path.join(root, 'plan.json');
  await writeFile(
    plan,
    JSON.stringify({ kernels: [{ name: 'default' }], profiles: ['lockdep'], iommus: ['intel'], scenarios: ['vfio-bind-unbind', 'pci-hotplug'], cycles: 1, timeouts: { runMinutes: 10, overallMinutes: 60 } }),
  );
  const nights = await mkdir(path.join(root, 'nights'), { recursive: true }).then(() => path.join(root, 'nights'));
  const shardDir = (i: number) => path.join(root, 'shards', `shard-${i}`);

  for (const i of [1, 2]) {
    const started = Date.now();
    const result = await nightly('nightly', '--plan', plan, '--shard', `${i}/2`, '--out', shardDir(i));
    t.log(`shard ${i}/2: exit ${result.exitCode} in ${((Date.now() - started) / 1000).toFixed(0)} s\n${result.stdout}`);
    t.is(result.exitCode, 0, `${result.stdout}\n${result.stderr.slice(-3000)}`);
    const shard = await readNight(shardDir(i));
    t.deepEqual(shard.shard, { index: i, count: 2 });
    t.is(shard.runs.length, 1, 'each shard runs one of the two cells');
    t.is(shard.runs[0]!.verdict, 'pass', JSON.stringify(shard.runs[0], null, 2));
  }
  const [one, two] = [await readNight(shardDir(1)), await readNight(shardDir(2))];
  t.deepEqual([one.runs[0]!.scenario, two.runs[0]!.scenario], ['vfio-bind-unbind', 'pci-hotplug']);

  // Run again without --resume: refused; with it: nothing left to boot.
  const refused = await nightly('nightly', '--plan', plan, '--shard', '1/2', '--out', shardDir(1));
  t.is(refused.exitCode, 2, refused.stderr);
  t.regex(refused.stderr, /already holds a night; pass --resume/);
  const startedResume = Date.now();
  const resumed = await nightly('nightly', '--plan', plan, '--shard', '1/2', '--out', shardDir(1), '--resume');
  t.is(resumed.exitCode, 0, resumed.stderr);
  t.regex(resumed.stderr, /resuming: 1 run\(s\) already done/);
  t.true(Date.now() - startedResume < 60_000, 'a resumed night with nothing left does not boot');
  t.is((await readNight(shardDir(1))).runs[0]!.startedAt, one.runs[0]!.startedAt);

  // A previous night where vfio-bind-unbind leaked: tonight it is fixed.
  const out = path.join(nights, '2026-11-25');
  const previous = path.join(nights, '2026-11-24');
  await mkdir(previous, { recursive: true });
  const cell = 'default.lockdep.intel.vfio-bind-unbind';
  const leak = { signature: `${cell} | leak: 0000:01:00.0`, cell, kind: 'leak', title: 'iommu group leak: 0000:01:00.0', evidence: 'iommu group 5 (0000:01:00.0) was never released', runs: [`${cell}.c1`] };
  await writeFile(path.join(previous, 'night.json'), JSON.stringify({ ...one, shard: undefined, name: '2026-11-24', findings: [leak] }));

  const merged = await nightly('merge-reports', '--out', out, shardDir(1), shardDir(2));
  t.log(merged.stdout);
  t.is(merged.exitCode, 0, merged.stderr);
  const night = await readNight(out);
  t.is(night.shard, undefined);
  t.deepEqual(night.mergedFrom, [shardDir(1), shardDir(2)]);
  t.deepEqual(night.cells.map((c) => [c.id, c.verdict]), [[cell, 'pass'], ['default.lockdep.intel.pci-hotplug', 'pass']]);
  t.is(night.verdict, 'pass');
  t.deepEqual(night.baseline?.name, '2026-11-24');
  t.deepEqual(night.diff.fixed.map((f) => f.signature), [leak.signature]);
  t.is(night.cells[0]!.status, 'fixed');
  t.regex(merged.stdout, /1 fixed/);

  const junit = await readFile(path.join(out, 'junit.xml'), 'utf8');
  t.is(junit.match(/<testcase /g)?.length, 2);
  t.regex(junit, /<testcase classname="default\.lockdep\.intel" name="vfio-bind-unbind"/);
  t.regex(junit, /<testcase classname="default\.lockdep\.intel" name="pci-hotplug"/);
  const html = await readFile(path.join(out, 'index.html'), 'utf8');
  t.regex(html, /href="runs\/default\.lockdep\.intel\.pci-hotplug\.c1\/[^"]+\/console\.log"/);

  const entries: string[] = [];
  await tar.t({ file: path.join(out, 'iommu-harness-2026-11-25.tar.gz'), onReadEntry: (entry) => entries.push(entry.path) });
  for (const wanted of ['night.json', 'junit.xml', 'index.html', 'builds/default.lockdep/config', 'builds/default.lockdep/build.log']) {
    t.true(entries.includes(`2026-11-25/${wanted}`), `${wanted} in the tarball`);
  }
  for (const run of night.runs) {
    t.true(entries.includes(`2026-11-25/${run.logs.console}`), `${run.logs.console} in the tarball`);
    t.true(entries.includes(`2026-11-25/${run.logs.dmesg}`), `${run.logs.dmesg} in the tarball`);
    t.is(run.logs.config, 'builds/default.lockdep/config');
    t.is(run.logs.buildLog, 'builds/default.lockdep/build.log');
  }
  t.false(entries.some((entry) => entry.endsWith('.tar.gz')));
});
