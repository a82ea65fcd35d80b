// KVM only when a guest has provably executed under it, TCG otherwise.
// /dev/kvm can open and a paused VM can stay up while the guest never runs an
// instruction (half-working nested virtualisation on cloud runners), or
// creating the VM can fail outright ("failed to set MSR 0x10a"). So the probe
// boots QEMU's own firmware under KVM and waits for SeaBIOS to print on the
// debug console: output there means guest code ran.
import { constants } from 'node:fs';
import { access, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { HarnessError } from '../errors.ts';
import { claimMachineDir, machineDirPrefix } from './leftovers.ts';
import type { Accel } from './qemu-args.ts';
import { qemuCommand } from './qemu-command.ts';

export type AccelRequest = Accel | 'auto';

export interface AccelChoice {
  accel: Accel;
  /** Why, for the output and the JSON: "KVM ran guest code in 0.4 s", or why not. */
  reason: string;
  /** Chosen by the probe rather than asked for: a KVM boot that stays silent may then fall back to TCG. */
  automatic: boolean;
}

/** Forces the accelerator for tests and CI: auto, kvm or tcg. `--accel` other than auto wins over it. */
export const accelEnvVariable = 'IOMMU_HARNESS_ACCEL';

/** How long firmware may take to print under KVM before the probe gives up on it. */
const probeDeadlineMs = 3000;

let probe: Promise<AccelChoice> | undefined;
let demoted: AccelChoice | undefined;

/** The accelerator IOMMU_HARNESS_ACCEL asks for; a value other than auto, kvm or tcg is a usage error. */
export function requestFromEnv(env: NodeJS.ProcessEnv = process.env): AccelRequest {
  const value = env[accelEnvVariable];
  if (value === undefined || value === '') return 'auto';
  if (value === 'auto' || value === 'kvm' || value === 'tcg') return value;
  throw new HarnessError('usage', `${accelEnvVariable}=${value}: expected auto, kvm or tcg`);
}

export function chooseAccel(requested: AccelRequest = 'auto', env: NodeJS.ProcessEnv = process.env): Promise<AccelChoice> {
  if (requested !== 'auto') return Promise.resolve({ accel: requested, reason: `--accel ${requested}`, automatic: false });
  const fromEnv = requestFromEnv(env);
  if (fromEnv !== 'auto') return Promise.resolve({ accel: fromEnv, reason: `${accelEnvVariable}=${fromEnv}`, automatic: false });
  if (demoted) return Promise.resolve(demoted);
  probe ??= probeKvm();
  return probe;
}

/**
 * A KVM boot chosen by the probe printed nothing: every later boot of this
 * process uses TCG, and the reason says so.
 */
export function demoteToTcg(why: string): AccelChoice {
  demoted = { accel: 'tcg', reason: `KVM passed the probe but ${why}; fell back to TCG`, automatic: true };
  return demoted;
}

/** A QEMU exit message's first line that is not a warning. */
function firstError(stderr: string): string {
  return stderr.split('\n').find((line) => line.trim() && !/warning/i.test(line))?.trim() ?? 'QEMU exited';
}

async function probeKvm(): Promise<AccelChoice> {
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { accel: 'tcg', reason: '/dev/kvm is missing or not accessible', automatic: true };
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), `${machineDirPrefix}kvm-probe-`));
  await claimMachineDir(dir);
  const firmwareLog = path.join(dir, 'firmware.log');
  const started = Date.now();
  const { file, args } = qemuCommand([
    ...['-machine', 'q35,accel=kvm', '-cpu', 'host', '-m', '64', '-nodefaults', '-display', 'none', '-no-reboot'],
    ...['-monitor', 'none', '-serial', 'none'],
    // SeaBIOS writes its banner to the debug console at port 0x402.
    ...['-debugcon', `file:${firmwareLog}`, '-global', 'isa-debugcon.iobase=0x402'],
  ]);
  const child = execa(file, args, { reject: false, stdin: 'ignore', timeout: probeDeadlineMs + 5000, cleanup: true });
  let exited = false;
  void child.then(() => (exited = true));
  try {
    while (Date.now() - started < probeDeadlineMs) {
      const output = await readFile(firmwareLog, 'utf8').catch(() => '');
      if (output.includes('SeaBIOS')) {
        return { accel: 'kvm', reason: `KVM ran guest code (firmware printed in ${((Date.now() - started) / 1000).toFixed(1)} s)`, automatic: true };
      }
      if (exited) {
        const result = await child;
        return { accel: 'tcg', reason: `KVM not usable: ${firstError(String(result.stderr ?? ''))}`, automatic: true };
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return { accel: 'tcg', reason: `KVM not usable: a KVM guest ran no code within ${probeDeadlineMs / 1000} s (no firmware output)`, automatic: true };
  } finally {
    child.kill('SIGKILL');
    await child;
    await rm(dir, { recursive: true, force: true });
  }
}
