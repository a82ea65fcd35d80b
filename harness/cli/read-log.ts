// The logs `parse` reads: plain, gzip or xz (as 0-day and KernelCI store
// them), from a file or stdin. What is read is known by its bytes, not its
// name: a log renamed by a mail client or a CI artifact store is still
// compressed. Input that holds no kernel log is refused, so a wrong file
// cannot read as a clean kernel.
import { readFile } from 'node:fs/promises';
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import type { Readable } from 'node:stream';
import { execa } from 'execa';
import { HarnessError } from '../errors.ts';

/** The name `parse` takes for stdin. */
export const stdinName = '-';

const gzipMagic = Buffer.from([0x1f, 0x8b]);
const xzMagic = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);

export type LogCompression = 'gzip' | 'xz' | 'none';

export function compressionOf(bytes: Uint8Array): LogCompression {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, xzMagic.length));
  if (head.subarray(0, gzipMagic.length).equals(gzipMagic)) return 'gzip';
  if (head.equals(xzMagic)) return 'xz';
  return 'none';
}

/** How a log is named in messages: stdin is not a file. */
export function logName(file: string): string {
  return file === stdinName ? 'stdin' : file;
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string));
  return Buffer.concat(chunks);
}

async function decompress(bytes: Buffer, compression: LogCompression, name: string): Promise<Buffer> {
  if (compression === 'gzip') {
    // gunzip reads every member, as zcat does for logs appended to in pieces.
    return promisify(gunzip)(bytes).catch((error: Error) => {
      throw new HarnessError('usage', `${name}: not a readable gzip file (${error.message})`);
    });
  }
  if (compression === 'xz') {
    // Node has no xz; the system's xz (xz-utils, which dpkg itself needs) does it.
    const result = await execa('xz', ['--decompress', '--stdout'], { input: bytes, encoding: 'buffer', reject: false, stripFinalNewline: false });
    if (result.exitCode === undefined && (result.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
      throw new HarnessError('prerequisite', `${name} is xz-compressed and xz is not installed: apt-get install xz-utils`);
    }
    if (result.exitCode !== 0) {
      const why = Buffer.from(result.stderr).toString('utf8').trim().split('\n')[0] ?? '';
      throw new HarnessError('usage', `${name}: not a readable xz file (${why || `xz exit ${result.exitCode}`})`);
    }
    return Buffer.from(result.stdout);
  }
  return bytes;
}

/** A log's text: a file (`-` for stdin), decompressed when its bytes say gzip or xz. */
export async function readLog(file: string, stdin: Readable = process.stdin): Promise<string> {
  const name = logName(file);
  const bytes =
    file === stdinName
      ? await readAll(stdin)
      : await readFile(file).catch(() => {
          throw new HarnessError('usage', `cannot read ${file}`);
        });
  return (await decompress(bytes, compressionOf(bytes), name)).toString('utf8');
}

// A printk timestamp at a line's start (after a syslog level, a caller id may follow), or the boot banner.
const printkTimestampRe = /^(?:<\d+>)?\[ *\d+\.\d+\]/m;
const bannerRe = /^(?:.*\] )?Linux version \d+\.\d+/m;

/** Whether `text` holds any kernel log: a printk timestamp or the `Linux version` banner. */
export function holdsKernelLog(text: string): boolean {
  return printkTimestampRe.test(text) || bannerRe.test(text);
}

/**
 * A usage error unless `text` holds a kernel log: the oracle finds nothing in
 * an empty file, a password file or a log it could not decompress, and
 * "nothing found" would read as a pass.
 */
export function requireKernelLog(text: string, file: string): void {
  const name = logName(file);
  if (text.trim() === '') throw new HarnessError('usage', `${name} is empty: no kernel log to judge`);
  if (!holdsKernelLog(text)) {
    throw new HarnessError('usage', `${name} holds no kernel log (no printk timestamp such as "[    0.000000]" and no "Linux version" banner): nothing to judge`);
  }
}
