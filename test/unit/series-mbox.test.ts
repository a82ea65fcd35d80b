// A b4 / format-patch series as --patch: the cover letter is left out (and
// said), a folder of format-patch output and a gzip mbox read the same, the
// base-commit line is found, and git's advice never reaches the user. Real
// `git format-patch --cover-letter --base` in a small repository made here.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import test from 'ava';
import { execa } from 'execa';
import { cacheLayout } from '../../harness/cache.ts';
import { HarnessError } from '../../harness/errors.ts';
import { silentProgress } from '../../harness/log.ts';
import { withoutGitAdvice } from '../../harness/source/patch.ts';
import { baseCommitOf, describeSeries, hasDiff, isCoverLetter, isGzip, readSeries, seriesBase, splitMbox, subjectOf } from '../../harness/source/series.ts';
import { prepareTree } from '../../harness/source/worktree.ts';

const env = { GIT_AUTHOR_NAME: 'A U Thor', GIT_AUTHOR_EMAIL: 'a@example.org', GIT_COMMITTER_NAME: 'A U Thor', GIT_COMMITTER_EMAIL: 'a@example.org' };
const gitIn = async (dir: string, args: string[]) => (await execa('git', ['-C', dir, ...args], { env })).stdout;

interface Made {
  dir: string;
  repo: string;
  base: string;
  /** `format-patch --cover-letter --base --stdout`: one mbox. */
  mbox: string;
  /** The same as a folder of 0000-cover-letter.patch, 0001-..., 0002-... */
  folder: string;
}

/** A repository with two commits on a base, and the series of them, made once per test. */
async function makeSeries(): Promise<Made> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'series-test-'));
  const repo = path.join(dir, 'repo');
  await execa('git', ['init', '-q', repo]);
  await writeFile(path.join(repo, 'a.c'), 'int a;\n');
  await writeFile(path.join(repo, 'b.c'), 'int b;\n');
  await gitIn(repo, ['add', '.']);
  await gitIn(repo, ['commit', '-q', '-m', 'base']);
  const base = (await gitIn(repo, ['rev-parse', 'HEAD'])).trim();
  await writeFile(path.join(repo, 'a.c'), 'int a = 1;\n');
  await gitIn(repo, ['commit', '-q', '-am', 'a: set a']);
  await writeFile(path.join(repo, 'b.c'), 'int b = 2;\n');
  await gitIn(repo, ['commit', '-q', '-am', 'b: set b']);
  const mbox = path.join(dir, 'series.mbx');
  await writeFile(mbox, `${await gitIn(repo, ['format-patch', '--cover-letter', `--base=${base}`, '--stdout', `${base}..HEAD`])}\n`);
  const folder = path.join(dir, 'outgoing');
  await gitIn(repo, ['format-patch', '-q', '--cover-letter', `--base=${base}`, '-o', folder, `${base}..HEAD`]);
  // The commits go: the series is applied on the base, as a reviewer would.
  await gitIn(repo, ['reset', '-q', '--hard', base]);
  return { dir, repo, base, mbox, folder };
}

test('an mbox splits into its mails; the cover letter is the one with no diff and [PATCH 0/2]', async (t) => {
  const made = await makeSeries();
  t.teardown(() => rm(made.dir, { recursive: true, force: true }));
  const mails = splitMbox(await readFile(made.mbox, 'utf8'));
  t.is(mails.length, 3);
  t.deepEqual(mails.map(isCoverLetter), [true, false, false]);
  t.deepEqual(mails.map(hasDiff), [false, true, true]);
  t.deepEqual(mails.map(subjectOf), ['[PATCH 0/2] *** SUBJECT HERE ***', '[PATCH 1/2] a: set a', '[PATCH 2/2] b: set b']);
  t.is(baseCommitOf(mails[0]!), made.base);
  t.is(baseCommitOf('no base here\n'), undefined);
  // A single patch is one piece, not a split.
  t.is(splitMbox(mails[1]!).length, 1);
});

test('the series from an mbox, a folder and a gzip mbox: same subjects, cover letter skipped and said, base-commit found', async (t) => {
  const made = await makeSeries();
  t.teardown(() => rm(made.dir, { recursive: true, force: true }));
  const gz = path.join(made.dir, 'series.mbx.gz');
  await writeFile(gz, gzipSync(await readFile(made.mbox)));
  t.true(isGzip(await readFile(gz)));
  const splitDir = path.join(made.dir, 'split');
  for (const input of [made.mbox, made.folder, gz]) {
    const series = await readSeries([input], { splitDir, split: true });
    t.deepEqual(series.patches.map((patch) => patch.subject), ['[PATCH 1/2] a: set a', '[PATCH 2/2] b: set b'], input);
    t.deepEqual(series.skipped.map((cover) => cover.subject), ['[PATCH 0/2] *** SUBJECT HERE ***'], input);
    t.is(series.baseCommit?.commit, made.base, input);
    t.regex(describeSeries(series)[0] ?? '', /skipped the cover letter "\[PATCH 0\/2\] \*\*\* SUBJECT HERE \*\*\*"/);
  }
  // Without --each-patch an mbox is applied as the user's file (the worktree leaves its cover letter out); a gzip one is decompressed.
  const whole = await readSeries([made.mbox], { splitDir });
  t.deepEqual(whole.patches, [{ file: made.mbox, subject: '2 patches of series.mbx', source: made.mbox }]);
  const unzipped = await readSeries([gz], { splitDir });
  t.is(unzipped.patches.length, 1);
  t.is(await readFile(unzipped.patches[0]!.file, 'utf8'), splitMbox(await readFile(made.mbox, 'utf8')).slice(1).join(''));
  const folder = await readSeries([made.folder], { splitDir });
  t.deepEqual(folder.patches.map((patch) => path.basename(patch.file)), ['0001-a-set-a.patch', '0002-b-set-b.patch']);
});

