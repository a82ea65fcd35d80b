// The harness's SSH client for its guests: ssh2 with the guest's host key
// pinned (without a hostVerifier ssh2 accepts any key), and every command
// with a timeout.
import { randomBytes } from 'node:crypto';
import ssh2 from 'ssh2';
import { HarnessError } from '../errors.ts';

export interface CommandResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface SshTarget {
  port: number;
  privateKey: string;
  /** The only host key blob accepted. */
  hostKeyBlob: Buffer;
}

/** Quotes one argument for the guest's POSIX shell, so no value is ever interpolated. */
export function shellQuote(argument: string): string {
  return `'${argument.replaceAll("'", `'\\''`)}'`;
}

export class GuestShell {
  private constructor(private readonly client: ssh2.Client) {}

  /** One connection attempt; rejects if the handshake does not finish within timeoutMs. */
  static connect(target: SshTarget, timeoutMs: number): Promise<GuestShell> {
    return new Promise((resolve, reject) => {
      const client = new ssh2.Client();
      let hostKeyRejected = false;
      client.once('ready', () => resolve(new GuestShell(client)));
      // ssh2 emits 'error' again when the connection drops later (QEMU died):
      // an unhandled one would crash the harness, and the pending command's
      // channel close already reports it.
      client.on('error', (error) => {
        client.end();
        reject(
          hostKeyRejected
            ? new HarnessError('ssh', 'the guest presented a host key other than the one baked into its image')
            : error,
        );
      });
      client.connect({
        host: '127.0.0.1',
        port: target.port,
        username: 'root',
        privateKey: target.privateKey,
        hostVerifier: (key: Buffer) => {
          hostKeyRejected = !key.equals(target.hostKeyBlob);
          return !hostKeyRejected;
        },
        readyTimeout: timeoutMs,
        keepaliveInterval: 5000,
        keepaliveCountMax: 6,
      });
    });
  }

  /** Runs argv (each word quoted) in the guest. */
  run(argv: string[], timeoutMs: number): Promise<CommandResult> {
    return this.runScript(argv.map(shellQuote).join(' '), timeoutMs);
  }

  /**
   * Runs a fixed script in the guest's shell. Callers pass only literal text
   * written in this project; values go through `run` or as quoted arguments.
   * Commands go one after another through one long-lived shell (a subshell
   * each, so no state leaks between them): an SSH exec channel costs the
   * guest a dropbear fork and a shell exec, ~80 ms per round trip under TCG
   * against ~10 ms. A command issued while that shell is busy (a helper
   * holding a device while the scenario acts) gets an exec channel of its own.
   */
  runScript(script: string, timeoutMs: number): Promise<CommandResult> {
    if (this.session?.busy) return this.execChannel(script, timeoutMs);
    if (!this.session?.usable) this.session = new ShellSession(this.client);
    return this.session.run(script, timeoutMs);
  }

  private session: ShellSession | undefined;

  private execChannel(script: string, timeoutMs: number): Promise<CommandResult> {
    return new Promise((resolve, reject) => {
      this.client.exec(script, (error, channel) => {
        if (error) {
          reject(new HarnessError('ssh', `could not start a command in the guest: ${error.message}`));
          return;
        }
        let stdout = '';
        let stderr = '';
        const timer = setTimeout(() => {
          channel.close();
          reject(new HarnessError('guest', `guest command timed out after ${timeoutMs / 1000} s: ${script.slice(0, 120)}`));
        }, timeoutMs);
        channel.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
        channel.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        channel.on('close', (code: number | null) => {
          clearTimeout(timer);
          resolve({ stdout, stderr, exitCode: code ?? -1 });
        });
      });
    });
  }

  /**
   * A person's shell in the guest: stdin, stdout and stderr joined to a login
   * shell (with a terminal when stdin is one, its size followed), until the
   * shell exits. No timeout: a person decides when it ends. Its exit code.
   */
  interactive(io: { stdin: NodeJS.ReadStream; stdout: NodeJS.WriteStream; stderr: NodeJS.WriteStream }): Promise<number> {
    const tty = Boolean(io.stdin.isTTY);
    return new Promise((resolve, reject) => {
      const opened = (error: Error | undefined, channel: ssh2.ClientChannel) => {
        if (error) {
          reject(new HarnessError('ssh', `could not open a shell in the guest: ${error.message}`));
          return;
        }
        const resize = () => channel.setWindow(io.stdout.rows ?? 24, io.stdout.columns ?? 80, 0, 0);
        if (tty) {
          io.stdin.setRawMode(true);
          io.stdout.on('resize', resize);
        }
        io.stdin.pipe(channel);
        channel.pipe(io.stdout, { end: false });
        channel.stderr.pipe(io.stderr, { end: false });
        channel.on('close', (code: number | null) => {
          io.stdin.unpipe(channel);
          io.stdin.pause();
          if (tty) {
            io.stdin.setRawMode(false);
            io.stdout.off('resize', resize);
          }
          // No exit status: the shell did not exit, the connection went (a panic, QEMU gone).
          if (typeof code === 'number') resolve(code);
          else reject(new HarnessError('guest', 'the guest shell ended without an exit status: the SSH connection was lost (see the console log)'));
        });
      };
      // Without a terminal (a pipe, a script) the guest's sh reads commands from stdin as they come.
      if (tty) this.client.shell({ term: process.env.TERM ?? 'xterm', rows: io.stdout.rows ?? 24, cols: io.stdout.columns ?? 80 }, opened);
      else this.client.exec('sh -l', opened);
    });
  }

  close(): void {
    this.session?.close();
    this.client.end();
  }
}

/**
 * One `sh` on one SSH channel, running scripts one at a time. Each script runs
 * in a subshell with stdin from /dev/null; after it the shell prints a marker
 * with a per-session random token on stdout (with the exit status) and on
 * stderr, and the command's output is everything before the markers. A script
 * that times out leaves the shell in an unknown state: the session closes and
 * the next command starts a new one.
 */
class ShellSession {
  private channel: Promise<ssh2.ClientChannel>;
  private readonly token = randomBytes(12).toString('hex');
  private counter = 0;
  private stdout = '';
  private stderr = '';
  private pending: (() => void) | undefined;
  private broken: string | undefined;
  busy = false;

  /** False once the shell ended or a command timed out in it. */
  get usable(): boolean {
    return this.broken === undefined;
  }

  constructor(client: ssh2.Client) {
    this.channel = new Promise((resolve, reject) => {
      client.exec('sh', (error, channel) => {
        if (error) {
          reject(new HarnessError('ssh', `could not start a shell in the guest: ${error.message}`));
          return;
        }
        channel.on('data', (chunk: Buffer) => {
          this.stdout += chunk.toString();
          this.pending?.();
        });
        channel.stderr.on('data', (chunk: Buffer) => {
          this.stderr += chunk.toString();
          this.pending?.();
        });
        channel.on('close', () => {
          this.broken ??= 'the guest shell ended';
          this.pending?.();
        });
        resolve(channel);
      });
    });
    // A shell that could not open is reported by the run waiting for it, and retires the session.
    this.channel.catch((error: Error) => (this.broken ??= `the guest shell did not start: ${error.message}`));
  }

  async run(script: string, timeoutMs: number): Promise<CommandResult> {
    this.busy = true;
    try {
      const channel = await this.channel;
      if (this.broken) throw new HarnessError('ssh', `could not run a command in the guest: ${this.broken}`);
      const marker = `${this.token}-${++this.counter}`;
      this.stdout = '';
      this.stderr = '';
      channel.write(`(\n${script}\n) </dev/null; printf '\\n%s %d\\n' ${marker} $?; printf '\\n%s\\n' ${marker} >&2\n`);
      return await new Promise<CommandResult>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.pending = undefined;
          this.broken = 'a command timed out';
          channel.close();
          reject(new HarnessError('guest', `guest command timed out after ${timeoutMs / 1000} s: ${script.slice(0, 120)}`));
        }, timeoutMs);
        this.pending = () => {
          const at = this.stdout.lastIndexOf(`\n${marker} `);
          const status = at >= 0 ? /^ (\d+)\n$/.exec(this.stdout.slice(at + marker.length + 1)) : null;
          const errorsDone = this.stderr.endsWith(`\n${marker}\n`);
          if (status?.[1] !== undefined && errorsDone) {
            clearTimeout(timer);
            this.pending = undefined;
            resolve({
              stdout: this.stdout.slice(0, at),
              stderr: this.stderr.slice(0, this.stderr.length - marker.length - 2),
              exitCode: Number(status[1]),
            });
          } else if (this.broken) {
            clearTimeout(timer);
            this.pending = undefined;
            reject(new HarnessError('ssh', `the guest shell ended during a command: ${script.slice(0, 120)}`));
          }
        };
        this.pending();
      });
    } finally {
      this.busy = false;
    }
  }

  close(): void {
    this.broken ??= 'closed';
    void this.channel.then((channel) => channel.close(), () => undefined);
  }
}
