// Every failure the harness can end in is one of these, so the CLI maps it to
// a one-line cause, the log that shows it, and an exit code, without parsing text.

/** Exit codes, stable for scripts and `git bisect run`. */
export const ExitCode = {
  clean: 0,
  /** A leak or a kernel report was found. */
  findings: 1,
  /** The user asked for something that cannot be done: usage, patch or config errors. */
  usage: 2,
  /** The harness or the machine failed: build, boot, QEMU, SSH, or an unexpected error. */
  infrastructure: 3,
  /** No finding, but a check the verdict relies on was off or blind. */
  inconclusive: 4,
  /** Interrupted by SIGINT or SIGTERM. */
  interrupted: 130,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export type HarnessErrorKind =
  | 'usage'
  | 'patch'
  | 'config'
  | 'build'
  | 'image'
  | 'boot'
  | 'qemu'
  | 'qmp'
  | 'ssh'
  | 'guest'
  | 'setup'
  | 'host'
  | 'prerequisite'
  | 'interrupted';

const exitCodeOf: Record<HarnessErrorKind, ExitCode> = {
  usage: ExitCode.usage,
  patch: ExitCode.usage,
  config: ExitCode.usage,
  build: ExitCode.infrastructure,
  image: ExitCode.infrastructure,
  boot: ExitCode.infrastructure,
  qemu: ExitCode.infrastructure,
  qmp: ExitCode.infrastructure,
  ssh: ExitCode.infrastructure,
  guest: ExitCode.infrastructure,
  setup: ExitCode.infrastructure,
  // The machine the harness runs on: a full disk, an unwritable cache, memory.
  host: ExitCode.infrastructure,
  // A program or package this machine lacks: the user installs it, nothing ran.
  prerequisite: ExitCode.usage,
  interrupted: ExitCode.interrupted,
};

export interface HarnessErrorDetails {
  /** The log that shows the failure, when there is one. */
  logPath?: string;
  /** A few lines of evidence (the first compiler errors, the rejected hunk...). */
  excerpt?: string[];
  cause?: unknown;
}

/** A failure with its one-line cause, its evidence and its exit code. */
export class HarnessError extends Error {
  readonly kind: HarnessErrorKind;
  readonly logPath: string | undefined;
  readonly excerpt: string[];

  constructor(kind: HarnessErrorKind, message: string, details: HarnessErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'HarnessError';
    this.kind = kind;
    this.logPath = details.logPath;
    this.excerpt = details.excerpt ?? [];
  }

  get exitCode(): ExitCode {
    return exitCodeOf[this.kind];
  }
}

/**
 * One line for anything thrown. Node's system errors name their call and
 * path (`mkdir /x/kernels: read-only file system (EROFS)`), which says more
 * than their message alone.
 */
export function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const system = error as NodeJS.ErrnoException & { dest?: string };
  if (system.code && system.syscall) {
    const what = [system.syscall, system.path, system.dest && `-> ${system.dest}`].filter(Boolean).join(' ');
    return `${what}: ${systemErrorText[system.code] ?? system.message.split('\n')[0]} (${system.code})`;
  }
  return error.message.split('\n')[0] ?? error.name;
}

const systemErrorText: Record<string, string> = {
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  ENOENT: 'no such file or directory',
  ENOTDIR: 'not a directory',
  EEXIST: 'already exists',
  EISDIR: 'is a directory',
};

/**
 * Output of a tool that says the machine, not the input, failed it: a full
 * disk, a read-only file system. Only a line that ends in the system's own
 * words counts (`tar: x: Cannot write: No space left on device`), so a
 * commit subject or a source line that quotes them does not.
 */
export function hostTrouble(output: string): string | undefined {
  if (/: No space left on device$/m.test(output)) return 'no space left on device';
  if (/: Disk quota exceeded$/m.test(output)) return 'disk quota exceeded';
  if (/: Read-only file system$/m.test(output)) return 'read-only file system';
  return undefined;
}
