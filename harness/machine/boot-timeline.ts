// Where a boot's seconds go, for the benchmark and for anyone asking why a
// boot is slow. The host knows when QEMU started, when the console's first
// byte arrived and when SSH answered; the kernel's own timestamps tell when it
// ran /init and when /init said the guest is ready. Pure: it reads numbers and
// console text.

export interface BootTimeline {
  /** QEMU start to the console's first byte: QEMU itself, firmware, option ROMs, kernel decompression. */
  qemuToConsoleSeconds?: number;
  /** Kernel start to `Run /init` (kernel clock). */
  kernelToInitSeconds?: number;
  /** /init started to its "guest ready" line (kernel clock): mounts, network, sshd start. */
  initToReadySeconds?: number;
  /** "guest ready" to an SSH session the harness can use (host clock, estimated from the kernel clock). */
  readyToSshSeconds?: number;
  /** QEMU start to an SSH session: the whole boot. */
  totalSeconds: number;
}

/** The kernel timestamp (seconds) of the first console line matching `pattern`. */
export function kernelTime(console: string, pattern: RegExp): number | undefined {
  for (const line of console.split('\n')) {
    if (!pattern.test(line)) continue;
    const stamp = /^\[\s*(\d+\.\d+)\]/.exec(line);
    if (stamp?.[1]) return Number(stamp[1]);
  }
  return undefined;
}

/**
 * `firstByteMs` and `sshMs` are host milliseconds since QEMU started. The
 * kernel clock starts a little after the first console byte (firmware prints
 * nothing on the serial port here), so the host time of "guest ready" is
 * taken as first byte + its kernel timestamp.
 */
export function bootTimeline(console: string, firstByteMs: number | undefined, sshMs: number): BootTimeline {
  const init = kernelTime(console, /Run \/init as init process/);
  const ready = kernelTime(console, /iommu-harness: guest ready/);
  const round = (value: number) => Math.round(value * 1000) / 1000;
  const timeline: BootTimeline = { totalSeconds: round(sshMs / 1000) };
  if (firstByteMs !== undefined) timeline.qemuToConsoleSeconds = round(firstByteMs / 1000);
  if (init !== undefined) timeline.kernelToInitSeconds = round(init);
  if (init !== undefined && ready !== undefined) timeline.initToReadySeconds = round(ready - init);
  if (ready !== undefined && firstByteMs !== undefined) timeline.readyToSshSeconds = round(Math.max(0, sshMs - firstByteMs - ready * 1000) / 1000);
  return timeline;
}
