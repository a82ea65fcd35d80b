// A dirty --src tree is never tested silently: at HEAD its uncommitted changes
// (tracked edits, staged or not, deletions, untracked files git does not ignore)
// are built after the patches, named, and part of the kernel's key; another
// --ref with a dirty tree is refused. The user's tree is only read. Real git on
// a small repository whose Makefile only pretends to build (no kernel is built).
import { chmod, mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { obtainKernel } from '../../harness/build/index.ts';
import { cacheLayout } from '../../harness/cache.ts';
import { checkSource } from '../../harness/cli/options.ts';
import { HarnessError } from '../../harness/errors.ts';
import { silentProgress, type Progress } from '../../harness/log.ts';
import { readUncommitted, uncommittedFor } from '../../harness/source/uncommitted.ts';
import { prepareTree } from '../../harness/source/worktree.ts';

// The "kernel" is every .c file of the tree laid end to end: what reached the build shows in the bzImage.
const fakeMakefile = `tinyconfig:
\tmkdir -p $(O) && : > $(O)/.config
olddefconfig:
\t@true
bzImage:
\tmkdir -p $(O)/arch/x86/boot $(O)/include/config
\tcat $$(ls $(CURDIR)/*.c | sort) > $(O)/arch/x86/boot/bzImage
\tcp $(O)/arch/x86/boot/bzImage $(O)/vmlinux
\techo 6.12.0-fake > $(O)/include/config/kernel.release
headers_install:
\tmkdir -p $(INSTALL_HDR_PATH)/include
`;

const patch = `diff --git a/patched.c b/patched.c
--- a/patched.c
+++ b/patched.c
@@ -1 +1 @@
-int patched;
+int patched = 1;
`;

async function plainGit(dir: string, args: string[]) {
  return execa('git', ['-C', dir, ...args], {
    extendEnv: false,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', GIT_AUTHOR_NAME: 'u', GIT_AUTHOR_EMAIL: 'u@x', GIT_COMMITTER_NAME: 'u', GIT_COMMITTER_EMAIL: 'u@x', GIT_CONFIG_NOSYSTEM: '1' },
  });
}

/** A committed tree (hello.c, patched.c, gone.c, an ignore rule), a patch for it, and a cache beside it. */
async function fixture(t: import('ava').ExecutionContext) {
  const root = await mkdtemp(path.join(os.tmpdir(), 'uncommitted-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const repo = path.join(root, 'linux');
  await mkdir(repo);
  await plainGit(repo, ['init', '-q']);
  await writeFile(path.join(repo, 'Makefile'), fakeMakefile);
  await writeFile(path.join(repo, 'hello.c'), 'int hello;\n');
  await writeFile(path.join(repo, 'patched.c'), 'int patched;\n');
  await writeFile(path.join(repo, 'gone.c'), 'int gone;\n');
  await writeFile(path.join(repo, '.gitignore'), '*.o\n');
  await plainGit(repo, ['add', '.']);
  await plainGit(repo, ['commit', '-q', '-m', 'base']);
  const patchFile = path.join(root, 'fix.diff');
  await writeFile(patchFile, patch);
  return { root, repo, patchFile, layout: cacheLayout(path.join(root, 'cache')) };
}

/** What a developer's tree holds mid-work: an edit, a staged new file, a deletion, an untracked script, an ignored object. */
async function makeDirty(repo: string): Promise<void> {
  await writeFile(path.join(repo, 'hello.c'), 'int hello = 42; /* the edit under test */\n');
  await writeFile(path.join(repo, 'staged.c'), 'int staged;\n');
  await plainGit(repo, ['add', 'staged.c']);
  await plainGit(repo, ['rm', '-q', 'gone.c']);
  await mkdir(path.join(repo, 'tools'));
  await writeFile(path.join(repo, 'tools', 'new.sh'), '#!/bin/sh\necho new\n');
  await chmod(path.join(repo, 'tools', 'new.sh'), 0o755);
  await writeFile(path.join(repo, 'hello.o'), 'ignored build output');
}

/** Everything about the user's tree a harness run could change. */
async function treeState(repo: string) {
  const index = path.join(repo, '.git', 'index');
  return {
    head: (await plainGit(repo, ['rev-parse', 'HEAD'])).stdout,
    // --no-optional-locks: status would refresh the index itself, and the check is that nothing else writes it.
    status: (await plainGit(repo, ['--no-optional-locks', 'status', '--porcelain=v1', '--untracked-files=all'])).stdout,
    stash: (await plainGit(repo, ['stash', 'list'])).stdout,
    index: await readFile(index),
    indexTime: (await stat(index)).mtimeMs,
    hello: await readFile(path.join(repo, 'hello.c'), 'utf8'),
    worktrees: (await plainGit(repo, ['worktree', 'list', '--porcelain'])).stdout.split('\n').filter((line) => line.startsWith('worktree ')).length,
  };
}

function recording(): Progress & { steps: string[]; warnings: string[] } {
  const steps: string[] = [];
  const warnings: string[] = [];
  return { ...silentProgress, step: (message: string) => steps.push(message), warn: (message: string) => warnings.push(message), steps, warnings };
}

test('a dirty tree at HEAD is built with its uncommitted changes after the patches, each file named, and the user\'s tree is left as it was', async (t) => {
  const { repo, patchFile, layout } = await fixture(t);
  await makeDirty(repo);
  // A file time the index does not know (a checkout, an editor's save) makes `git diff` refresh,
  // that is rewrite, the index: it must not be the user's.
  const past = Date.now() / 1000 - 100;
  await utimes(path.join(repo, 'patched.c'), past, past);
  const before = await treeState(repo);

  const progress = recording();
  const kernel = await obtainKernel(layout, { src: repo, patches: [patchFile], kconfigs: [] }, progress);
  const files = ['gone.c', 'hello.c', 'staged.c', 'tools/new.sh'];
  t.deepEqual(kernel.source.uncommitted?.slice().sort(), files);
  t.true(progress.steps.some((line) => line.startsWith('including 4 uncommitted change(s) of ') && files.every((file) => line.includes(file))), progress.steps.join('\n'));
  // The build saw the edit, the staged file and the patch, and not the deleted file.
  t.is(await readFile(kernel.artifacts.bzImage, 'utf8'), 'int hello = 42; /* the edit under test */\nint patched = 1;\nint staged;\n');

  const worktree = (await plainGit(repo, ['worktree', 'list', '--porcelain'])).stdout.split('\n').filter((line) => line.startsWith('worktree ')).map((line) => line.slice('worktree '.length))[1] ?? '';
  t.is((await stat(path.join(worktree, 'tools', 'new.sh'))).mode & 0o111, 0o111, 'the untracked script keeps its exec bit');
  t.false(existsSync(path.join(worktree, 'hello.o')), 'an ignored file is not a change');
  t.false(existsSync(path.join(worktree, 'gone.c')));

  // Not one byte of the user's tree, index or stash changed (the harness's worktree registration aside).
  const after = await treeState(repo);
  t.deepEqual({ ...after, worktrees: 0 }, { ...before, worktrees: 0 });
  t.is(after.worktrees, before.worktrees + 1);
});

test('the uncommitted changes are part of the kernel\'s key: the same edit comes from the cache, another edit or a clean tree is another kernel', async (t) => {
  const { repo, layout } = await fixture(t);
  const clean = await obtainKernel(layout, { src: repo, patches: [], kconfigs: [] }, silentProgress);
  t.is(clean.source.uncommitted, undefined, 'a clean tree has nothing uncommitted');
  t.is(await readFile(clean.artifacts.bzImage, 'utf8'), 'int gone;\nint hello;\nint patched;\n');

  await writeFile(path.join(repo, 'hello.c'), 'int hello = 1;\n');
  const first = await obtainKernel(layout, { src: repo, patches: [], kconfigs: [] }, silentProgress);
  t.not(first.artifacts.key, clean.artifacts.key);
  t.deepEqual(first.source.uncommitted, ['hello.c']);
  const again = await obtainKernel(layout, { src: repo, patches: [], kconfigs: [] }, silentProgress);
  t.is(again.artifacts.key, first.artifacts.key);
  t.is(again.buildSeconds, 0, 'the same edit is the cached kernel');
  t.deepEqual(again.source.uncommitted, ['hello.c'], 'named from the cache too');

  await writeFile(path.join(repo, 'hello.c'), 'int hello = 2;\n');
  const second = await obtainKernel(layout, { src: repo, patches: [], kconfigs: [] }, silentProgress);
  t.not(second.artifacts.key, first.artifacts.key);
  t.is(await readFile(second.artifacts.bzImage, 'utf8'), 'int gone;\nint hello = 2;\nint patched;\n');

  // An untracked file's content counts as much as a tracked edit's.
  await plainGit(repo, ['checkout', '-q', '--', 'hello.c']);
  await writeFile(path.join(repo, 'extra.c'), 'int extra = 1;\n');
  const withExtra = await readUncommitted(repo);
  await writeFile(path.join(repo, 'extra.c'), 'int extra = 2;\n');
  t.not((await readUncommitted(repo))?.key, withExtra?.key);
  await rm(path.join(repo, 'extra.c'));

  const cleanAgain = await obtainKernel(layout, { src: repo, patches: [], kconfigs: [] }, silentProgress);
  t.is(cleanAgain.artifacts.key, clean.artifacts.key, 'cleaned up, the tree is the clean kernel again');
  t.is(cleanAgain.source.uncommitted, undefined);
});

test('another --ref with a dirty tree is a usage error naming the files; HEAD, or a clean tree, is not', async (t) => {
  const { repo } = await fixture(t);
  await writeFile(path.join(repo, 'patched.c'), 'int patched = 7;\n');
  await plainGit(repo, ['commit', '-q', '-am', 'second']);
  await t.notThrowsAsync(checkSource(repo, [{ option: '--ref', ref: 'HEAD~1' }]), 'a clean tree may test any commit');
  await makeDirty(repo);
  const error = await t.throwsAsync(checkSource(repo, [{ option: '--ref', ref: 'HEAD~1' }]), { instanceOf: HarnessError });
  t.is(error?.exitCode, 2);
  t.regex(error?.message ?? '', /has uncommitted changes \(.*hello\.c.*tools\/new\.sh.*\), which are not of --ref HEAD~1: test HEAD \(the default\) to include them/);
  await t.notThrowsAsync(checkSource(repo, [{ option: '--ref', ref: 'HEAD' }]));
  // bisect's ends walk history no edit is part of: not refused, and each trial says the edit is left out.
  await t.notThrowsAsync(checkSource(repo, [{ option: '--good', ref: 'HEAD~1' }, { option: '--bad', ref: 'HEAD' }]));
  const progress = recording();
  t.is(await uncommittedFor(repo, 'HEAD~1', progress), undefined);
  t.regex(progress.warnings.join('\n'), /has uncommitted changes \(.*hello\.c.*\): they are not of HEAD~1 and are not included/);
});

test('uncommitted changes that conflict with a patch are a patch error, not a silent build of either', async (t) => {
  const { repo, patchFile, layout } = await fixture(t);
  await writeFile(path.join(repo, 'patched.c'), 'int patched = 2;\n');
  const changes = await readUncommitted(repo);
  const error = await t.throwsAsync(prepareTree(layout, { repo, ref: 'HEAD', patches: [patchFile], progress: silentProgress, ...(changes ? { uncommitted: changes } : {}) }), { instanceOf: HarnessError });
  t.is(error?.kind, 'patch');
  t.regex(error?.message ?? '', /the uncommitted changes of .* do not apply after the patches \(at patched\.c\)/);
});

test('a clean tree\'s worktree is the commit and the patches, and nothing is read as uncommitted', async (t) => {
  const { repo, patchFile, layout } = await fixture(t);
  await writeFile(path.join(repo, 'hello.o'), 'ignored');
  t.is(await readUncommitted(repo), undefined);
  const tree = await prepareTree(layout, { repo, ref: 'HEAD', patches: [patchFile], progress: silentProgress });
  t.is((await plainGit(tree.worktree, ['rev-list', '--count', `${tree.baseCommit}..HEAD`])).stdout, '1', 'one commit: the patch');
});
