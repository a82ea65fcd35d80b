// The one way the harness runs git: argument arrays (never a shell), a fixed
// identity for the commits it makes, and failures that keep git's own words.
// git runs in the user's repository, so none of the user's hooks, signing or
// inherited GIT_* variables take part in what the harness does there.
import { execa } from 'execa';
import { gitEnv } from '../child-env.ts';
import { HarnessError, hostTrouble, type HarnessErrorKind } from '../errors.ts';

const identity = {
  GIT_AUTHOR_NAME: 'iommu-harness',
  GIT_AUTHOR_EMAIL: 'iommu-harness@localhost',
  GIT_COMMITTER_NAME: 'iommu-harness',
  GIT_COMMITTER_EMAIL: 'iommu-harness@localhost',
  // Fixed dates make the harness's own commits reproducible, so cache keys are too.
  GIT_AUTHOR_DATE: '2000-01-01T00:00:00Z',
  GIT_COMMITTER_DATE: '2000-01-01T00:00:00Z',
  GIT_TERMINAL_PROMPT: '0',
};

/**
 * Settings that would run the user's programs or fail the harness's commits:
 * hooks (post-checkout, applypatch-msg, pre-commit, commit-msg...), the
 * fsmonitor hook, commit and tag signing; and automatic gc, which would
 * repack the user's repository behind their back.
 */
const gitOverrides = [
  'core.hooksPath=/dev/null',
  'core.fsmonitor=false',
  'commit.gpgSign=false',
  'tag.gpgSign=false',
  'gc.auto=0',
  'maintenance.auto=false',
].flatMap((setting) => ['-c', setting]);

export interface GitResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export interface GitOptions {
  allowFailure?: boolean;
  errorKind?: HarnessErrorKind;
  timeoutMs?: number;
  cancelSignal?: AbortSignal;
  /** Variables set on purpose (GIT_INDEX_FILE for a private index copy); the inherited GIT_* stay out. */
  env?: Record<string, string>;
}

function execaOptions(options: GitOptions) {
  return {
    reject: false,
    extendEnv: false,
    env: gitEnv({ ...identity, ...options.env }),
    timeout: options.timeoutMs ?? 10 * 60_000,
    stdin: 'ignore',
    ...(options.cancelSignal ? { cancelSignal: options.cancelSignal } : {}),
  } as const;
}

/** What checkResult reads of execa's result, whichever encoding. */
interface GitOutcome {
  exitCode?: number | undefined;
  stdout: string;
  stderr: string;
  failed: boolean;
  shortMessage?: string | undefined;
  cause?: unknown;
}

/** A failed git said in git's own words; returns when `allowFailure` lets the caller judge it. */
function checkResult(dir: string, args: string[], result: GitOutcome, options: GitOptions): void {
  if (result.exitCode === undefined && (result.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new HarnessError('prerequisite', 'git is not installed: apt-get install git');
  }
  if (result.exitCode === 0) return;
  const firstLine = (result.stderr || result.stdout).split('\n').find((line) => line.trim()) ?? (result.failed && result.shortMessage ? result.shortMessage : 'no output');
  // Not the input's fault: a patch "does not apply" because the disk is full must not be judged as the patch's failure.
  const trouble = hostTrouble(result.stderr);
  if (trouble) throw new HarnessError('host', `git ${args[0]} failed in ${dir}: ${trouble}: ${firstLine}`, { excerpt: result.stderr.split('\n').slice(0, 10) });
  if (!options.allowFailure) {
    throw new HarnessError(options.errorKind ?? 'setup', `git ${args[0]} failed in ${dir}: ${firstLine}`, {
      excerpt: result.stderr.split('\n').slice(0, 10),
    });
  }
}

/** Runs git in `dir`; with `allowFailure` a non-zero exit is returned instead of thrown (a full disk always throws). */
export async function git(dir: string, args: string[], options: GitOptions = {}): Promise<GitResult> {
  const result = await execa('git', [...gitOverrides, '-C', dir, ...args], execaOptions(options));
  const { exitCode, failed, shortMessage, cause, stdout, stderr } = result;
  checkResult(dir, args, { exitCode, failed, shortMessage, cause, stdout, stderr }, options);
  return { stdout, stderr, exitCode: exitCode ?? -1 };
}

/** git's stdout as bytes, for output that need not be UTF-8 (a diff of a Latin-1 file, a binary patch); a failure always throws. */
export async function gitBytes(dir: string, args: string[], options: Omit<GitOptions, 'allowFailure'> = {}): Promise<Buffer> {
  const result = await execa('git', [...gitOverrides, '-C', dir, ...args], { ...execaOptions(options), encoding: 'buffer', stripFinalNewline: false });
  const { exitCode, failed, shortMessage, cause } = result;
  checkResult(dir, args, { exitCode, failed, shortMessage, cause, stdout: '', stderr: Buffer.from(result.stderr).toString('utf8') }, options);
  return Buffer.from(result.stdout);
}
