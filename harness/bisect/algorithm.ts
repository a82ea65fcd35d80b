// Bisection over a linear history, as plain data: which commit to test next
// given the verdicts so far, and when to stop. No git, no builds; the driver
// feeds it verdicts, the tests feed it a fake judge.
import type { StepVerdict } from './judge.ts';

/**
 * `commits` is the first-parent line from the good end (exclusive, known
 * good) to the bad end (inclusive, the last element, known bad), oldest first.
 */
export type NextStep =
  | { kind: 'test'; commit: string }
  /** The first bad commit: its parent is good (or the good end). */
  | { kind: 'found'; culprit: string }
  /** Skipped commits sit between the last good and the first bad: any of these could be it. */
  | { kind: 'ambiguous'; candidates: string[] };

export function nextStep(commits: readonly string[], verdicts: ReadonlyMap<string, StepVerdict>): NextStep {
  if (commits.length === 0) throw new RangeError('an empty range: the bad end must come after the good end');
  const lastGood = commits.reduce((last, commit, index) => (verdicts.get(commit) === 'good' ? index : last), -1);
  let firstBad = commits.findIndex((commit, index) => index > lastGood && verdicts.get(commit) === 'bad');
  // The bad end is bad by definition, judged or not.
  if (firstBad < 0) firstBad = commits.length - 1;
  if (firstBad <= lastGood) throw new RangeError('the bad end was judged good');

  const open: number[] = [];
  for (let index = lastGood + 1; index < firstBad; index++) {
    if (!verdicts.has(commits[index]!)) open.push(index);
  }
  if (open.length === 0) {
    const between = commits.slice(lastGood + 1, firstBad);
    if (between.length === 0) return { kind: 'found', culprit: commits[firstBad]! };
    // All skipped: the culprit is one of them or the first bad.
    return { kind: 'ambiguous', candidates: [...between, commits[firstBad]!] };
  }
  // The untested commit nearest the middle; on a tie the older, so runs are reproducible.
  const middle = (lastGood + firstBad) / 2;
  let best = open[0]!;
  for (const index of open) {
    if (Math.abs(index - middle) < Math.abs(best - middle)) best = index;
  }
  return { kind: 'test', commit: commits[best]! };
}

export type BisectOutcome = { kind: 'found'; culprit: string } | { kind: 'ambiguous'; candidates: string[] };

/**
 * Runs the bisection to the end with `judge` deciding each commit. The ends
 * are the caller's business: `commits` ends with a commit already known bad.
 */
export async function bisect(
  commits: readonly string[],
  judge: (commit: string) => Promise<StepVerdict>,
  known: ReadonlyMap<string, StepVerdict> = new Map(),
): Promise<BisectOutcome> {
  const verdicts = new Map(known);
  for (;;) {
    const step = nextStep(commits, verdicts);
    if (step.kind !== 'test') return step;
    verdicts.set(step.commit, await judge(step.commit));
  }
}

/** The most steps a range of `length` commits can take without skips: ceil(log2(length)). */
export function expectedSteps(length: number): number {
  return length <= 1 ? 0 : Math.ceil(Math.log2(length));
}
