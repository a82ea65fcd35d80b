// Several harness processes (ava runs test files in parallel, users run two
// jobs at once) share one worktree and one build directory per source tree.
// A lock file serialises them; proper-lockfile refreshes it while held and
// takes over a lock whose holder died.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { ensureDir } from './cache.ts';
import { HarnessError } from './errors.ts';

export async function withLock<T>(
  lockDir: string,
  name: string,
  timeoutMs: number,
  work: () => Promise<T>,
): Promise<T> {
  await ensureDir(lockDir);
  const target = path.join(lockDir, `${name}.lock-target`);
  await writeFile(target, '', { flag: 'a' });
  const deadline = Date.now() + timeoutMs;
  let release: (() => Promise<void>) | undefined;
  while (!release) {
    try {
      release = await lockfile.lock(target, { stale: 30_000, update: 10_000 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error;
      if (Date.now() > deadline) {
        throw new HarnessError('setup', `timed out after ${Math.round(timeoutMs / 1000)} s waiting for the lock on ${name}`, {
          logPath: target,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
  try {
    return await work();
  } finally {
    await release();
  }
}