test('the series applies in order on the base, from every form, the cover letter left out', async (t) => {
  const made = await makeSeries();
  t.teardown(() => rm(made.dir, { recursive: true, force: true }));
  const layout = cacheLayout(path.join(made.dir, 'cache'));
  const gz = path.join(made.dir, 'series.mbx.gz');
  await writeFile(gz, gzipSync(await readFile(made.mbox)));
  // The raw files, as bisect and nightly hand them to prepareTree: the worktree leaves the cover letter out itself.
  for (const patches of [[made.mbox], [gz], (await readSeries([made.folder], { splitDir: path.join(made.dir, 'split') })).patches.map((patch) => patch.file)]) {
    const tree = await prepareTree(layout, { repo: made.repo, ref: made.base, patches, progress: silentProgress });
    t.is(await readFile(path.join(tree.worktree, 'a.c'), 'utf8'), 'int a = 1;\n');
    t.is(await readFile(path.join(tree.worktree, 'b.c'), 'utf8'), 'int b = 2;\n');
    t.deepEqual((await gitIn(tree.worktree, ['log', '--format=%s', `${made.base}..HEAD`])).split('\n'), ['b: set b', 'a: set a']);
  }
});

test("a patch that does not apply is named by its subject, and git's advice is left out", async (t) => {
  const made = await makeSeries();
  t.teardown(() => rm(made.dir, { recursive: true, force: true }));
  const layout = cacheLayout(path.join(made.dir, 'cache'));
  await writeFile(path.join(made.repo, 'a.c'), 'int a = 7;\n');
  await gitIn(made.repo, ['commit', '-q', '-am', 'a: another a']);
  const error = await t.throwsAsync(prepareTree(layout, { repo: made.repo, ref: 'HEAD', patches: [made.mbox], progress: silentProgress }), { instanceOf: HarnessError });
  t.regex(error?.message ?? '', /^patch "\[PATCH 1\/2\] a: set a" \(series\.mbx\) does not apply to a\.c$/);
  const excerpt = (error as HarnessError).excerpt.join('\n');
  t.notRegex(excerpt, /git am --|hint:|resolved this problem/, excerpt);
  t.deepEqual(withoutGitAdvice(['error: patch failed: a.c:1', 'hint: Use \'git am --show-current-patch=diff\' to see the failed patch', 'When you have resolved this problem, run "git am --continue".']), ['error: patch failed: a.c:1']);
});

test('a mail without a diff that is no cover letter is refused by name', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'series-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'empty.patch');
  await writeFile(file, 'From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\nFrom: A <a@b>\nSubject: [PATCH 1/1] nothing\n\nno diff\n');
  const error = await t.throwsAsync(readSeries([file], { splitDir: dir }), { instanceOf: HarnessError });
  t.regex(error?.message ?? '', /"\[PATCH 1\/1\] nothing" changes no file/);
  await t.throwsAsync(readSeries([path.join(dir, 'missing.patch')], { splitDir: dir }), { message: /--patch .*missing\.patch: no such file/ });
});

test('base-commit: used when the tree has it, a usage error naming it when not, and --ref wins', async (t) => {
  const made = await makeSeries();
  t.teardown(() => rm(made.dir, { recursive: true, force: true }));
  await writeFile(path.join(made.repo, 'c.c'), 'int c;\n');
  await gitIn(made.repo, ['add', 'c.c']);
  await gitIn(made.repo, ['commit', '-q', '-m', 'later']);
  const series = await readSeries([made.mbox], { splitDir: path.join(made.dir, 'split') });
  const used = await seriesBase({ series, repo: made.repo, repoLabel: made.repo, ref: 'HEAD', refGiven: false });
  t.is(used.ref, made.base);
  t.is(used.line, `base-commit ${made.base.slice(0, 12)} from the series (series.mbx): the patches apply on it (--ref to choose another)`);
  const ignored = await seriesBase({ series, repo: made.repo, repoLabel: made.repo, ref: 'HEAD', refGiven: true });
  t.is(ignored.ref, 'HEAD');
  t.regex(ignored.line ?? '', /--ref HEAD given: the series' base-commit [0-9a-f]{12} is ignored/);
  const missing = { ...series, baseCommit: { commit: 'f'.repeat(40), source: made.mbox } };
  const error = await t.throwsAsync(seriesBase({ series: missing, repo: made.repo, repoLabel: made.repo, ref: 'HEAD', refGiven: false }), { instanceOf: HarnessError });
  t.is((error as HarnessError).kind, 'usage');
  t.regex(error?.message ?? '', /base-commit f{40} \(in series\.mbx\) is not in .*: fetch it \(git -C .* fetch REMOTE f{40}\) or pass --ref/);
  // No base-commit: the ref as given.
  t.deepEqual(await seriesBase({ series: { patches: [], skipped: [] }, repo: made.repo, repoLabel: made.repo, ref: 'HEAD', refGiven: false }), { ref: 'HEAD' });
});
