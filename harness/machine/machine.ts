// One QEMU guest from start to reaping: boot, QMP, SSH, console.
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { HarnessError } from '../errors.ts';
import type { Progress } from '../log.ts';
import { demoteToTcg } from './accel.ts';
import { bootTimeline, type BootTimeline } from './boot-timeline.ts';
import { claimMachineDir, machineDirPrefix, qemuPidFile } from './leftovers.ts';
import { qemuCommand } from './qemu-command.ts';
import { QmpClient } from './qmp.ts';
import { hostTscKhz, parseForwardedPort, qemuArgs, qemuBinaryFor, type Accel } from './qemu-args.ts';
import { register, removeQuietly } from './reaper.ts';
import { GuestShell } from './ssh.ts';
import type { IommuModel, Topology } from './topology.ts';

export interface BootOptions {
  iommu: IommuModel;
  accel: Accel;
  /** The accelerator came from the probe, not from the user: a silent KVM boot may fall back to TCG. */
  accelAutomatic?: boolean;
  bzImage: string;
  initrd: string;
  topology: Topology;
  /** Where console.log and qemu.log are written; kept after the run. */
  runDir: string;
  privateKey: string;
  hostKeyBlob: Buffer;
  bootTimeoutMs: number;
  progress: Progress;
  /** QEMU's gdbstub on this 127.0.0.1 port (`shell --gdb`). */
  gdbPort?: number;
}

/** What images/init.sh writes to the kernel log right before it starts sshd. */
const guestReadyLine = 'iommu-harness: guest ready';
/** A KVM guest that printed nothing within this long is taken as not running. */
const kvmSilenceMs = 10_000;
/** The boot timeout a TCG retry gets at least: TCG boots are several times slower. */
const tcgBootTimeoutMs = 180_000;

/** A KVM boot whose guest never printed: KVM does not really run guests here. */
class SilentKvmBoot extends Error {}

async function firstLine(file: string): Promise<string | undefined> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').find((line) => line.trim() && !/warning/i.test(line))?.trim();
}

export class Machine {
  readonly consoleLog: string;
  readonly qemuLog: string;
  private stopped = false;
  private readonly unregister: () => void;
  private exitInfo: string | undefined;

  private constructor(
    readonly options: BootOptions,
    private readonly child: ResultPromise,
    private readonly socketDir: string,
    readonly qmp: QmpClient,
    public shell: GuestShell,
    readonly sshPort: number,
    /** Where the boot's seconds went, QEMU start to SSH. */
    readonly bootTimeline: BootTimeline,
    unregister: () => void,
  ) {
    this.consoleLog = path.join(options.runDir, 'console.log');
    this.qemuLog = path.join(options.runDir, 'qemu.log');
    this.unregister = unregister;
    void child.then((result) => {
      this.exitInfo = result.signal ? `signal ${result.signal}` : `exit code ${result.exitCode}`;
    });
  }

  /**
   * Starts QEMU and waits until the guest answers SSH. A KVM boot the probe
   * chose that prints nothing (or whose QEMU dies before printing) is retried
   * once on TCG, and every later boot of the process uses TCG.
   */
  static async boot(options: BootOptions): Promise<Machine> {
    const kvmChosenByProbe = options.accel === 'kvm' && options.accelAutomatic === true;
    try {
      return await Machine.bootWith(options, kvmChosenByProbe ? kvmSilenceMs : undefined);
    } catch (error) {
      if (!(error instanceof SilentKvmBoot)) throw error;
      const choice = demoteToTcg(error.message);
      options.progress.warn(`${options.iommu}: ${choice.reason}; retrying this boot on TCG`);
      return Machine.bootWith({ ...options, accel: 'tcg', accelAutomatic: true, bootTimeoutMs: Math.max(options.bootTimeoutMs, tcgBootTimeoutMs) }, undefined);
    }
  }

