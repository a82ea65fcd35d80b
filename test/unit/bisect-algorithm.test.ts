import test from 'ava';
import { bisect, expectedSteps, nextStep } from '../../harness/bisect/algorithm.ts';
import type { StepVerdict } from '../../harness/bisect/judge.ts';

const history = (length: number) => Array.from({ length }, (_, index) => `c${index + 1}`);

/** A judge for a history where `culprit` introduced the bug; `skipped` commits do not build. */
function fakeJudge(commits: string[], culprit: string, skipped: string[] = []) {
  const asked: string[] = [];
  const judge = async (commit: string): Promise<StepVerdict> => {
    asked.push(commit);
    if (skipped.includes(commit)) return 'skip';
    return commits.indexOf(commit) >= commits.indexOf(culprit) ? 'bad' : 'good';
  };
  return { judge, asked };
}

test('finds every possible culprit of an 8-commit history in at most 3 steps', async (t) => {
  const commits = history(8);
  for (const culprit of commits) {
    const { judge, asked } = fakeJudge(commits, culprit);
    t.deepEqual(await bisect(commits, judge), { kind: 'found', culprit }, culprit);
    t.true(asked.length <= 3, `${culprit}: asked ${asked.join(' ')}`);
    t.false(asked.includes('c8'), 'the bad end is never asked again');
  }
});

test('finds the culprit in ceil(log2 n) steps for ranges of 1 to 100 commits', async (t) => {
  for (let length = 1; length <= 100; length++) {
    const commits = history(length);
    for (const culprit of [commits[0]!, commits[Math.floor(length / 2)]!, commits[length - 1]!]) {
      const { judge, asked } = fakeJudge(commits, culprit);
      t.deepEqual(await bisect(commits, judge), { kind: 'found', culprit });
      t.true(asked.length <= expectedSteps(length), `length ${length}, culprit ${culprit}: ${asked.length} steps`);
    }
  }
});

test('starts in the middle and takes the older commit on a tie', (t) => {
  t.deepEqual(nextStep(history(8), new Map()), { kind: 'test', commit: 'c4' });
  t.deepEqual(nextStep(history(9), new Map()), { kind: 'test', commit: 'c4' });
  t.deepEqual(nextStep(history(2), new Map()), { kind: 'test', commit: 'c1' });
});

test('a range of one commit needs no step: the bad end is the culprit', (t) => {
  t.deepEqual(nextStep(['c1'], new Map()), { kind: 'found', culprit: 'c1' });
});

test('a commit that does not build is stepped around and the culprit still found', async (t) => {
  const commits = history(8);
  const { judge, asked } = fakeJudge(commits, 'c6', ['c4']);
  t.deepEqual(await bisect(commits, judge), { kind: 'found', culprit: 'c6' });
  t.is(asked[0], 'c4');
  // The next pick is the nearest untested commit to the middle, not a restart.
  t.true(asked[1] === 'c3' || asked[1] === 'c5', asked.join(' '));
});

test('skipped commits right before the first bad one leave a candidate range, not a guess', async (t) => {
  const commits = history(8);
  const { judge } = fakeJudge(commits, 'c6', ['c5']);
  t.deepEqual(await bisect(commits, judge), { kind: 'ambiguous', candidates: ['c5', 'c6'] });
  const all = fakeJudge(commits, 'c3', ['c1', 'c2']);
  t.deepEqual(await bisect(commits, all.judge), { kind: 'ambiguous', candidates: ['c1', 'c2', 'c3'] });
});

test('a culprit that is the skipped commit itself is among the candidates', async (t) => {
  const commits = history(8);
  const { judge } = fakeJudge(commits, 'c5', ['c5']);
  const outcome = await bisect(commits, judge);
  t.is(outcome.kind, 'ambiguous');
  if (outcome.kind === 'ambiguous') t.true(outcome.candidates.includes('c5'));
});

test('every commit skipped: every commit is a candidate', async (t) => {
  const commits = history(5);
  const { judge } = fakeJudge(commits, 'c5', commits.slice(0, 4));
  t.deepEqual(await bisect(commits, judge), { kind: 'ambiguous', candidates: commits });
});

test('verdicts already known (the ends, an earlier session) are not asked again', async (t) => {
  const commits = history(8);
  const { judge, asked } = fakeJudge(commits, 'c6');
  const known = new Map<string, StepVerdict>([['c4', 'good'], ['c8', 'bad']]);
  t.deepEqual(await bisect(commits, judge, known), { kind: 'found', culprit: 'c6' });
  t.false(asked.includes('c4'));
});

test('an empty range or a bad end judged good is an error, not a culprit', (t) => {
  t.throws(() => nextStep([], new Map()), { instanceOf: RangeError });
  t.throws(() => nextStep(['c1', 'c2'], new Map([['c2', 'good' as StepVerdict]])), { instanceOf: RangeError });
});
