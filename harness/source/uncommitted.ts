// A kernel developer's uncommitted edit is the thing under test: testing HEAD
// without it would print a verdict on code the developer is not asking about.
// The user's tree is only read, never written: even `git diff` rewrites the
// index when file times changed (its quiet refresh, which GIT_OPTIONAL_LOCKS=0
// does not stop in git 2.39), so git reads a private copy of the index.
import { copyFile, lstat, mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { contentKey } from '../cache.ts';
import { exists } from '../files.ts';
import type { Progress } from '../log.ts';
import { git, gitBytes } from './git.ts';

/** One untracked, not ignored file, as it was when the tree was read. */
export interface UntrackedFile {
  /** Relative to the tree's top. */
  path: string;
  /** The file's bytes, or a symbolic link's target. */
  content: Buffer;
  kind: 'file' | 'executable' | 'symlink';
}

/** What a tree holds beyond its HEAD commit, read once so what is keyed is what is applied. */
export interface UncommittedChanges {
  /** The tree's top folder. */
  top: string;
  /** Every changed path, relative to the top: tracked files changed against HEAD (staged or not, deleted too), then untracked files. */
  files: string[];
  /** `git diff HEAD --binary`: the tracked changes, applied with `git apply`. */
  diff: Buffer;
  untracked: UntrackedFile[];
  /** Untracked folders that are repositories of their own: named, not included. */
  skipped: string[];
  /** A digest of all of it: part of the kernel's cache key, so another edit is another kernel. */
  key: string;
}

/** Runs `read` with git reading a private copy of `top`'s index (see the file's header). */
async function withIndexCopy<T>(top: string, read: (env: Record<string, string>) => Promise<T>): Promise<T> {
  const index = (await git(top, ['rev-parse', '--path-format=absolute', '--git-path', 'index'])).stdout.trim();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-index-'));
  try {
    const copy = path.join(dir, 'index');
    if (await exists(index)) await copyFile(index, copy);
    return await read({ GIT_INDEX_FILE: copy, GIT_OPTIONAL_LOCKS: '0' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const nulSeparated = (text: string) => text.split('\0').filter((entry) => entry !== '');

/** The tree's top folder, or undefined for a bare repository (nothing uncommitted there). */
async function topOf(repo: string): Promise<string | undefined> {
  const inside = await git(repo, ['rev-parse', '--is-inside-work-tree'], { allowFailure: true });
  if (inside.exitCode !== 0 || inside.stdout.trim() !== 'true') return undefined;
  return (await git(repo, ['rev-parse', '--show-toplevel'])).stdout.trim();
}

/** The paths a tree has uncommitted, without reading their contents; [] for a clean tree. */
export async function uncommittedFiles(repo: string): Promise<string[]> {
  const top = await topOf(repo);
  if (!top) return [];
  return withIndexCopy(top, async (env) => {
    const tracked = await git(top, ['diff', 'HEAD', '--name-only', '--no-renames', '-z'], { env });
    const untracked = await git(top, ['ls-files', '--others', '--exclude-standard', '-z'], { env });
    return [...nulSeparated(tracked.stdout), ...nulSeparated(untracked.stdout)];
  });
}

/** What `repo`'s working tree holds beyond HEAD, or undefined when it is clean (or bare). */
export async function readUncommitted(repo: string): Promise<UncommittedChanges | undefined> {
  const top = await topOf(repo);
  if (!top) return undefined;
  const { diff, trackedFiles, untrackedPaths } = await withIndexCopy(top, async (env) => ({
    // --binary: an edited firmware blob or image applies too; --no-renames: each side is named.
    diff: await gitBytes(top, ['diff', 'HEAD', '--binary', '--no-renames', '--no-color', '--no-ext-diff', '--no-textconv'], { env }),
    trackedFiles: nulSeparated((await git(top, ['diff', 'HEAD', '--name-only', '--no-renames', '-z'], { env })).stdout),
    untrackedPaths: nulSeparated((await git(top, ['ls-files', '--others', '--exclude-standard', '-z'], { env })).stdout),
  }));
  const untracked: UntrackedFile[] = [];
  const skipped: string[] = [];
  for (const file of untrackedPaths) {
    const full = path.join(top, file);
    const info = await lstat(full);
    // A repository of its own inside the tree (git lists it as `dir/`): not this tree's change, and not copied.
    if (info.isDirectory()) {
      skipped.push(file);
      continue;
    }
    if (info.isSymbolicLink()) untracked.push({ path: file, content: Buffer.from(await readlink(full)), kind: 'symlink' });
    else untracked.push({ path: file, content: await readFile(full), kind: info.mode & 0o111 ? 'executable' : 'file' });
  }
  const files = [...trackedFiles, ...untracked.map((file) => file.path)];
  if (files.length === 0) return skipped.length > 0 ? { top, files, diff, untracked, skipped, key: '' } : undefined;
  const key = contentKey(diff, ...untracked.flatMap((file) => [file.path, file.kind, file.content]));
  return { top, files, diff, untracked, skipped, key };
}

/**
 * The changes a build of `ref` includes: a tree tested at HEAD is tested as it
 * stands, each changed file named; for another commit they are not of it, so
 * they are left out and that is said (the command line refuses it up front).
 */
export async function uncommittedFor(repo: string, ref: string, progress: Progress): Promise<UncommittedChanges | undefined> {
  if (ref !== 'HEAD') {
    const files = await uncommittedFiles(repo);
    if (files.length > 0) progress.warn(`${repo} has uncommitted changes (${files.join(', ')}): they are not of ${ref} and are not included`);
    return undefined;
  }
  const changes = await readUncommitted(repo);
  if (!changes) return undefined;
  for (const folder of changes.skipped) progress.warn(`${path.join(changes.top, folder)} is a repository of its own inside the tree: not included`);
  if (changes.files.length === 0) return undefined;
  progress.step(`including ${changes.files.length} uncommitted change(s) of ${changes.top}, after the patches: ${changes.files.join(', ')}`);
  return changes;
}