  private static async bootWith(options: BootOptions, silenceLimitMs: number | undefined): Promise<Machine> {
    const started = Date.now();
    const consoleLog = path.join(options.runDir, 'console.log');
    const qemuLog = path.join(options.runDir, 'qemu.log');
    // A unix socket path has a 108-byte limit, so it lives in a short private temp dir,
    // marked as this process's so a later start can clean it if this process is killed.
    const socketDir = await mkdtemp(path.join(os.tmpdir(), machineDirPrefix));
    await claimMachineDir(socketDir);
    const qmpSocket = path.join(socketDir, 'qmp.sock');
    const tscKhz = hostTscKhz(await readFile('/proc/cpuinfo', 'utf8').catch(() => ''));
    const args = [...qemuArgs({ ...options, kernel: options.bzImage, consoleLog, qmpSocket, ...(tscKhz ? { tscKhz } : {}) }), '-pidfile', path.join(socketDir, qemuPidFile)];
    const command = qemuCommand(args, qemuBinaryFor(options.iommu));
    const child = execa(command.file, command.args, {
      reject: false,
      stdin: 'ignore',
      stdout: { file: qemuLog },
      stderr: { file: qemuLog },
      // execa kills the child if this process exits; the parent-death signal covers kill -9.
      cleanup: true,
    });
    let exited = false;
    void child.then(() => (exited = true));
    const unregister = register({
      reap: () => {
        child.kill('SIGKILL');
        removeQuietly(socketDir);
      },
    });
    const deadline = started + options.bootTimeoutMs;
    // When the console's first byte arrived, for the boot timeline: a cheap stat every 25 ms until then.
    let firstByteMs: number | undefined;
    const firstByteWatch = setInterval(() => {
      void stat(consoleLog).then(
        (info) => {
          if (info.size > 0 && firstByteMs === undefined) {
            firstByteMs = Date.now() - started;
            clearInterval(firstByteWatch);
          }
        },
        () => undefined,
      );
    }, 25);
    // Under KVM the kernel prints within a second; silence past the limit means the guest is not running.
    const silentKvm = async (): Promise<string | undefined> => {
      if (silenceLimitMs === undefined) return undefined;
      const printed = (await stat(consoleLog).catch(() => undefined))?.size ?? 0;
      if (printed > 0) return undefined;
      if (exited) return `QEMU exited before the guest printed anything (${(await firstLine(qemuLog)) ?? 'no message'})`;
      if (Date.now() - started > silenceLimitMs) return `the guest printed nothing in ${silenceLimitMs / 1000} s`;
      return undefined;
    };
    let qmp: QmpClient | undefined;
    try {
      qmp = await Promise.race([
        QmpClient.connect(qmpSocket, { timeoutMs: 15_000 }),
        child.then(async () => {
          const silent = await silentKvm();
          if (silent) throw new SilentKvmBoot(silent);
          throw new HarnessError('qemu', `QEMU did not start: ${(await firstLine(qemuLog)) ?? 'it exited'}`, { logPath: qemuLog });
        }),
      ]);
      const port = parseForwardedPort(await qmp.hmp('info usernet'));
      if (!port) throw new HarnessError('qemu', 'QEMU reported no forwarded SSH port (info usernet)', { logPath: qemuLog });
      const shell = await waitForSsh(port, options, deadline, () => exited, consoleLog, silentKvm);
      const sshMs = Date.now() - started;
      clearInterval(firstByteWatch);
      const timeline = bootTimeline(await readFile(consoleLog, 'utf8').catch(() => ''), firstByteMs, sshMs);
      options.progress.step(`${options.iommu}: guest up in ${timeline.totalSeconds.toFixed(1)} s (${options.accel}), ssh on 127.0.0.1:${port}`);
      return new Machine(options, child, socketDir, qmp, shell, port, timeline, unregister);
    } catch (error) {
      clearInterval(firstByteWatch);
      // Every way out of a failed boot reaps QEMU and its private files.
      qmp?.close();
      child.kill('SIGKILL');
      await child;
      unregister();
      removeQuietly(socketDir);
      if (!(error instanceof HarnessError)) throw error;
      // However a KVM boot the probe chose failed (QEMU dying under QMP's
      // handshake, SSH never answering), a guest that printed nothing never ran.
      if (silenceLimitMs !== undefined && ((await stat(consoleLog).catch(() => undefined))?.size ?? 0) === 0) {
        throw new SilentKvmBoot(`the KVM boot failed before the guest printed anything (${(await firstLine(qemuLog)) ?? error.message})`);
      }
      const logPath = error.logPath ?? qemuLog;
      const excerpt = error.excerpt.length ? error.excerpt : (await readFile(logPath, 'utf8').catch(() => '')).split('\n').filter(Boolean).slice(-15);
      throw new HarnessError(error.kind, error.message, { logPath, excerpt, cause: error });
    }
  }

