// What a result needs to reproduce itself, and to say on a mailing list what
// was tested: the harness's own version, the command line, the config
// fragments (by name and content), the machines and scenarios, the host's
// QEMU and compiler, the kernel base as `git describe` names it, and each
// patch's subject and Message-ID. Gathering runs programs and reads files;
// everything that renders it (harness/report/formats.ts) stays pure.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { loadFragments } from '../build/index.ts';
import { git } from '../source/git.ts';
import { parsePatchMails, type PatchMail } from './mbox-headers.ts';

export interface PatchProvenance {
  /** The patch file, resolved against where the user stood. */
  file: string;
  /** sha256 of the file's bytes: KCIDB's patchset hash is built from these. */
  sha256: string;
  /** The mails of the mbox, cover letter included (marked); none for a plain diff. */
  mails: PatchMail[];
}

export interface Provenance {
  harness: {
    /** package.json's version. */
    version: string;
    /** `git describe --always --dirty` of the harness checkout; absent when it is not a git checkout. */
    describe?: string;
  };
  /** The arguments after `iommu-harness`, as given. */
  commandLine: string[];
  /** ISO 8601, when the run started. */
  startedAt: string;
  /** The config profile (`--profile`), e.g. "lockdep". */
  profile?: string;
  /** Every fragment the config was made from, in the order applied: harness fragments by their path in the checkout, a user's by its absolute path. */
  fragments: { name: string; sha256: string }[];
  /** sha256 over the fragments' newline-terminated sha256s, in order: one name for the whole config input. */
  fragmentsHash: string;
  scenarios: string[];
  machines: string[];
  /** The kernel's target architecture (the harness builds x86_64 only). */
  architecture: string;
  /** First line of `qemu-system-x86_64 --version`; absent when it could not be run. */
  qemu?: string;
  /** First line of `gcc --version`; absent when it could not be run. */
  compiler?: string;
  kernel: {
    /** `git describe --tags --always` of the base commit, in the tree it came from. */
    describe?: string;
    commit?: string;
  };
  patches: PatchProvenance[];
}

export interface ProvenanceRequest {
  /** process.argv.slice(2). */
  commandLine: string[];
  startedAt: Date;
  profile?: string;
  /**
   * The fragments beyond the standard ones, as obtainKernel gets them in `KernelRequest.kconfigs`
   * (the profile's fragment, then each --kconfig); the standard ones are added here.
   */
  kconfigs: string[];
  scenarios: readonly string[];
  machines: readonly string[];
  patches: readonly string[];
  /** A git tree holding the base commit (the --src tree, or the Debian source's repository), for `git describe`. */
  kernelRepo?: string;
  /** The base commit; HEAD of kernelRepo when absent. */
  kernelCommit?: string;
  /** Defaults: qemu-system-x86_64 and gcc, as the harness runs them. */
  qemuBinary?: string;
  compilerBinary?: string;
}

const checkout = fileURLToPath(new URL('../..', import.meta.url));

export async function gatherProvenance(request: ProvenanceRequest): Promise<Provenance> {
  const [version, harnessDescribe, qemu, compiler, kernelDescribe, fragments, patches] = await Promise.all([
    harnessVersion(),
    describe(checkout, ['describe', '--always', '--dirty', '--tags']),
    firstLineOf(request.qemuBinary ?? 'qemu-system-x86_64', ['--version']),
    firstLineOf(request.compilerBinary ?? 'gcc', ['--version']),
    request.kernelRepo ? describe(request.kernelRepo, ['describe', '--tags', '--always', '--abbrev=12', request.kernelCommit ?? 'HEAD']) : Promise.resolve(undefined),
    loadFragments(request.kconfigs),
    Promise.all(request.patches.map(patchProvenance)),
  ]);
  const fragmentHashes = fragments.map((fragment) => ({ name: fragmentName(fragment.name), sha256: sha256(fragment.text) }));
  return {
    harness: { version, ...(harnessDescribe ? { describe: harnessDescribe } : {}) },
    commandLine: [...request.commandLine],
    startedAt: request.startedAt.toISOString(),
    ...(request.profile ? { profile: request.profile } : {}),
    fragments: fragmentHashes,
    fragmentsHash: hashOfHashes(fragmentHashes.map((fragment) => fragment.sha256)),
    scenarios: [...request.scenarios],
    machines: [...request.machines],
    architecture: 'x86_64',
    ...(qemu ? { qemu } : {}),
    ...(compiler ? { compiler } : {}),
    kernel: { ...(kernelDescribe ? { describe: kernelDescribe } : {}), ...(request.kernelCommit ? { commit: request.kernelCommit } : {}) },
    patches,
  };
}

/** The harness's version for `--version`: package.json's, and the checkout's `git describe` when there is one. */
export async function harnessVersionLine(): Promise<string> {
  const [version, described] = await Promise.all([harnessVersion(), describe(checkout, ['describe', '--always', '--dirty', '--tags'])]);
  return `iommu-harness ${version}${described ? ` (${described})` : ''}`;
}

async function harnessVersion(): Promise<string> {
  const manifest = JSON.parse(await readFile(path.join(checkout, 'package.json'), 'utf8')) as { version?: string };
  return manifest.version ?? 'unknown';
}

async function patchProvenance(file: string): Promise<PatchProvenance> {
  const bytes = await readFile(file);
  return { file: path.resolve(file), sha256: sha256(bytes), mails: parsePatchMails(bytes.toString('utf8')) };
}

/** Absent when the directory is no git tree or the commit has no name: provenance never fails a run. */
async function describe(dir: string, args: string[]): Promise<string | undefined> {
  try {
    const result = await git(dir, args, { allowFailure: true, timeoutMs: 30_000 });
    return result.exitCode === 0 ? result.stdout.trim() || undefined : undefined;
  } catch {
    return undefined;
  }
}

async function firstLineOf(program: string, args: string[]): Promise<string | undefined> {
  const result = await execa(program, args, { reject: false, timeout: 10_000, stdin: 'ignore' });
  return result.exitCode === 0 ? result.stdout.split('\n')[0]?.trim() || undefined : undefined;
}

function fragmentName(file: string): string {
  const relative = path.relative(checkout, file);
  return relative.startsWith('..') || path.isAbsolute(relative) ? file : relative;
}

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** KCIDB's patchset hash: sha256 over newline-terminated sha256s, in order; '' for none. */
export function hashOfHashes(hashes: readonly string[]): string {
  return hashes.length ? sha256(hashes.map((hash) => `${hash}\n`).join('')) : '';
}
