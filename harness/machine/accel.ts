// KVM only when a Linux kernel has provably run under it, TCG otherwise.
// /dev/kvm can open and a paused VM can stay up while the guest never runs an
// instruction (half-working nested virtualisation on cloud runners), creating
// the VM can fail outright ("failed to set MSR 0x10a"), and on a kvm-pvm host
// QEMU's firmware prints under KVM in 0.1 s while a kernel never prints a byte
// (its page-table-based nested hypervisor runs only guests built for it). So
// firmware output proves nothing: the probe boots the very kernel the run is
// about to boot, without an initramfs, and waits for its first console line.
// The answer is remembered in the cache for this host boot, this QEMU binary
// and this kernel image: a reboot, a new QEMU or a new build asks again.
import { createHash } from 'node:crypto';
import { constants, mkdirSync, writeFileSync } from 'node:fs';
import { access, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { cacheLayout, type CacheLayout } from '../cache.ts';
import { HarnessError } from '../errors.ts';
import { locate } from '../host/preflight.ts';
import { claimMachineDir, machineDirPrefix } from './leftovers.ts';
import { qbootFirmware, type Accel } from './qemu-args.ts';
import { qemuBinary, qemuCommand } from './qemu-command.ts';

export type AccelRequest = Accel | 'auto';

export interface AccelChoice {
  accel: Accel;
  /** Why, for the output and the JSON: "KVM ran this kernel (first console line in 0.4 s)", or why not. */
  reason: string;
  /** Chosen by the probe rather than asked for: a KVM boot that stays silent may then fall back to TCG. */
  automatic: boolean;
}

/** What the probe boots and where its answer is remembered. */
export interface KvmProbeSubject {
  /** The bzImage the run will boot. */
  kernel: string;
  layout?: CacheLayout;
}

/** Forces the accelerator for tests and CI: auto, kvm or tcg. `--accel` other than auto wins over it. */
export const accelEnvVariable = 'IOMMU_HARNESS_ACCEL';

/**
 * How long a kernel may take to print its first line under KVM. Under KVM
 * with qboot it prints within half a second; the margin is for a loaded host.
 */
const probeDeadlineMs = 5000;

/** The kernel's very first console line: `Linux version 6.12.57 (...)`, printed by start_kernel(). */
const kernelFirstLine = /Linux version \d/;

const probes = new Map<string, Promise<AccelChoice>>();
let demoted: AccelChoice | undefined;
/** The remembered answer the last probe of this process read or wrote: a silent KVM boot overwrites it. */
let lastProbeFile: string | undefined;

/** The accelerator IOMMU_HARNESS_ACCEL asks for; a value other than auto, kvm or tcg is a usage error. */
export function requestFromEnv(env: NodeJS.ProcessEnv = process.env): AccelRequest {
  const value = env[accelEnvVariable];
  if (value === undefined || value === '') return 'auto';
  if (value === 'auto' || value === 'kvm' || value === 'tcg') return value;
  throw new HarnessError('usage', `${accelEnvVariable}=${value}: expected auto, kvm or tcg`);
}

/**
 * The accelerator for booting `subject.kernel`. Without a subject (a caller
 * with no kernel at hand) the answer is TCG unless a kernel has already run
 * under KVM on this host boot and QEMU: nothing else proves KVM.
 */
export function chooseAccel(requested: AccelRequest = 'auto', env: NodeJS.ProcessEnv = process.env, subject?: KvmProbeSubject): Promise<AccelChoice> {
  if (requested !== 'auto') return Promise.resolve({ accel: requested, reason: `--accel ${requested}`, automatic: false });
  const fromEnv = requestFromEnv(env);
  if (fromEnv !== 'auto') return Promise.resolve({ accel: fromEnv, reason: `${accelEnvVariable}=${fromEnv}`, automatic: false });
  if (demoted) return Promise.resolve(demoted);
  const key = subject?.kernel ?? '';
  let probe = probes.get(key);
  if (!probe) {
    probe = subject ? rememberedOrProbed(subject) : rememberedForHost(cacheLayout());
    probes.set(key, probe);
  }
  return probe;
}

/**
 * A KVM boot chosen by the probe printed nothing: every later boot of this
 * process uses TCG, the reason says so, and the remembered answer becomes TCG
 * so the next process does not spend a KVM boot to learn it again.
 */
export function demoteToTcg(why: string): AccelChoice {
  demoted = { accel: 'tcg', reason: `KVM passed the probe but ${why}; fell back to TCG`, automatic: true };
  if (lastProbeFile) writeRemembered(lastProbeFile, demoted);
  return demoted;
}

/** What the remembered answer is keyed by: each part changing means KVM must be asked again. */
export interface ProbeIdentity {
  /** /proc/sys/kernel/random/boot_id: a new host boot may load another KVM module. */
  hostBoot: string;
  /** The QEMU binary's path, size and modification time. */
  qemu: string;
  /** The kernel image's path, size and modification time. */
  kernel: string;
}

export function probeKey(identity: ProbeIdentity): string {
  return createHash('sha256').update(JSON.stringify([identity.hostBoot, identity.qemu, identity.kernel])).digest('hex').slice(0, 24);
}

/** The folder of remembered answers; a file per key, plus the host-wide part of the key in its name. */
function probeDir(layout: CacheLayout): string {
  return path.join(layout.root, 'accel');
}

async function fileIdentity(file: string): Promise<string> {
  const info = await stat(file);
  return `${path.resolve(file)}:${info.size}:${Math.round(info.mtimeMs)}`;
}

async function hostIdentity(): Promise<{ hostBoot: string; qemu: string }> {
  const hostBoot = (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => 'unknown')).trim();
  const binary = await locate(qemuBinary);
  return { hostBoot, qemu: binary ? await fileIdentity(binary).catch(() => binary) : 'missing' };
}

