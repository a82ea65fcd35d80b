// git in the user's repository: their hooks, signing and GIT_* variables take
// no part; what an interrupted git left in the harness's own worktree heals;
// the user's other worktrees are left alone. Real git on small repositories.
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { cacheLayout } from '../../harness/cache.ts';
import { HarnessError } from '../../harness/errors.ts';
import { silentProgress, type Progress } from '../../harness/log.ts';
import { checkGitTree, prepareTree, worktreeFor } from '../../harness/source/worktree.ts';

const plainDiff = `diff --git a/hello.c b/hello.c
--- a/hello.c
+++ b/hello.c
@@ -1 +1 @@
-int hello;
+int hello = 1;
`;

const mboxPatch = `From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001
From: Someone <someone@example.com>
Date: Thu, 1 Jan 2026 00:00:00 +0000
Subject: [PATCH] hello: say two

---
 hello.c | 2 +-
 1 file changed, 1 insertion(+), 1 deletion(-)

diff --git a/hello.c b/hello.c
--- a/hello.c
+++ b/hello.c
@@ -1 +1 @@
-int hello;
+int hello = 2;
--
2.39.5
`;

async function plainGit(dir: string, args: string[]) {
  // Its own environment: the GIT_DIR test below sets the process's.
  return execa('git', ['-C', dir, ...args], {
    extendEnv: false,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', GIT_AUTHOR_NAME: 'u', GIT_AUTHOR_EMAIL: 'u@x', GIT_COMMITTER_NAME: 'u', GIT_COMMITTER_EMAIL: 'u@x', GIT_CONFIG_NOSYSTEM: '1' },
  });
}

/** A repository with one commit and a cache beside it. */
async function fixture() {
  const root = await mkdtemp(path.join(os.tmpdir(), 'failure-git-'));
  const repo = path.join(root, 'linux');
  await mkdir(repo);
  await plainGit(repo, ['init', '-q']);
  await writeFile(path.join(repo, 'hello.c'), 'int hello;\n');
  await plainGit(repo, ['add', 'hello.c']);
  await plainGit(repo, ['commit', '-q', '-m', 'hello']);
  const patches = path.join(root, 'patches');
  await mkdir(patches);
  await writeFile(path.join(patches, 'plain.diff'), plainDiff);
  await writeFile(path.join(patches, '0001-hello.patch'), mboxPatch);
  return { root, repo, layout: cacheLayout(path.join(root, 'cache')), patch: (name: string) => path.join(patches, name) };
}

/** Hooks that fail and leave a mark, so running them at all shows. */
async function addFailingHooks(repo: string, marks: string): Promise<void> {
  const hooks = path.join(repo, '.git', 'hooks');
  for (const hook of ['pre-commit', 'commit-msg', 'post-checkout', 'applypatch-msg', 'pre-applypatch', 'post-commit']) {
    await writeFile(path.join(hooks, hook), `#!/bin/sh\necho ${hook} >> ${marks}\nexit 1\n`);
    await chmod(path.join(hooks, hook), 0o755);
  }
}

function recording(): Progress & { warnings: string[] } {
  const warnings: string[] = [];
  return { ...silentProgress, warn: (message: string) => warnings.push(message), warnings };
}

test('failing hooks and commit.gpgSign=true do not stop a plain diff or an mbox patch, and no hook runs', async (t) => {
  const { root, repo, layout, patch } = await fixture();
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const marks = path.join(root, 'hooks-ran');
  await addFailingHooks(repo, marks);
  await plainGit(repo, ['config', 'commit.gpgSign', 'true']);
  await plainGit(repo, ['config', 'user.signingKey', 'NO-SUCH-KEY']);

  const plain = await prepareTree(layout, { repo, ref: 'HEAD', patches: [patch('plain.diff')], progress: silentProgress });
  t.is(await readFile(path.join(plain.worktree, 'hello.c'), 'utf8'), 'int hello = 1;\n');
  t.not(plain.headCommit, plain.baseCommit);
  const mbox = await prepareTree(layout, { repo, ref: 'HEAD', patches: [patch('0001-hello.patch')], progress: silentProgress });
  t.is(await readFile(path.join(mbox.worktree, 'hello.c'), 'utf8'), 'int hello = 2;\n');
  t.false(existsSync(marks), existsSync(marks) ? `hooks ran: ${await readFile(marks, 'utf8')}` : '');
});

