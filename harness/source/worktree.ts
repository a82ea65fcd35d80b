// Patches are applied in a worktree the harness owns, never in the user's
// checkout or index. The worktree lives as long as the cache, so switching
// between a clean tree and a patched one rewrites only the patched files and
// the out-of-tree build that follows stays incremental.
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { contentKey, ensureDir, type CacheLayout } from '../cache.ts';
import { HarnessError } from '../errors.ts';
import { exists } from '../files.ts';
import type { Progress } from '../log.ts';
import { git, type GitResult } from './git.ts';
import { detectPatchFormat, failingFile, withoutGitAdvice } from './patch.ts';
import { applicableText, isGzip, subjectOf } from './series.ts';
import type { UncommittedChanges } from './uncommitted.ts';

export interface PreparedTree {
  /** The repository the user named (or the harness's copy of Debian's source). */
  repo: string;
  /** The harness's worktree of it, with the patches applied. */
  worktree: string;
  /** The commit the patches were applied on. */
  baseCommit: string;
  /** HEAD after the patches. */
  headCommit: string;
  /** The git tree id after the patches: what the source contributes to the build's cache key. */
  treeId: string;
  patches: string[];
}

/** The worktree the harness keeps for `repo`. Callers hold the source lock. */
/** Beside the worktree (not in it: git clean would take it): the key of the kernel last built from the tree as it stands. */
export function treeKernelFile(worktree: string): string {
  return `${worktree}.iommu-harness-kernel`;
}

export function worktreeFor(layout: CacheLayout, repo: string): string {
  return path.join(layout.worktrees, `wt-${contentKey(path.resolve(repo))}`);
}

export async function resolveCommit(repo: string, ref: string): Promise<string> {
  const result = await git(repo, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], { allowFailure: true });
  if (result.exitCode !== 0) throw new HarnessError('usage', `${ref} is not a commit in ${repo}`);
  return result.stdout.trim();
}

/** A file's text at a commit, '' when the commit has no such file. */
export async function fileAtCommit(repo: string, commit: string, file: string): Promise<string> {
  const result = await git(repo, ['show', `${commit}:${file}`], { allowFailure: true });
  return result.exitCode === 0 ? result.stdout : '';
}

/** A usage error naming `option` unless `dir` is a git tree: asked before any commit is looked up in it. */
export async function checkGitTree(dir: string, option = '--src'): Promise<void> {
  const info = await stat(dir).catch(() => undefined);
  if (!info) throw new HarnessError('usage', `${option} ${dir}: no such folder`);
  if (!info.isDirectory()) throw new HarnessError('usage', `${option} ${dir} is not a folder`);
  const isRepo = await git(dir, ['rev-parse', '--git-dir'], { allowFailure: true });
  if (isRepo.exitCode !== 0) throw new HarnessError('usage', `${option} ${dir} is not a git tree`);
}

/** Checks out `ref` of `repo` in the harness's worktree and applies `patches` in order. Callers hold the worktree's lock. */
export async function prepareTree(
  layout: CacheLayout,
  options: {
    repo: string;
    ref: string;
    patches: string[];
    progress: Progress;
    cancelSignal?: AbortSignal;
    /** The user's tree's uncommitted changes (see readUncommitted), applied after the patches. */
    uncommitted?: UncommittedChanges;
  },
): Promise<PreparedTree> {
  const { repo, patches, progress } = options;
  await checkGitTree(repo);
  const baseCommit = await resolveCommit(repo, options.ref);
  const worktree = worktreeFor(layout, repo);
  await ensureDir(layout.worktrees);
  // The tree is about to change: it holds no built kernel until the next build ends.
  await rm(treeKernelFile(worktree), { force: true });
  const run = (dir: string, args: string[], flags: { allowFailure?: boolean } = {}) =>
    git(dir, args, { ...flags, ...(options.cancelSignal ? { cancelSignal: options.cancelSignal } : {}) });

  if (await isWorktreeOf(repo, worktree)) {
    for (const lock of await removeStaleLocks(worktree)) progress.warn(`removed ${lock}, left by an interrupted git in the harness's worktree`);
    // Abort anything a killed run left half done, then move to the base.
    await run(worktree, ['am', '--abort'], { allowFailure: true });
    await run(worktree, ['checkout', '--detach', '--force', '-q', baseCommit]);
    await run(worktree, ['clean', '-fdq']);
  } else {
    progress.step(`creating the harness's worktree of ${repo} at ${worktree} (once)`);
    // What is there is not a usable worktree of repo (a half-made one, or the
    // cache was moved or deleted by hand). Only this path's registration is
    // replaced (--force): `git worktree prune` would also drop the user's own
    // worktrees on unmounted disks.
    await rm(worktree, { recursive: true, force: true });
    await run(repo, ['worktree', 'add', '--detach', '--force', worktree, baseCommit]);
  }

  for (const patch of patches) await applyPatch(worktree, patch, run);
  if (options.uncommitted && options.uncommitted.files.length > 0) await applyUncommitted(worktree, options.uncommitted, run);

  const headCommit = (await run(worktree, ['rev-parse', 'HEAD'])).stdout.trim();
  const treeId = (await run(worktree, ['rev-parse', 'HEAD^{tree}'])).stdout.trim();
  return { repo, worktree, baseCommit, headCommit, treeId, patches: patches.map((patch) => path.resolve(patch)) };
}

