// The harness's SSH client for its guests: ssh2 with the guest's host key
// pinned (without a hostVerifier ssh2 accepts any key), and every command
// with a timeout.
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
   */
  runScript(script: string, timeoutMs: number): Promise<CommandResult> {
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

  close(): void {
    this.client.end();
  }
}
