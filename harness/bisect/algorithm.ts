// Bisection over a commit graph, as plain data: which commit to test next given
// the verdicts so far, and when to stop. No git, no builds; the driver feeds it
// verdicts, the tests feed it a fake judge.
//
// It follows git bisect, merges and all: the suspects are the commits the bad
// end reaches and no good commit does, a bad commit keeps only its own
// ancestors, a good one drops its ancestors, and the next commit to test is the
// one whose ancestors are closest to half the suspects. So a bad merge whose
// first parent is good sends the search into its side branch, and the culprit
// named is the commit that brought the bug, not the merge that carried it in
// (mainline is mostly merges: a first-parent walk names a merge every time).
import type { StepVerdict } from './judge.ts';

/**
 * The range: `commits` from the good end (exclusive, known good) to the bad end
 * (inclusive, the last element, known bad), parents before children; `parents`
 * each commit's parents, those outside the range left out or ignored (they are
 * the good end's ancestors). A plain list is a line: each commit's parent is
 * the one before it.
 */
export interface CommitGraph {
  commits: readonly string[];
  parents: ReadonlyMap<string, readonly string[]>;
}

export type Range = readonly string[] | CommitGraph;

export type NextStep =
  | { kind: 'test'; commit: string }
  /** The first bad commit: every parent of it in the range is good. */
  | { kind: 'found'; culprit: string }
  /** Skipped commits are left among the suspects: any of these could be it. */
  | { kind: 'ambiguous'; candidates: string[] };

export function nextStep(range: Range, verdicts: ReadonlyMap<string, StepVerdict>): NextStep {
  const graph = asGraph(range);
  const { commits } = graph;
  if (commits.length === 0) throw new RangeError('an empty range: the bad end must come after the good end');
  const ancestors = ancestorSets(graph);
  const badEnd = commits.length - 1;
  if (verdicts.get(commits[badEnd]!) === 'good') throw new RangeError('the bad end was judged good');

  // The bad end is bad by definition, judged or not.
  let suspects: Bits = ancestors[badEnd]!.slice();
  for (const [index, commit] of commits.entries()) {
    const verdict = verdicts.get(commit);
    if (verdict === 'bad') suspects = and(suspects, ancestors[index]!);
    else if (verdict === 'good') suspects = andNot(suspects, ancestors[index]!);
  }
  const members = indices(suspects);
  if (members.length === 0) throw new RangeError('the verdicts contradict each other: a commit judged good has every suspect among its ancestors');

  const open = members.filter((index) => index !== badEnd && !verdicts.has(commits[index]!));
  if (open.length === 0) {
    if (members.length === 1) return { kind: 'found', culprit: commits[members[0]!]! };
    return { kind: 'ambiguous', candidates: members.map((index) => commits[index]!) };
  }
  // Whichever verdict comes back, the fewest suspects are left when the commit's ancestors are
  // half of them; on a tie the older, so runs are reproducible.
  let best = open[0]!;
  let bestScore = -1;
  for (const index of open) {
    const below = count(and(ancestors[index]!, suspects));
    const score = Math.min(below, members.length - below);
    if (score > bestScore) {
      best = index;
      bestScore = score;
    }
  }
  return { kind: 'test', commit: commits[best]! };
}

export type BisectOutcome = { kind: 'found'; culprit: string } | { kind: 'ambiguous'; candidates: string[] };

/**
 * Runs the bisection to the end with `judge` deciding each commit. The ends
 * are the caller's business: the range ends with a commit already known bad.
 */
export async function bisect(
  range: Range,
  judge: (commit: string) => Promise<StepVerdict>,
  known: ReadonlyMap<string, StepVerdict> = new Map(),
): Promise<BisectOutcome> {
  const graph = asGraph(range);
  const verdicts = new Map(known);
  for (;;) {
    const step = nextStep(graph, verdicts);
    if (step.kind !== 'test') return step;
    verdicts.set(step.commit, await judge(step.commit));
  }
}

/** The most steps a line of `length` commits can take without skips: ceil(log2(length)). */
export function expectedSteps(length: number): number {
  return length <= 1 ? 0 : Math.ceil(Math.log2(length));
}

function asGraph(range: Range): CommitGraph {
  if (!isList(range)) return range;
  return { commits: range, parents: new Map(range.map((commit, index) => [commit, index > 0 ? [range[index - 1]!] : []])) };
}

function isList(range: Range): range is readonly string[] {
  return Array.isArray(range);
}

type Bits = Uint32Array;

/** Each commit's ancestors in the range, itself included, as a bit set over `commits`' indices. */
function ancestorSets(graph: CommitGraph): Bits[] {
  const { commits, parents } = graph;
  const position = new Map(commits.map((commit, index) => [commit, index]));
  if (position.size !== commits.length) throw new RangeError('a commit is listed twice in the range');
  const words = Math.ceil(commits.length / 32);
  const sets: Bits[] = [];
  for (const [index, commit] of commits.entries()) {
    const set = new Uint32Array(words);
    set[index >>> 5]! |= 1 << (index & 31);
    for (const parent of parents.get(commit) ?? []) {
      const at = position.get(parent);
      if (at === undefined) continue;
      if (at >= index) throw new RangeError(`${commit} comes before its parent ${parent}: the range must list parents first`);
      const theirs = sets[at]!;
      for (let word = 0; word < words; word++) set[word]! |= theirs[word]!;
    }
    sets.push(set);
  }
  return sets;
}

function and(a: Bits, b: Bits): Bits {
  return a.map((word, index) => word & b[index]!);
}

function andNot(a: Bits, b: Bits): Bits {
  return a.map((word, index) => word & ~b[index]!);
}

function indices(set: Bits): number[] {
  const out: number[] = [];
  for (let word = 0; word < set.length; word++) {
    for (let bit = 0; bit < 32; bit++) if (set[word]! & (1 << bit)) out.push(word * 32 + bit);
  }
  return out;
}

function count(set: Bits): number {
  let total = 0;
  for (let word of set) {
    for (; word; total++) word &= word - 1;
  }
  return total;
}
