// What a dead harness left behind, found and cleaned at the next start.
// QEMU itself dies with the harness (it runs under a parent-death signal), but
// a harness killed with -9 or by the OOM killer cannot remove its private
// socket folder, and a QEMU started by an older harness (or one whose
// parent-death signal never fired) may still run. Each machine's private
// folder records who owns it, so a later start can tell the dead from the live.
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Private folders of machines are `iommu-harness-*` in the temp dir; this file names their owner. */
export const machineDirPrefix = 'iommu-harness-';
const ownerFile = 'owner.json';
/** QEMU writes its own pid here (-pidfile), so it can be found even when the harness died before learning it. */
export const qemuPidFile = 'qemu.pid';

interface Owner {
  /** The harness process that started the machine. */
  pid: number;
  /** Its start time in clock ticks since boot (/proc/PID/stat field 22), so a reused pid is not taken for it. */
  started?: number;
}

async function processStart(pid: number): Promise<number | undefined> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!stat) return undefined;
  // The command name may hold spaces and parentheses: fields start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const value = Number(fields[19]);
  return Number.isFinite(value) ? value : undefined;
}

async function isAlive(owner: Owner): Promise<boolean> {
  const started = await processStart(owner.pid);
  if (started === undefined) return false;
  return owner.started === undefined || owner.started === started;
}

/** Marks a machine's private folder as this process's. */
export async function claimMachineDir(dir: string): Promise<void> {
  const started = await processStart(process.pid);
  const owner: Owner = { pid: process.pid, ...(started !== undefined ? { started } : {}) };
  await writeFile(path.join(dir, ownerFile), `${JSON.stringify(owner)}\n`, { mode: 0o600 });
}

/** The QEMU of a dead run, if it still runs: killed only when its command line names that run's folder. */
async function killOrphanQemu(dir: string): Promise<number | undefined> {
  const pid = Number((await readFile(path.join(dir, qemuPidFile), 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!cmdline.includes('qemu-system') || !cmdline.includes(dir)) return undefined;
  try {
    process.kill(pid, 'SIGKILL');
    return pid;
  } catch {
    return undefined;
  }
}

/**
 * Kills the QEMU and removes the private folder of every machine whose harness
 * is gone. Returns one line per thing cleaned, for the user to read.
 */
export async function sweepDeadMachines(tmpdir: string = os.tmpdir()): Promise<string[]> {
  const cleaned: string[] = [];
  const names = await readdir(tmpdir).catch(() => [] as string[]);
  for (const name of names.filter((candidate) => candidate.startsWith(machineDirPrefix))) {
    const dir = path.join(tmpdir, name);
    const text = await readFile(path.join(dir, ownerFile), 'utf8').catch(() => undefined);
    // A folder without an owner file is being set up right now, or is not ours.
    if (text === undefined) continue;
    let owner: Owner;
    try {
      owner = JSON.parse(text) as Owner;
    } catch {
      continue;
    }
    if (await isAlive(owner)) continue;
    const killed = await killOrphanQemu(dir);
    if (killed) cleaned.push(`killed QEMU ${killed} of dead run ${owner.pid}`);
    await rm(dir, { recursive: true, force: true });
    cleaned.push(`removed ${dir} of dead run ${owner.pid}`);
  }
  return cleaned;
}

/** `NAME.tmp-PID` staging entries (kernels, images) whose writer is dead: removed. */
export async function sweepStaging(dirs: string[]): Promise<string[]> {
  const cleaned: string[] = [];
  for (const dir of dirs) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const pid = Number(/\.tmp-(\d+)$/.exec(name)?.[1]);
      if (!pid || (await processStart(pid)) !== undefined) continue;
      await rm(path.join(dir, name), { recursive: true, force: true });
      cleaned.push(`removed ${path.join(dir, name)} of dead run ${pid}`);
    }
  }
  return cleaned;
}
