// A bisect on a mainline-shaped history: merges whose side branches hold the culprit. A real git
// repository, made here; the judge is git itself (is the culprit an ancestor of the commit?), so
// no kernel is built: what is tested is which commits the bisect picks and which it names.
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { bisect, nextStep } from '../../harness/bisect/algorithm.ts';
import { commitRange } from '../../harness/bisect/history.ts';
import type { StepVerdict } from '../../harness/bisect/judge.ts';
import { HarnessError } from '../../harness/errors.ts';

const env = {
  GIT_AUTHOR_NAME: 't',
  GIT_AUTHOR_EMAIL: 't@localhost',
  GIT_COMMITTER_NAME: 't',
  GIT_COMMITTER_EMAIL: 't@localhost',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
};

interface Repo {
  dir: string;
  git(...args: string[]): Promise<string>;
  /** Commits a change under `name` (its subject) and returns its hash. */
  commit(name: string): Promise<string>;
  /** Merges `branch` into the current branch with subject `name`; returns the merge. */
  merge(branch: string, name: string): Promise<string>;
}

async function newRepo(t: { teardown(fn: () => Promise<void>): void }): Promise<Repo> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bisect-history-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  let tick = 0;
  const git = async (...args: string[]) => {
    // Distinct dates, as in a real history; the order must not depend on them anyway.
    const date = `2026-01-01T00:00:${String(tick++).padStart(2, '0')}Z`;
    return (await execa('git', args, { cwd: dir, env: { ...env, GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date } })).stdout.trim();
  };
  await git('init', '-q', '-b', 'main');
  const repo: Repo = {
    dir,
    git,
    commit: async (name) => {
      await git('commit', '-q', '--allow-empty', '-m', name);
      return git('rev-parse', 'HEAD');
    },
    merge: async (branch, name) => {
      await git('merge', '-q', '--no-ff', '-m', name, branch);
      return git('rev-parse', 'HEAD');
    },
  };
  return repo;
}

/**
 * main:    good - m1 - m2 - M1 - m3 - M2 - m4 (bad)
 *                  \         /         /
 * topic-a:          a1 - a2 - MC - a3 - a4        (M1 merges a4)
 *                     \      /
 * topic-c:             c1 - c2                    (MC merges c2 into topic-a)
 * topic-b:                 from m2: b1 - b2       (M2 merges b2)
 */
async function mainlineShaped(t: { teardown(fn: () => Promise<void>): void }) {
  const repo = await newRepo(t);
  const c: Record<string, string> = {};
  c.good = await repo.commit('good');
  c.m1 = await repo.commit('m1');
  await repo.git('checkout', '-q', '-b', 'topic-a');
  c.a1 = await repo.commit('a1');
  await repo.git('checkout', '-q', '-b', 'topic-c');
  c.c1 = await repo.commit('c1');
  c.c2 = await repo.commit('c2');
  await repo.git('checkout', '-q', 'topic-a');
  c.a2 = await repo.commit('a2');
  c.MC = await repo.merge('topic-c', 'MC');
  c.a3 = await repo.commit('a3');
  c.a4 = await repo.commit('a4');
  await repo.git('checkout', '-q', 'main');
  c.m2 = await repo.commit('m2');
  await repo.git('checkout', '-q', '-b', 'topic-b');
  c.b1 = await repo.commit('b1');
  c.b2 = await repo.commit('b2');
  await repo.git('checkout', '-q', 'main');
  c.M1 = await repo.merge('topic-a', 'M1');
  c.m3 = await repo.commit('m3');
  c.M2 = await repo.merge('topic-b', 'M2');
  c.m4 = await repo.commit('m4');
  const name = new Map(Object.entries(c).map(([key, hash]) => [hash, key]));
  return { repo, c, name };
}