  /** QEMU start to a usable SSH session. */
  get bootSeconds(): number {
    return this.bootTimeline.totalSeconds;
  }

  /** The accelerator this machine really runs on (TCG after a KVM fallback). */
  get accel(): Accel {
    return this.options.accel;
  }

  /** Whether QEMU is gone, and how it ended. */
  get exit(): string | undefined {
    return this.exitInfo;
  }

  /**
   * How QEMU ended, waiting up to `withinMs` for it: a guest connection that
   * broke may be QEMU dying, whose exit is known a moment after.
   */
  async ended(withinMs: number): Promise<string | undefined> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.child.then(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, withinMs)))]);
    clearTimeout(timer);
    return this.exitInfo;
  }

  /** Reconnects SSH, e.g. after a step timed out and the channel state is unknown. */
  async reconnect(timeoutMs = 10_000): Promise<void> {
    this.shell.close();
    this.shell = await GuestShell.connect(
      { port: this.sshPort, privateKey: this.options.privateKey, hostKeyBlob: this.options.hostKeyBlob },
      timeoutMs,
    );
  }

  async console(): Promise<string> {
    return readFile(this.consoleLog, 'utf8').catch(() => '');
  }

  /** Powers the guest off and reaps QEMU; idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.shell.close();
    if (!this.exitInfo) {
      await this.qmp.execute('quit', {}, { timeoutMs: 3000 }).catch(() => undefined);
    }
    this.qmp.close();
    // The timer is cleared once QEMU is gone, so it does not hold the process open for 5 s.
    let timer: NodeJS.Timeout | undefined;
    const gone = await Promise.race([this.child.then(() => true), new Promise((resolve) => (timer = setTimeout(resolve, 5000, false)))]);
    clearTimeout(timer);
    if (!gone) {
      this.child.kill('SIGKILL');
      await this.child;
    }
    this.unregister();
    removeQuietly(this.socketDir);
  }
}

/** Retries SSH until the guest's sshd answers, QEMU ends, or the boot deadline passes. */
async function waitForSsh(
  port: number,
  options: BootOptions,
  deadline: number,
  qemuExited: () => boolean,
  consoleLog: string,
  silentKvm: () => Promise<string | undefined>,
): Promise<GuestShell> {
  let ready = false;
  for (;;) {
    const silent = await silentKvm();
    if (silent) throw new SilentKvmBoot(silent);
    if (qemuExited()) {
      const console = await readFile(consoleLog, 'utf8').catch(() => '');
      const cause = /Kernel panic - not syncing[^\n]*/.exec(console)?.[0] ?? 'QEMU exited before the guest answered SSH';
      throw new HarnessError('boot', `boot failed: ${cause.trim()}`, { logPath: consoleLog });
    }
    if (Date.now() > deadline) {
      throw new HarnessError('boot', `the guest did not answer SSH within ${options.bootTimeoutMs / 1000} s`, { logPath: consoleLog });
    }
    // /init prints its ready line just before it starts sshd: until then a
    // handshake cannot succeed and only costs the emulated guest cycles.
    if (!ready) {
      ready = (await readFile(consoleLog, 'utf8').catch(() => '')).includes(guestReadyLine);
      if (!ready) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
    }
    try {
      return await GuestShell.connect(
        { port, privateKey: options.privateKey, hostKeyBlob: options.hostKeyBlob },
        Math.min(10_000, Math.max(1000, deadline - Date.now())),
      );
    } catch (error) {
      if (error instanceof HarnessError) throw new HarnessError('boot', error.message, { logPath: consoleLog });
      // slirp accepts the TCP connection before the guest's sshd listens: retry.
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
