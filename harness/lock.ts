// Several harness processes (ava runs test files in parallel, users run two
// jobs at once) share one worktree and one build directory per source tree.
// A lock file serialises them; proper-lockfile refreshes it while held and
// takes over a lock whose holder died.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import lockfile from 'proper-lockfile';
import { ensureDir } from './cache.ts';
import { describeError, HarnessError } from './errors.ts';

export interface LockTiming {
  /**
   * A lock not refreshed for this long is taken over by a waiter. Generous, so
   * a holder that was only stalled (a suspended laptop, a swapping machine)
   * keeps it; a killed holder's lock is free after this long.
   */
  staleMs: number;
  /** How often the holder refreshes it. */
  updateMs: number;
}

export const defaultLockTiming: LockTiming = { staleMs: 2 * 60_000, updateMs: 10_000 };

/**
 * Runs `work` holding the lock `name`. When the lock is lost while held (a
 * refresh stalled past the stale time and a waiter took it over), `signal`
 * aborts, so work that passes it on stops its make or git, and the call ends
 * in a HarnessError instead of proper-lockfile's default: an uncaught throw.
 */
export async function withLock<T>(
  lockDir: string,
  name: string,
  timeoutMs: number,
  work: (signal: AbortSignal) => Promise<T>,
  timing: LockTiming = defaultLockTiming,
): Promise<T> {
  await ensureDir(lockDir);
  const target = path.join(lockDir, `${name}.lock-target`);
  await writeFile(target, '', { flag: 'a' });
  const deadline = Date.now() + timeoutMs;
  const lost = new AbortController();
  let release: (() => Promise<void>) | undefined;
  while (!release) {
    try {
      release = await lockfile.lock(target, {
        stale: timing.staleMs,
        update: timing.updateMs,
        onCompromised: (error) => lost.abort(error),
      });
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
  const lostError = () =>
    new HarnessError('setup', `lost the lock on ${name} while holding it (${describeError(lost.signal.reason)}); another process may have taken it over: run again`, {
      logPath: target,
    });
  let result: T;
  try {
    result = await work(lost.signal);
  } catch (error) {
    if (lost.signal.aborted) throw lostError();
    throw error;
  } finally {
    // A compromised lock is already released; releasing it again throws ERELEASED.
    if (!lost.signal.aborted) await release();
  }
  if (lost.signal.aborted) throw lostError();
  return result;
}