/** Whether `worktree` is a working worktree registered in `repo` (same object store). */
async function isWorktreeOf(repo: string, worktree: string): Promise<boolean> {
  if (!(await exists(path.join(worktree, '.git')))) return false;
  const commonDir = async (dir: string) => {
    const result = await git(dir, ['rev-parse', '--path-format=absolute', '--git-common-dir'], { allowFailure: true });
    return result.exitCode === 0 ? result.stdout.trim() : undefined;
  };
  const own = await commonDir(worktree);
  return own !== undefined && own === (await commonDir(repo));
}

/**
 * Lock files (index.lock, HEAD.lock, ORIG_HEAD.lock...) in the worktree's own
 * git folder that a killed git left behind; every later checkout would fail on
 * them. The caller holds the harness's lock on this worktree, so no live
 * harness process is using them. Returns the removed files.
 */
async function removeStaleLocks(worktree: string): Promise<string[]> {
  const [gitDir = '', commonDir = ''] = (await git(worktree, ['rev-parse', '--path-format=absolute', '--git-dir', '--git-common-dir'])).stdout.trim().split('\n');
  // Only a linked worktree's own folder (.git/worktrees/NAME): never the user's main .git.
  if (path.dirname(gitDir) !== path.join(commonDir, 'worktrees')) return [];
  const locks = (await readdir(gitDir).catch(() => [] as string[])).filter((name) => name.endsWith('.lock')).map((name) => path.join(gitDir, name));
  for (const lock of locks) await rm(lock, { force: true, recursive: true });
  return locks;
}

async function applyPatch(worktree: string, patch: string, run: (dir: string, args: string[], flags?: { allowFailure?: boolean }) => Promise<GitResult>): Promise<void> {
  const file = path.resolve(patch);
  const bytes = await readFile(file).catch(() => {
    throw new HarnessError('usage', `cannot read patch ${file}`);
  });
  // A gzip file or an mbox with a cover letter: git gets the patches alone (series.ts).
  const { text, skipped } = applicableText(bytes);
  const format = detectPatchFormat(text);
  const subject = format === 'mbox' ? subjectOf(text) : undefined;
  if (format === 'mbox' && !text.trim()) return;
  const rewritten = skipped.length > 0 || isGzip(bytes);
  const dir = rewritten ? await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-patch-')) : undefined;
  const input = dir ? path.join(dir, path.basename(file).replace(/\.gz$/i, '')) : file;
  if (dir) await writeFile(input, text);
  try {
    const result =
      format === 'mbox'
        ? await run(worktree, ['-c', 'advice.mergeConflict=false', 'am', '-q', '--keep-cr', input], { allowFailure: true })
        : await run(worktree, ['apply', '--index', input], { allowFailure: true });
    if (result.exitCode !== 0) {
      if (format === 'mbox') await run(worktree, ['am', '--abort'], { allowFailure: true });
      const output = `${result.stderr}\n${result.stdout}`;
      const where = failingFile(output);
      const what = subject ? `"${subject}" (${path.basename(file)})` : path.basename(file);
      const why = /^Patch is empty/m.test(output) ? ' changes no file (no diff)' : ` does not apply${where ? ` to ${where}` : ''}`;
      throw new HarnessError('patch', `patch ${what}${why}`, {
        logPath: file,
        // git's advice (git am --continue...) is about a worktree the user does not own.
        excerpt: withoutGitAdvice(output.split('\n')).slice(0, 8),
      });
    }
  } finally {
    if (dir) await rm(dir, { recursive: true, force: true });
  }
  if (format === 'diff') {
    await run(worktree, ['commit', '-q', '--allow-empty', '-m', `iommu-harness: apply ${path.basename(file)}`]);
  }
}

/**
 * The user's uncommitted changes, committed in the harness's worktree on top
 * of the patches, so the tree id (and a later checkout) covers them. The
 * bytes are the ones read when the cache key was made, not the tree as it is
 * now: the developer may have edited on while the build waited for its lock.
 */
async function applyUncommitted(
  worktree: string,
  changes: UncommittedChanges,
  run: (dir: string, args: string[], flags?: { allowFailure?: boolean }) => Promise<GitResult>,
): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-uncommitted-'));
  try {
    if (changes.diff.length > 0) {
      const diffFile = path.join(dir, 'uncommitted.diff');
      await writeFile(diffFile, changes.diff);
      const result = await run(worktree, ['apply', '--index', '--binary', diffFile], { allowFailure: true });
      if (result.exitCode !== 0) {
        const output = `${result.stderr}\n${result.stdout}`;
        const where = failingFile(output);
        throw new HarnessError('patch', `the uncommitted changes of ${changes.top} do not apply after the patches${where ? ` (at ${where})` : ''}: commit them and rebase the patches, or leave them out`, {
          excerpt: output.split('\n').filter((line) => line.trim()).slice(0, 8),
        });
      }
    }
    for (const file of changes.untracked) {
      const target = path.join(worktree, file.path);
      await mkdir(path.dirname(target), { recursive: true });
      await rm(target, { force: true });
      if (file.kind === 'symlink') await symlink(file.content.toString(), target);
      else {
        await writeFile(target, file.content);
        await chmod(target, file.kind === 'executable' ? 0o755 : 0o644);
      }
    }
    if (changes.untracked.length > 0) {
      // From a file: a tree can have more untracked files than one command line holds.
      const list = path.join(dir, 'untracked');
      await writeFile(list, changes.untracked.map((file) => `${file.path}\0`).join(''));
      // -f: a patch or the edit itself may have changed .gitignore; the user's tree did not ignore these.
      await run(worktree, ['add', '-f', `--pathspec-from-file=${list}`, '--pathspec-file-nul']);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  await run(worktree, ['commit', '-q', '--allow-empty', '-m', `iommu-harness: uncommitted changes of ${changes.top}`]);
}