/** The host-wide part of a remembered answer's file name, so a caller without a kernel can find this host's answers. */
function hostPrefix(host: { hostBoot: string; qemu: string }): string {
  return createHash('sha256').update(JSON.stringify([host.hostBoot, host.qemu])).digest('hex').slice(0, 12);
}

interface Remembered extends AccelChoice {
  probedAt: string;
}

function writeRemembered(file: string, choice: AccelChoice): void {
  try {
    mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileSync(file, `${JSON.stringify({ ...choice, probedAt: new Date().toISOString() } satisfies Remembered)}\n`);
  } catch {
    // Only a cache: the next process probes again.
  }
}

async function readRemembered(file: string): Promise<Remembered | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Remembered;
    return parsed.accel === 'kvm' || parsed.accel === 'tcg' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

function remembering(choice: Remembered): AccelChoice {
  return { accel: choice.accel, reason: `${choice.reason}; remembered from ${choice.probedAt}`, automatic: true };
}

async function rememberedOrProbed(subject: KvmProbeSubject): Promise<AccelChoice> {
  const layout = subject.layout ?? cacheLayout();
  const host = await hostIdentity();
  const kernel = await fileIdentity(subject.kernel);
  const file = path.join(probeDir(layout), `kvm-${hostPrefix(host)}-${probeKey({ ...host, kernel })}.json`);
  lastProbeFile = file;
  const known = await readRemembered(file);
  if (known) return remembering(known);
  const choice = await probeKvm(subject.kernel);
  writeRemembered(file, choice);
  return choice;
}

/** Without a kernel: this host boot's and QEMU's newest remembered answer, if any kernel was probed. */
async function rememberedForHost(layout: CacheLayout): Promise<AccelChoice> {
  const prefix = `kvm-${hostPrefix(await hostIdentity())}-`;
  const names = (await readdir(probeDir(layout)).catch(() => [] as string[])).filter((name) => name.startsWith(prefix));
  const answers = (await Promise.all(names.map((name) => readRemembered(path.join(probeDir(layout), name))))).filter((answer) => answer !== undefined);
  const newest = answers.sort((a, b) => b.probedAt.localeCompare(a.probedAt))[0];
  if (newest) return remembering(newest);
  return { accel: 'tcg', reason: 'KVM not yet tried: no kernel has been booted under it on this host boot and QEMU; a run boots its kernel under KVM once to find out', automatic: true };
}

/** A QEMU exit message's first line that is not a warning. */
function firstError(stderr: string): string {
  return stderr.split('\n').find((line) => line.trim() && !/warning/i.test(line))?.trim() ?? 'QEMU exited';
}

async function probeKvm(kernel: string): Promise<AccelChoice> {
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { accel: 'tcg', reason: 'KVM not usable: /dev/kvm is missing or not accessible', automatic: true };
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), `${machineDirPrefix}kvm-probe-`));
  await claimMachineDir(dir);
  const consoleLog = path.join(dir, 'console.log');
  const started = Date.now();
  // The machine the run boots (q35, split irqchip, -cpu host, qboot), without
  // the devices: the kernel's first line comes long before it looks for them.
  const { file, args } = qemuCommand([
    ...['-machine', 'q35,accel=kvm,kernel-irqchip=split', '-cpu', 'host', '-m', '256', '-smp', '1', '-nodefaults', '-display', 'none', '-no-reboot'],
    ...['-bios', qbootFirmware, '-kernel', kernel, '-append', 'console=ttyS0 earlyprintk=serial panic=-1'],
    ...['-monitor', 'none', '-chardev', `file,id=console,path=${consoleLog.replaceAll(',', ',,')}`, '-serial', 'chardev:console'],
  ]);
  const child = execa(file, args, { reject: false, stdin: 'ignore', timeout: probeDeadlineMs + 5000, cleanup: true });
  let exited = false;
  void child.then(() => (exited = true));
  try {
    while (Date.now() - started < probeDeadlineMs) {
      const output = await readFile(consoleLog, 'utf8').catch(() => '');
      if (kernelFirstLine.test(output)) {
        return { accel: 'kvm', reason: `KVM ran this kernel (its first console line in ${((Date.now() - started) / 1000).toFixed(1)} s)`, automatic: true };
      }
      if (exited) {
        const result = await child;
        return { accel: 'tcg', reason: `KVM not usable: ${firstError(String(result.stderr ?? ''))}`, automatic: true };
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return { accel: 'tcg', reason: `KVM not usable: the kernel printed nothing under KVM within ${probeDeadlineMs / 1000} s (firmware may run there; a kernel does not)`, automatic: true };
  } finally {
    child.kill('SIGKILL');
    await child;
    await rm(dir, { recursive: true, force: true });
  }
}
