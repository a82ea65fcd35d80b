// One QEMU guest from start to reaping: boot, QMP, SSH, console.
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { HarnessError } from '../errors.ts';
import type { Progress } from '../log.ts';
import { QmpClient } from './qmp.ts';
import { parseForwardedPort, qemuArgs, type Accel } from './qemu-args.ts';
import { register, removeQuietly } from './reaper.ts';
import { GuestShell } from './ssh.ts';
import type { IommuModel, Topology } from './topology.ts';

export interface BootOptions {
  iommu: IommuModel;
  accel: Accel;
  bzImage: string;
  initrd: string;
  topology: Topology;
  /** Where console.log and qemu.log are written; kept after the run. */
  runDir: string;
  privateKey: string;
  hostKeyBlob: Buffer;
  bootTimeoutMs: number;
  progress: Progress;
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
    readonly bootSeconds: number,
    unregister: () => void,
  ) {
    this.consoleLog = path.join(options.runDir, 'console.log');
    this.qemuLog = path.join(options.runDir, 'qemu.log');
    this.unregister = unregister;
    void child.then((result) => {
      this.exitInfo = result.signal ? `signal ${result.signal}` : `exit code ${result.exitCode}`;
    });
  }

  /** Starts QEMU and waits until the guest answers SSH. */
  static async boot(options: BootOptions): Promise<Machine> {
    const started = Date.now();
    const consoleLog = path.join(options.runDir, 'console.log');
    const qemuLog = path.join(options.runDir, 'qemu.log');
    // A unix socket path has a 108-byte limit, so it lives in a short private temp dir.
    const socketDir = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-'));
    const qmpSocket = path.join(socketDir, 'qmp.sock');
    const args = qemuArgs({ ...options, kernel: options.bzImage, consoleLog, qmpSocket });
    const child = execa('qemu-system-x86_64', args, {
      reject: false,
      stdin: 'ignore',
      stdout: { file: qemuLog },
      stderr: { file: qemuLog },
      // execa kills the child if this process exits unexpectedly.
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
    let qmp: QmpClient | undefined;
    try {
      qmp = await Promise.race([
        QmpClient.connect(qmpSocket, { timeoutMs: 15_000 }),
        child.then(async () => {
          const log = await readFile(qemuLog, 'utf8').catch(() => '');
          throw new HarnessError('qemu', `QEMU did not start: ${log.split('\n').find((line) => line.trim()) ?? 'it exited'}`, { logPath: qemuLog });
        }),
      ]);
      const port = parseForwardedPort(await qmp.hmp('info usernet'));
      if (!port) throw new HarnessError('qemu', 'QEMU reported no forwarded SSH port (info usernet)', { logPath: qemuLog });
      const shell = await waitForSsh(port, options, deadline, () => exited, consoleLog);
      const seconds = (Date.now() - started) / 1000;
      options.progress.step(`${options.iommu}: guest up in ${seconds.toFixed(1)} s (${options.accel}), ssh on 127.0.0.1:${port}`);
      return new Machine(options, child, socketDir, qmp, shell, port, seconds, unregister);
    } catch (error) {
      // Every way out of a failed boot reaps QEMU and its private files.
      qmp?.close();
      child.kill('SIGKILL');
      await child;
      unregister();
      removeQuietly(socketDir);
      if (!(error instanceof HarnessError)) throw error;
      const logPath = error.logPath ?? qemuLog;
      const excerpt = error.excerpt.length ? error.excerpt : (await readFile(logPath, 'utf8').catch(() => '')).split('\n').filter(Boolean).slice(-15);
      throw new HarnessError(error.kind, error.message, { logPath, excerpt, cause: error });
    }
  }

  /** Whether QEMU is gone, and how it ended. */
  get exit(): string | undefined {
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
    const gone = await Promise.race([this.child.then(() => true), new Promise((resolve) => setTimeout(resolve, 5000, false))]);
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
): Promise<GuestShell> {
  for (;;) {
    if (qemuExited()) {
      const console = await readFile(consoleLog, 'utf8').catch(() => '');
      const cause = /Kernel panic - not syncing[^\n]*/.exec(console)?.[0] ?? 'QEMU exited before the guest answered SSH';
      throw new HarnessError('boot', `boot failed: ${cause.trim()}`, { logPath: consoleLog });
    }
    if (Date.now() > deadline) {
      throw new HarnessError('boot', `the guest did not answer SSH within ${options.bootTimeoutMs / 1000} s`, { logPath: consoleLog });
    }
    try {
      return await GuestShell.connect(
        { port, privateKey: options.privateKey, hostKeyBlob: options.hostKeyBlob },
        Math.min(10_000, Math.max(1000, deadline - Date.now())),
      );
    } catch (error) {
      if (error instanceof HarnessError) throw new HarnessError('boot', error.message, { logPath: consoleLog });
      // slirp accepts the TCP connection before the guest's sshd listens: retry.
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}
