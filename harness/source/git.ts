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

/** Runs git in `dir`; with `allowFailure` a non-zero exit is returned instead of thrown (a full disk always throws). */
export async function git(
  dir: string,
  args: string[],
  options: { allowFailure?: boolean; errorKind?: HarnessErrorKind; timeoutMs?: number; cancelSignal?: AbortSignal } = {},
): Promise<GitResult> {
  const result = await execa('git', [...gitOverrides, '-C', dir, ...args], {
    reject: false,
    extendEnv: false,
    env: gitEnv(identity),
    timeout: options.timeoutMs ?? 10 * 60_000,
    stdin: 'ignore',
    ...(options.cancelSignal ? { cancelSignal: options.cancelSignal } : {}),
  });
  if (result.exitCode === undefined && (result.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new HarnessError('prerequisite', 'git is not installed: apt-get install git');
  }
  const out = { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode ?? -1 };
  if (out.exitCode === 0) return out;
  const firstLine = (result.stderr || result.stdout).split('\n').find((line) => line.trim()) ?? (result.failed ? result.shortMessage : 'no output');
  // Not the input's fault: a patch "does not apply" because the disk is full must not be judged as the patch's failure.
  const trouble = hostTrouble(result.stderr);
  if (trouble) throw new HarnessError('host', `git ${args[0]} failed in ${dir}: ${trouble}: ${firstLine}`, { excerpt: result.stderr.split('\n').slice(0, 10) });
  if (!options.allowFailure) {
    throw new HarnessError(options.errorKind ?? 'setup', `git ${args[0]} failed in ${dir}: ${firstLine}`, {
      excerpt: result.stderr.split('\n').slice(0, 10),
    });
  }
  return out;
}
