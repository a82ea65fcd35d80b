// The one way the harness runs git: argument arrays (never a shell), a fixed
// identity for the commits it makes, and failures that keep git's own words.
import { execa } from 'execa';
import { HarnessError, type HarnessErrorKind } from '../errors.ts';

const identity = {
  GIT_AUTHOR_NAME: 'iommu-harness',
  GIT_AUTHOR_EMAIL: 'iommu-harness@localhost',
  GIT_COMMITTER_NAME: 'iommu-harness',
  GIT_COMMITTER_EMAIL: 'iommu-harness@localhost',
  // Fixed dates make the harness's own commits reproducible, so cache keys are too.
  GIT_AUTHOR_DATE: '2000-01-01T00:00:00Z',
  GIT_COMMITTER_DATE: '2000-01-01T00:00:00Z',
};

export interface GitResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Runs git in `dir`; with `allowFailure` a non-zero exit is returned instead of thrown. */
export async function git(
  dir: string,
  args: string[],
  options: { allowFailure?: boolean; errorKind?: HarnessErrorKind; timeoutMs?: number } = {},
): Promise<GitResult> {
  const result = await execa('git', ['-C', dir, ...args], {
    reject: false,
    env: { ...identity, GIT_TERMINAL_PROMPT: '0' },
    timeout: options.timeoutMs ?? 10 * 60_000,
    stdin: 'ignore',
  });
  const out = { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode ?? -1 };
  if (out.exitCode !== 0 && !options.allowFailure) {
    const firstLine = (result.stderr || result.stdout).split('\n').find((line) => line.trim()) ?? 'no output';
    throw new HarnessError(options.errorKind ?? 'setup', `git ${args[0]} failed in ${dir}: ${firstLine}`, {
      excerpt: result.stderr.split('\n').slice(0, 10),
    });
  }
  return out;
}
