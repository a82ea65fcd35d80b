// The range a bisect walks: the first-parent line from the good end to the
// bad end, read from the user's repository without touching its checkout.
import { HarnessError } from '../errors.ts';
import { git } from '../source/git.ts';
import { resolveCommit } from '../source/worktree.ts';

export interface CommitRange {
  good: string;
  bad: string;
  /** Oldest first: the good end excluded, the bad end included (last). */
  commits: string[];
  subjects: Map<string, string>;
}

/**
 * First parents only: a merge is judged as one step, as it landed on the
 * line, so a side branch's half-done commits never become culprits.
 */
export async function firstParentRange(repo: string, goodRef: string, badRef: string): Promise<CommitRange> {
  const good = await resolveCommit(repo, goodRef);
  const bad = await resolveCommit(repo, badRef);
  if (good === bad) throw new HarnessError('usage', `--good ${goodRef} and --bad ${badRef} are the same commit: nothing to bisect`);
  const log = await git(repo, ['log', '--first-parent', '--reverse', '--format=%H%x00%s', `${good}..${bad}`]);
  const subjects = new Map<string, string>();
  const commits: string[] = [];
  for (const line of log.stdout.split('\n')) {
    if (!line) continue;
    const [commit = '', subject = ''] = line.split('\0');
    commits.push(commit);
    subjects.set(commit, subject);
  }
  if (commits.length === 0) throw new HarnessError('usage', `--bad ${badRef} is not a descendant of --good ${goodRef}: nothing to bisect`);
  const parent = await git(repo, ['rev-parse', `${commits[0]}^1`], { allowFailure: true });
  if (parent.stdout.trim() !== good) {
    throw new HarnessError(
      'usage',
      `--good ${goodRef} is not on the first-parent line of --bad ${badRef} (it was merged from a side branch): pass the merge's first parent as --good`,
    );
  }
  subjects.set(good, await subjectOf(repo, good));
  return { good, bad, commits, subjects };
}

export async function subjectOf(repo: string, commit: string): Promise<string> {
  return (await git(repo, ['log', '-1', '--format=%s', commit])).stdout.trim();
}

/** The top of the git tree holding `dir`, so a subdirectory names the same repository. */
export async function repositoryOf(dir: string): Promise<string> {
  const top = await git(dir, ['rev-parse', '--show-toplevel'], { allowFailure: true });
  if (top.exitCode !== 0) throw new HarnessError('usage', `${dir} is not in a git tree: run from the kernel tree or pass --src`);
  return top.stdout.trim();
}
