// `iommu-harness doctor`: every prerequisite, checked, with what to do about each.
import { constants } from 'node:fs';
import { access, statfs } from 'node:fs/promises';
import { execa } from 'execa';
import { cacheRoot, ensureDir } from '../cache.ts';
import { chooseAccel } from '../machine/accel.ts';
import { findDebianTarball } from '../source/debian-source.ts';

export interface Check {
  name: string;
  ok: boolean;
  detail: string;
  /** false: the harness still works without it (e.g. KVM, ccache). */
  required: boolean;
}

const tools: { command: string; args: string[]; package: string; required: boolean }[] = [
  { command: 'qemu-system-x86_64', args: ['--version'], package: 'qemu-system-x86', required: true },
  { command: 'busybox', args: ['--help'], package: 'busybox-static', required: true },
  { command: 'dropbear', args: ['-V'], package: 'dropbear-bin', required: true },
  { command: 'dropbearkey', args: ['-h'], package: 'dropbear-bin', required: true },
  { command: 'gcc', args: ['--version'], package: 'gcc', required: true },
  { command: 'make', args: ['--version'], package: 'make', required: true },
  { command: 'flex', args: ['--version'], package: 'flex', required: true },
  { command: 'bison', args: ['--version'], package: 'bison', required: true },
  { command: 'bc', args: ['--version'], package: 'bc', required: true },
  { command: 'git', args: ['--version'], package: 'git', required: true },
  { command: 'xz', args: ['--version'], package: 'xz-utils', required: true },
  { command: 'ldd', args: ['--version'], package: 'libc-bin', required: true },
  { command: 'ccache', args: ['--version'], package: 'ccache', required: false },
  { command: 'addr2line', args: ['--version'], package: 'binutils', required: false },
];

const minimumFreeGiB = 10;

export async function runChecks(): Promise<Check[]> {
  const checks: Check[] = [];
  for (const tool of tools) {
    // A spawn failure (not installed) has no exit code; any exit code means it ran.
    const result = await execa(tool.command, tool.args, { reject: false, timeout: 10_000 });
    const found = result.exitCode !== undefined;
    checks.push({ name: tool.command, ok: Boolean(found), detail: found ? 'found' : `missing: apt-get install ${tool.package}`, required: tool.required });
  }
  for (const header of ['/usr/include/libelf.h', '/usr/include/openssl/ssl.h']) {
    const ok = await access(header).then(() => true, () => false);
    checks.push({ name: header, ok, detail: ok ? 'found' : `missing: apt-get install ${header.includes('elf') ? 'libelf-dev' : 'libssl-dev'}`, required: true });
  }
  const tarball = await findDebianTarball().then((file) => file, () => undefined);
  checks.push({ name: 'linux-source-6.12', ok: Boolean(tarball), detail: tarball ?? 'missing: apt-get install linux-source-6.12 (needed only without --src)', required: false });
  const kvmAccess = await access('/dev/kvm', constants.R_OK | constants.W_OK).then(() => true, () => false);
  const accel = await chooseAccel('auto');
  checks.push({ name: '/dev/kvm', ok: accel.accel === 'kvm', detail: kvmAccess ? accel.reason : 'absent or not accessible: guests run under TCG (slower)', required: false });
  const root = await ensureDir(cacheRoot());
  const fs = await statfs(root);
  const freeGiB = (fs.bavail * fs.bsize) / 2 ** 30;
  checks.push({ name: `free disk in ${root}`, ok: freeGiB >= minimumFreeGiB, detail: `${freeGiB.toFixed(1)} GiB free (a kernel tree and build need about ${minimumFreeGiB})`, required: true });
  return checks;
}

export function renderChecks(checks: Check[]): string {
  return `${checks.map((check) => `${check.ok ? 'ok  ' : check.required ? 'FAIL' : 'warn'}  ${check.name}: ${check.detail}`).join('\n')}\n`;
}
