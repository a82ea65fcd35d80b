// KVM when the machine really has it, TCG otherwise. /dev/kvm can exist and
// open while creating a VM still fails (nested setups), so ask QEMU itself.
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { execa } from 'execa';
import type { Accel } from './qemu-args.ts';

export interface AccelChoice {
  accel: Accel;
  /** Why, for the output: "KVM usable" or the reason it is not. */
  reason: string;
}

let probe: Promise<AccelChoice> | undefined;

export function chooseAccel(requested: Accel | 'auto' = 'auto'): Promise<AccelChoice> {
  if (requested !== 'auto') return Promise.resolve({ accel: requested, reason: `--accel ${requested}` });
  probe ??= probeKvm();
  return probe;
}

async function probeKvm(): Promise<AccelChoice> {
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return { accel: 'tcg', reason: '/dev/kvm is missing or not accessible' };
  }
  // A paused q35 machine with KVM: still alive after a moment means KVM works.
  const child = execa(
    'qemu-system-x86_64',
    ['-machine', 'q35,accel=kvm', '-cpu', 'host', '-nodefaults', '-display', 'none', '-S', '-monitor', 'none'],
    { reject: false, timeout: 10_000 },
  );
  const early = await Promise.race([child, new Promise((resolve) => setTimeout(resolve, 1500, undefined))]);
  if (early === undefined) {
    child.kill('SIGKILL');
    await child;
    return { accel: 'kvm', reason: 'KVM usable' };
  }
  const stderr = (early as { stderr?: string }).stderr ?? '';
  return { accel: 'tcg', reason: `KVM not usable: ${stderr.split('\n').find((line) => !/warning/.test(line)) ?? 'QEMU exited'}` };
}