/** Bad when the culprit is the commit or one of its ancestors, as a real bug would be. */
function judgeBy(repo: Repo, culprit: string, skipped: string[] = []) {
  const asked: string[] = [];
  const judge = async (commit: string): Promise<StepVerdict> => {
    asked.push(commit);
    if (skipped.includes(commit)) return 'skip';
    const ancestor = await execa('git', ['merge-base', '--is-ancestor', culprit, commit], { cwd: repo.dir, env, reject: false });
    return ancestor.exitCode === 0 ? 'bad' : 'good';
  };
  return { judge, asked };
}

test('a culprit on a side branch is named, not the merge that brought it in, as git bisect names it', async (t) => {
  const { repo, c, name } = await mainlineShaped(t);
  const range = await commitRange(repo.dir, c.good!, c.m4!);
  t.is(range.commits.length, 15, 'every commit good..bad, side branches included');
  t.is(range.commits.at(-1), c.m4);
  for (const [index, commit] of range.commits.entries()) {
    for (const parent of range.parents.get(commit) ?? []) {
      if (parent !== c.good) t.true(range.commits.indexOf(parent) < index, `${name.get(commit)}: its parent ${name.get(parent)} comes first`);
    }
  }
  t.deepEqual(range.parents.get(c.M1!), [c.m2, c.a4]);
  t.is(range.subjects.get(c.a3!), 'a3');

  for (const culprit of ['a3', 'c2', 'a1', 'b1', 'm3', 'm1', 'MC', 'M2', 'm4']) {
    const { judge, asked } = judgeBy(repo, c[culprit]!);
    const outcome = await bisect(range, judge, new Map([[c.m4!, 'bad']]));
    t.deepEqual(outcome, { kind: 'found', culprit: c[culprit] }, `culprit ${culprit}: asked ${asked.map((commit) => name.get(commit)).join(' ')}`);
    t.true(asked.length <= 5, `culprit ${culprit}: ${asked.length} steps for 15 commits`);
  }

  // What a first-parent walk did: the side branch is one step, so the merge takes the blame.
  const firstParent = (await repo.git('log', '--first-parent', '--reverse', '--format=%H', `${c.good}..${c.m4}`)).split('\n');
  const { judge } = judgeBy(repo, c.a3!);
  t.deepEqual(await bisect(firstParent, judge), { kind: 'found', culprit: c.M1 }, 'the defect this replaces');
});

test('a bad merge whose first parent is good sends the search into its side branch', async (t) => {
  const { repo, c } = await mainlineShaped(t);
  const range = await commitRange(repo.dir, c.good!, c.m4!);
  // M1 bad, m2 (its first parent) good: the suspects are topic-a's and topic-c's commits and M1.
  const verdicts = new Map<string, StepVerdict>([
    [c.m4!, 'bad'],
    [c.M1!, 'bad'],
    [c.m2!, 'good'],
  ]);
  const step = nextStep(range, verdicts);
  t.is(step.kind, 'test');
  if (step.kind === 'test') t.true([c.a1, c.a2, c.c1, c.c2, c.MC, c.a3, c.a4].includes(step.commit), 'the next commit is on a side branch');
  // A skip on the side branch next to the culprit leaves both as candidates, nothing else.
  const { judge } = judgeBy(repo, c.a3!, [c.MC!]);
  const outcome = await bisect(range, judge, verdicts);
  t.deepEqual(outcome, { kind: 'ambiguous', candidates: [c.MC, c.a3] });
});

test('the range refuses a good end the bad end does not descend from', async (t) => {
  const { repo, c } = await mainlineShaped(t);
  await t.throwsAsync(commitRange(repo.dir, c.b2!, c.a4!), { instanceOf: HarnessError, message: /not a descendant/ });
  // A good end on a side branch is fine now: it is an ancestor, as git bisect takes it.
  const range = await commitRange(repo.dir, c.a2!, c.m4!);
  t.false(range.commits.includes(c.a1!));
  t.true(range.commits.includes(c.c2!), 'topic-c is not an ancestor of a2: it is in the range');
});