test.serial('GIT_DIR, GIT_WORK_TREE and GIT_INDEX_FILE in the environment do not redirect the harness', async (t) => {
  const { root, repo, layout, patch } = await fixture();
  const other = await fixture();
  t.teardown(() => Promise.all([rm(root, { recursive: true, force: true }), rm(other.root, { recursive: true, force: true })]));
  const otherHead = (await plainGit(other.repo, ['rev-parse', 'HEAD'])).stdout;
  const saved = { ...process.env };
  t.teardown(() => {
    process.env = saved;
  });
  process.env.GIT_DIR = path.join(other.repo, '.git');
  process.env.GIT_WORK_TREE = other.repo;
  process.env.GIT_INDEX_FILE = path.join(other.root, 'index');

  const tree = await prepareTree(layout, { repo, ref: 'HEAD', patches: [patch('plain.diff')], progress: silentProgress });
  process.env = saved;
  t.is(tree.worktree, worktreeFor(layout, repo));
  t.is(await readFile(path.join(tree.worktree, 'hello.c'), 'utf8'), 'int hello = 1;\n');
  // The other repository was not touched: same HEAD, no harness worktree registered in it, its file unchanged.
  t.is((await plainGit(other.repo, ['rev-parse', 'HEAD'])).stdout, otherHead);
  t.is((await plainGit(other.repo, ['worktree', 'list'])).stdout.split('\n').length, 1);
  t.is(await readFile(path.join(other.repo, 'hello.c'), 'utf8'), 'int hello;\n');
});

test('stale index.lock and HEAD.lock in the harness worktree are removed and named; the next checkout works', async (t) => {
  const { root, repo, layout, patch } = await fixture();
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const first = await prepareTree(layout, { repo, ref: 'HEAD', patches: [patch('plain.diff')], progress: silentProgress });
  const gitDir = (await plainGit(first.worktree, ['rev-parse', '--absolute-git-dir'])).stdout;
  // What a git killed mid-checkout or mid-commit leaves.
  await writeFile(path.join(gitDir, 'index.lock'), '');
  await writeFile(path.join(gitDir, 'HEAD.lock'), '');
  const progress = recording();
  const second = await prepareTree(layout, { repo, ref: 'HEAD', patches: [], progress });
  t.is(await readFile(path.join(second.worktree, 'hello.c'), 'utf8'), 'int hello;\n');
  t.is(second.headCommit, second.baseCommit);
  t.false(existsSync(path.join(gitDir, 'index.lock')));
  t.false(existsSync(path.join(gitDir, 'HEAD.lock')));
  t.is(progress.warnings.filter((warning) => /index\.lock|HEAD\.lock/.test(warning)).length, 2);
});

test('a half-made or unregistered worktree folder is replaced; the user\'s own worktrees are kept, even on a missing path', async (t) => {
  const { root, repo, layout } = await fixture();
  t.teardown(() => rm(root, { recursive: true, force: true }));
  // The user's worktree on a disk that is not mounted now: `git worktree prune` would drop it.
  const userWorktree = path.join(root, 'usb-disk', 'linux-wt');
  await plainGit(repo, ['worktree', 'add', '-q', '--detach', userWorktree]);
  await rm(path.join(root, 'usb-disk'), { recursive: true, force: true });
  // A worktree folder with files but no registration, as a kill during `worktree add` or a hand-copied cache leaves.
  const worktree = worktreeFor(layout, repo);
  await mkdir(worktree, { recursive: true });
  await writeFile(path.join(worktree, 'junk'), 'x');

  const tree = await prepareTree(layout, { repo, ref: 'HEAD', patches: [], progress: silentProgress });
  t.is(await readFile(path.join(tree.worktree, 'hello.c'), 'utf8'), 'int hello;\n');
  t.false(existsSync(path.join(worktree, 'junk')));
  const list = (await plainGit(repo, ['worktree', 'list', '--porcelain'])).stdout;
  t.true(list.includes(`worktree ${userWorktree}`), list);
  t.true(list.includes(`worktree ${worktree}`), list);

  // The cache deleted by hand: the stale registration of the harness's path is replaced, the user's kept.
  await rm(layout.worktrees, { recursive: true, force: true });
  const again = await prepareTree(layout, { repo, ref: 'HEAD', patches: [], progress: silentProgress });
  t.is(await readFile(path.join(again.worktree, 'hello.c'), 'utf8'), 'int hello;\n');
  const after = (await plainGit(repo, ['worktree', 'list', '--porcelain'])).stdout;
  t.true(after.includes(`worktree ${userWorktree}`), after);
  t.is(after.split('\n').filter((line) => line === `worktree ${worktree}`).length, 1, after);
});

test('--src that is not a git tree says so, before any commit is looked up', async (t) => {
  const { root } = await fixture();
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const plain = path.join(root, 'patches');
  const error = await t.throwsAsync(checkGitTree(plain), { instanceOf: HarnessError });
  t.is(error?.message, `--src ${plain} is not a git tree`);
  t.is(error?.exitCode, 2);
  const missing = await t.throwsAsync(checkGitTree(path.join(root, 'nope')), { instanceOf: HarnessError });
  t.regex(missing?.message ?? '', /no such folder/);
  const layout = cacheLayout(path.join(root, 'cache'));
  const viaPrepare = await t.throwsAsync(prepareTree(layout, { repo: plain, ref: 'HEAD', patches: [], progress: silentProgress }), { instanceOf: HarnessError });
  t.regex(viaPrepare?.message ?? '', /is not a git tree/);
});
