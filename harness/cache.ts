// Where the harness keeps what it can reuse between runs (kernel sources,
// build directories, built kernels, guest images, keys) and what one run writes.
import { createHash } from 'node:crypto';
import { chmod, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describeError, HarnessError } from './errors.ts';

/** The cache root: $IOMMU_HARNESS_CACHE, else $XDG_CACHE_HOME/iommu-harness, else ~/.cache/iommu-harness. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.IOMMU_HARNESS_CACHE) return path.resolve(env.IOMMU_HARNESS_CACHE);
  const xdg = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(xdg, 'iommu-harness');
}

export interface CacheLayout {
  root: string;
  /** Kernel trees the harness made itself (the Debian source, unpacked and committed). */
  sources: string;
  /** Long-lived git worktrees where patches are applied; one per source repository. */
  worktrees: string;
  /** Out-of-tree build directories; one per worktree and config, reused so rebuilds are incremental. */
  builds: string;
  /** Finished kernels (bzImage, vmlinux, .config, uapi headers, build log), keyed by content. */
  kernels: string;
  /** Guest initramfs images, keyed by content. */
  images: string;
  /** Keys created once per installation. */
  keys: string;
  /** Lock files that serialise users of a worktree or build directory. */
  locks: string;
  /** One directory per run: console logs, dmesg, QMP socket, results. */
  runs: string;
}

export function cacheLayout(root: string = cacheRoot()): CacheLayout {
  return {
    root,
    sources: path.join(root, 'sources'),
    worktrees: path.join(root, 'worktrees'),
    builds: path.join(root, 'builds'),
    kernels: path.join(root, 'kernels'),
    images: path.join(root, 'images'),
    keys: path.join(root, 'keys'),
    locks: path.join(root, 'locks'),
    runs: path.join(root, 'runs'),
  };
}

/** The cache's folders are the user's alone: they hold private keys and images that carry the guest's host key. */
export const privateDirMode = 0o700;

/**
 * Creates the cache root and its folders private to the user, and makes
 * private those an older version left world-readable. Called before any work,
 * so an unusable cache (read-only, full, a file in the way) is said at once.
 */
export async function prepareCache(layout: CacheLayout): Promise<void> {
  const dirs = [layout.root, ...Object.entries(layout).filter(([name]) => name !== 'root').map(([, dir]) => dir)];
  try {
    for (const dir of dirs) {
      await mkdir(dir, { recursive: true, mode: privateDirMode });
      await chmod(dir, privateDirMode);
    }
  } catch (error) {
    throw new HarnessError('host', `the cache ${layout.root} is not usable: ${describeError(error)} (set IOMMU_HARNESS_CACHE to a writable folder)`, {
      cause: error,
    });
  }
}

export async function ensureDir(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  return dir;
}

/** A short content hash of the given parts, for cache keys. */
export function contentKey(...parts: (string | Buffer)[]): string {
  const hash = createHash('sha256');
  for (const part of parts) {
    hash.update(String(part.length));
    hash.update(':');
    hash.update(part);
  }
  return hash.digest('hex').slice(0, 16);
}
