// A b4-style series through the CLI, --each-patch: a folder of `git
// format-patch --cover-letter --base` output against the default kernel
// (Debian 6.12), patch 1 a harmless comment in iommu.c, patch 2 the change of
// test/fixtures/patches/fault-group-ref-leak.patch. The cover letter is
// skipped, the base-commit is used, and the leak is blamed on patch 2/2.
// The two commits are made inside the cache's Debian repository with git
// plumbing (as bisect.test.ts does), with fixed dates: the same series every
// run, so after the first run both kernels come from the cache; the first
// run's builds are incremental in the default tree's build directory.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { cacheLayout } from '../../harness/cache.ts';
import type { HarnessResult } from '../../harness/report/result.ts';
import { ensureDebianSource } from '../../harness/source/debian-source.ts';
import { cli, progress } from './helpers.ts';

const file = 'drivers/iommu/iommu.c';
const fixed = { GIT_AUTHOR_DATE: '2026-11-25T00:00:00Z', GIT_COMMITTER_DATE: '2026-11-25T00:00:00Z' };
const identity = { GIT_AUTHOR_NAME: 'iommu-harness test', GIT_AUTHOR_EMAIL: 'test@localhost', GIT_COMMITTER_NAME: 'iommu-harness test', GIT_COMMITTER_EMAIL: 'test@localhost', ...fixed };

async function gitIn(repo: string, args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<string> {
  const result = await execa('git', ['-C', repo, ...args], { ...(options.input !== undefined ? { input: options.input } : {}), env: { ...identity, ...options.env } });
  return result.stdout;
}

function replaceOnce(text: string, from: string, to: string): string {
  const at = text.indexOf(from);
  if (at < 0 || text.indexOf(from, at + 1) >= 0) throw new Error(`expected exactly one "${from.split('\n')[0]}" in ${file}`);
  return text.slice(0, at) + to + text.slice(at + from.length);
}

const edits = [
  {
    subject: 'iommu: say what iommu_subsys_init is for',
    edit: (text: string) => replaceOnce(text, 'static int __init iommu_subsys_init(void)\n', '/* iommu-harness series test: a harmless comment */\nstatic int __init iommu_subsys_init(void)\n'),
  },
  {
    subject: 'iommu: leak the group reference on device removal',
    edit: (text: string) =>
      replaceOnce(
        text,
        '\t/*\n\t * Pairs with the get in iommu_init_device() or\n\t * iommu_group_add_device()\n\t */\n\tiommu_group_put(group);\n}',
        '\t/*\n\t * FAULT INJECTED by iommu-harness: the reference taken in\n\t * iommu_init_device() or iommu_group_add_device() is never dropped,\n\t * so the group outlives its last device.\n\t */\n}',
      ),
  },
];

test.serial('--each-patch on a format-patch folder with a cover letter: the leak is introduced by [PATCH 2/2], the cover letter skipped, the base-commit used', async (t) => {
  t.timeout(40 * 60_000);
  const layout = cacheLayout();
  const repo = await ensureDebianSource(layout, '6.12', progress);
  const base = (await gitIn(repo, ['rev-parse', 'HEAD'])).trim();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'series-integration-'));
  const ref = `refs/iommu-harness-test/series-${process.pid}`;
  const index = path.join(dir, 'index');
  t.teardown(async () => {
    await rm(dir, { recursive: true, force: true });
    await execa('git', ['-C', repo, 'update-ref', '-d', ref], { reject: false });
  });
  await gitIn(repo, ['read-tree', base], { env: { GIT_INDEX_FILE: index } });
  let text = await gitIn(repo, ['show', `${base}:${file}`]);
  let parent = base;
  for (const { subject, edit } of edits) {
    text = `${edit(`${text}\n`).replace(/\n$/, '')}`;
    const blob = (await gitIn(repo, ['hash-object', '-w', '--stdin'], { input: `${text}\n` })).trim();
    await gitIn(repo, ['update-index', '--cacheinfo', `100644,${blob},${file}`], { env: { GIT_INDEX_FILE: index } });
    const tree = (await gitIn(repo, ['write-tree'], { env: { GIT_INDEX_FILE: index } })).trim();
    parent = (await gitIn(repo, ['commit-tree', tree, '-p', parent], { input: `${subject}\n` })).trim();
  }
  await gitIn(repo, ['update-ref', ref, parent]);
  const outgoing = path.join(dir, 'outgoing');
  await gitIn(repo, ['format-patch', '-q', '--cover-letter', `--base=${base}`, '-o', outgoing, `${base}..${ref}`]);

  const json = path.join(dir, 'result.json');
  const run = await execa('node', [cli, 'run', '--patch', outgoing, '--each-patch', '--iommu', 'intel', '--scenario', 'remove-rescan', '--json', json], {
    reject: false,
    cwd: dir,
    env: { IOMMU_HARNESS_ACCEL: process.env.IOMMU_HARNESS_ACCEL ?? 'tcg' },
  });
  t.log(run.stdout);
  t.is(run.exitCode, 1, run.stderr.split('\n').slice(-15).join('\n'));
  t.regex(run.stderr, /skipped the cover letter "\[PATCH 0\/2\] \*\*\* SUBJECT HERE \*\*\*" \(0000-cover-letter\.patch\): it changes no file/);
  t.regex(run.stderr, new RegExp(`base-commit ${base.slice(0, 12)} from the series \\(0000-cover-letter\\.patch\\)`));
  t.notRegex(`${run.stdout}\n${run.stderr}`, /git am --continue|Patch is empty|hint:/);
  t.regex(run.stdout, /intel\/remove-rescan: LEAK: iommu group \d+ \(\S+\) never released after remove-rescan\/remove\n    introduced by \[PATCH 2\/2\] iommu: leak the group reference on device removal/);
  t.regex(run.stdout, /\[PATCH 1\/2\] iommu: say what iommu_subsys_init is for: \w+/);

  const result = JSON.parse(await readFile(json, 'utf8')) as HarnessResult;
  const leaks = result.runs.flatMap((each) => each.leaks);
  t.true(leaks.length > 0);
  for (const leak of leaks) t.deepEqual(leak.introducedBy, { index: 2, subject: '[PATCH 2/2] iommu: leak the group reference on device removal' });
  t.deepEqual(result.series?.skipped, ['[PATCH 0/2] *** SUBJECT HERE ***']);
  t.deepEqual(result.series?.patches.map((step) => step.subject), ['[PATCH 1/2] iommu: say what iommu_subsys_init is for', '[PATCH 2/2] iommu: leak the group reference on device removal']);
  t.false(result.series!.patches[0]!.introduced.some((line) => /LEAK/.test(line)), result.series!.patches[0]!.introduced.join('\n'));
  t.true(result.series!.patches[1]!.introduced.some((line) => /LEAK/.test(line)));
  t.is(result.kernel.patches.length, 2);
  t.log(`builds ${result.series!.patches.map((step) => `${step.buildSeconds.toFixed(0)} s`).join(', ')}`);
});
