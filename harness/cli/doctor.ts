// `iommu-harness doctor`: every prerequisite of the requirement registry,
// which QEMU binary and version serves each machine, whether KVM really runs
// guest code, and free disk, each with what to do.
import { readdir, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { cacheLayout, cacheRoot, ensureDir } from '../cache.ts';
import { locate } from '../host/preflight.ts';
import { requirements } from '../host/requirements.ts';
import { chooseAccel } from '../machine/accel.ts';
import { iommuModels } from '../machine/machines.ts';
import { qemuBinaryFor } from '../machine/qemu-args.ts';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** false: the harness still works without it (KVM, ccache, the default source when --src is given). */
  required: boolean;
}

const minimumFreeGiB = 10;

export async function runChecks(): Promise<Check[]> {
  const checks: Check[] = [];
  for (const requirement of requirements.filter((candidate) => candidate.purpose !== 'ci')) {
    const found = await locate(requirement.name);
    checks.push({
      name: requirement.name,
      ok: found !== undefined,
      detail: found ? `${found} (${requirement.purpose})` : `missing: apt-get install ${requirement.package} (${requirement.why})`,
      required: !requirement.optional && (requirement.purpose === 'harness' || requirement.purpose === 'kernel-build'),
    });
  }
  checks.push(...(await machineQemuChecks()));
  // What `run` will do: boot a kernel under KVM (here the newest one built) or use the remembered answer.
  const kernel = await newestBuiltKernel();
  const accel = await chooseAccel('auto', process.env, kernel ? { kernel } : undefined);
  checks.push({ name: 'KVM', ok: accel.accel === 'kvm', detail: accel.accel === 'kvm' ? accel.reason : `guests run under TCG (slower): ${accel.reason}`, required: false });
  const root = await ensureDir(cacheRoot());
  const fs = await statfs(root);
  const freeGiB = (fs.bavail * fs.bsize) / 2 ** 30;
  checks.push({ name: `free disk in ${root}`, ok: freeGiB >= minimumFreeGiB, detail: `${freeGiB.toFixed(1)} GiB free (a kernel tree and build need about ${minimumFreeGiB})`, required: true });
  return checks;
}

/** How doctor finds a machine's QEMU and asks it its version; tests give their own. */
export interface QemuProbe {
  locate(name: string): Promise<string | undefined>;
  /** The first line of `BINARY --version`, or undefined when it does not answer. */
  version(binary: string): Promise<string | undefined>;
}

const hostQemuProbe: QemuProbe = {
  locate: (name) => locate(name),
  version: async (binary) => {
    const result = await execa(binary, ['--version'], { reject: false, timeout: 10_000, stdin: 'ignore' });
    return result.exitCode === 0 ? result.stdout.split('\n')[0]?.trim() || undefined : undefined;
  },
};

/**
 * One line per machine: the QEMU binary that boots it (its architecture's, found
 * on PATH as `run` starts it) and that binary's version. What a machine can show
 * is QEMU's to decide (the amd row's limits are QEMU 7.2's), so the version is
 * named per machine, not once. A machine whose QEMU is missing is a failure only
 * when that QEMU is a requirement of every run (x86's), a warning otherwise (arm64's).
 */
export async function machineQemuChecks(probe: QemuProbe = hostQemuProbe): Promise<Check[]> {
  const versions = new Map<string, Promise<string | undefined>>();
  return Promise.all(
    iommuModels.map(async (model): Promise<Check> => {
      const binary = qemuBinaryFor(model);
      const requirement = requirements.find((candidate) => candidate.name === binary);
      const required = requirement?.purpose === 'harness';
      const name = `QEMU for ${model}`;
      const found = await probe.locate(binary);
      if (!found) return { name, ok: false, required, detail: `missing ${binary}: apt-get install ${requirement?.package ?? binary}` };
      let version = versions.get(found);
      if (!version) versions.set(found, (version = probe.version(found)));
      const answer = await version;
      return { name, ok: answer !== undefined, required, detail: answer ? `${found}: ${answer.replace(/^QEMU emulator version /, 'QEMU ')}` : `${found} does not answer --version` };
    }),
  );
}

/** The bzImage of the most recently built kernel in the cache, if any. */
async function newestBuiltKernel(): Promise<string | undefined> {
  const kernels = cacheLayout().kernels;
  const names = await readdir(kernels).catch(() => [] as string[]);
  const candidates = await Promise.all(
    names.map(async (name) => {
      const file = path.join(kernels, name, 'bzImage');
      return stat(file).then((info) => ({ file, mtime: info.mtimeMs })).catch(() => undefined);
    }),
  );
  return candidates.filter((candidate) => candidate !== undefined).sort((a, b) => b.mtime - a.mtime)[0]?.file;
}

export function renderChecks(checks: Check[]): string {
  return `${checks.map((check) => `${check.ok ? 'ok  ' : check.required ? 'FAIL' : 'warn'}  ${check.name}: ${check.detail}`).join('\n')}\n`;
}
