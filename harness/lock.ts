// Several harness processes (ava runs test files in parallel, users run two
// jobs at once) share one worktree and one build directory per source tree.
// A lock file serialises them; proper-lockfile refreshes it while held and
// takes over a lock whose holder died.
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
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

const defaultLockTiming: LockTiming = { staleMs: 2 * 60_000, updateMs: 10_000 };

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
      if (await breakDeadHolder(target, timing)) continue;
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
    await writeFile(ownerFile(target), JSON.stringify(await ownerOf(process.pid)));
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

/** Who holds a lock: enough to tell, on this machine, whether that process still runs. */
interface LockOwner {
  host: string;
  pid: number;
  /** Start time in clock ticks since boot (/proc/PID/stat field 22), so a reused pid is not taken for the holder. */
  started: number | undefined;
}

const ownerFile = (target: string) => `${target}.owner`;

async function processStart(pid: number): Promise<number | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const value = Number(text?.slice(text.lastIndexOf(')') + 2).split(' ')[19]);
  return Number.isFinite(value) ? value : undefined;
}

async function ownerOf(pid: number): Promise<LockOwner> {
  return { host: os.hostname(), pid, started: await processStart(pid) };
}

/**
 * A holder killed with SIGKILL (or by the OOM killer) cannot release its lock,
 * and proper-lockfile frees it only after the stale time. When the lock has
 * not been refreshed for three refresh periods and its recorded holder, on
 * this machine, no longer runs, it is removed at once. A live holder, even a
 * stalled one, is never judged dead this way; a fresh lock whose new holder
 * has not yet written its record is too recent to be touched.
 */
async function breakDeadHolder(target: string, timing: LockTiming): Promise<boolean> {
  const lockDir = `${target}.lock`;
  const info = await stat(lockDir).catch(() => undefined);
  if (!info || Date.now() - info.mtimeMs < 3 * timing.updateMs) return false;
  const owner = await readFile(ownerFile(target), 'utf8').then(
    (text) => JSON.parse(text) as LockOwner,
    () => undefined,
  );
  if (!owner || owner.host !== os.hostname()) return false;
  const now = await processStart(owner.pid);
  if (now !== undefined && (owner.started === undefined || now === owner.started)) return false;
  await rm(lockDir, { recursive: true, force: true });
  return true;
}
