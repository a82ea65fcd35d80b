// `iommu-harness doctor`: every prerequisite of the requirement registry,
// whether KVM really runs guest code, and free disk, each with what to do.
import { readdir, stat, statfs } from 'node:fs/promises';
import path from 'node:path';
import { cacheLayout, cacheRoot, ensureDir } from '../cache.ts';
import { locate } from '../host/preflight.ts';
import { requirements } from '../host/requirements.ts';
import { chooseAccel } from '../machine/accel.ts';

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
