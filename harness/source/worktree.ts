// Patches are applied in a worktree the harness owns, never in the user's
// checkout or index. The worktree lives as long as the cache, so switching
// between a clean tree and a patched one rewrites only the patched files and
// the out-of-tree build that follows stays incremental.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { contentKey, ensureDir, type CacheLayout } from '../cache.ts';
import { HarnessError } from '../errors.ts';
import { exists } from '../files.ts';
import type { Progress } from '../log.ts';
import { git } from './git.ts';
import { detectPatchFormat, failingFile } from './patch.ts';

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
export function worktreeFor(layout: CacheLayout, repo: string): string {
  return path.join(layout.worktrees, `wt-${contentKey(path.resolve(repo))}`);
}

export async function resolveCommit(repo: string, ref: string): Promise<string> {
  const result = await git(repo, ['rev-parse', '--verify', '--quiet', `${ref}^{commit}`], { allowFailure: true });
  if (result.exitCode !== 0) throw new HarnessError('usage', `${ref} is not a commit in ${repo}`);
  return result.stdout.trim();
}

/** Checks out `ref` of `repo` in the harness's worktree and applies `patches` in order. */
export async function prepareTree(
  layout: CacheLayout,
  options: { repo: string; ref: string; patches: string[]; progress: Progress },
): Promise<PreparedTree> {
  const { repo, patches, progress } = options;
  const isRepo = await git(repo, ['rev-parse', '--git-dir'], { allowFailure: true });
  if (isRepo.exitCode !== 0) throw new HarnessError('usage', `--src ${repo} is not a git tree`);
  const baseCommit = await resolveCommit(repo, options.ref);
  const worktree = worktreeFor(layout, repo);
  await ensureDir(layout.worktrees);

  if (!(await exists(path.join(worktree, '.git')))) {
    progress.step(`creating the harness's worktree of ${repo} at ${worktree} (once)`);
    // Remove stale registrations, e.g. after the cache was deleted by hand.
    await git(repo, ['worktree', 'prune']);
    await git(repo, ['worktree', 'add', '--detach', '--force', worktree, baseCommit]);
  } else {
    // Abort anything a killed run left half done, then move to the base.
    await git(worktree, ['am', '--abort'], { allowFailure: true });
    await git(worktree, ['checkout', '--detach', '--force', '-q', baseCommit]);
    await git(worktree, ['clean', '-fdq']);
  }

  for (const patch of patches) await applyPatch(worktree, patch);

  const headCommit = (await git(worktree, ['rev-parse', 'HEAD'])).stdout.trim();
  const treeId = (await git(worktree, ['rev-parse', 'HEAD^{tree}'])).stdout.trim();
  return { repo, worktree, baseCommit, headCommit, treeId, patches: patches.map((patch) => path.resolve(patch)) };
}

async function applyPatch(worktree: string, patch: string): Promise<void> {
  const file = path.resolve(patch);
  const text = await readFile(file, 'utf8').catch(() => {
    throw new HarnessError('usage', `cannot read patch ${file}`);
  });
  const format = detectPatchFormat(text);
  const result =
    format === 'mbox'
      ? await git(worktree, ['am', '-q', '--keep-cr', file], { allowFailure: true })
      : await git(worktree, ['apply', '--index', file], { allowFailure: true });
  if (result.exitCode !== 0) {
    if (format === 'mbox') await git(worktree, ['am', '--abort'], { allowFailure: true });
    const output = `${result.stderr}\n${result.stdout}`;
    const where = failingFile(output);
    throw new HarnessError('patch', `patch ${path.basename(file)} does not apply${where ? ` to ${where}` : ''}`, {
      logPath: file,
      excerpt: output.split('\n').filter((line) => line.trim()).slice(0, 8),
    });
  }
  if (format === 'diff') {
    await git(worktree, ['commit', '-q', '--allow-empty', '-m', `iommu-harness: apply ${path.basename(file)}`]);
  }
}
