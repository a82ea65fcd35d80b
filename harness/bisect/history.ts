// The range a bisect walks: every commit the bad end reaches and the good end
// does not, merges' side branches included, with each commit's parents, read
// from the user's repository without touching its checkout.
import { HarnessError } from '../errors.ts';
import { git } from '../source/git.ts';
import { resolveCommit } from '../source/worktree.ts';
import type { CommitGraph } from './algorithm.ts';

export interface CommitRange extends CommitGraph {
  good: string;
  bad: string;
  /** Parents before children: the good end excluded, the bad end included (last). */
  commits: string[];
  subjects: Map<string, string>;
}

/**
 * `git rev-list good..bad`, as git bisect reads it: a bug brought in on a side
 * branch is found on that branch, so the culprit is the commit that wrote it,
 * not the merge that carried it into mainline.
 */
export async function commitRange(repo: string, goodRef: string, badRef: string): Promise<CommitRange> {
  const good = await resolveCommit(repo, goodRef);
  const bad = await resolveCommit(repo, badRef);
  if (good === bad) throw new HarnessError('usage', `--good ${goodRef} and --bad ${badRef} are the same commit: nothing to bisect`);
  const ancestor = await git(repo, ['merge-base', '--is-ancestor', good, bad], { allowFailure: true });
  if (ancestor.exitCode !== 0) throw new HarnessError('usage', `--bad ${badRef} is not a descendant of --good ${goodRef}: nothing to bisect`);
  // --topo-order then --reverse: every parent before its children, the bad end last.
  const log = await git(repo, ['log', '--topo-order', '--reverse', '--format=%H%x00%P%x00%s', `${good}..${bad}`]);
  const subjects = new Map<string, string>();
  const parents = new Map<string, string[]>();
  const commits: string[] = [];
  for (const line of log.stdout.split('\n')) {
    if (!line) continue;
    const [commit = '', parentList = '', subject = ''] = line.split('\0');
    commits.push(commit);
    parents.set(commit, parentList.split(' ').filter(Boolean));
    subjects.set(commit, subject);
  }
  if (commits.at(-1) !== bad) throw new HarnessError('usage', `--bad ${badRef} is not a descendant of --good ${goodRef}: nothing to bisect`);
  subjects.set(good, await subjectOf(repo, good));
  return { good, bad, commits, parents, subjects };
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
