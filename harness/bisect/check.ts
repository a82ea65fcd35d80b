// `iommu-harness check`: an oracle for `git bisect run`. It builds the tree as
// it stands (HEAD of the current repository or --src), runs the scenarios and
// answers in git bisect's exit codes: 0 good, 1 bad (the expected failure, or
// any failure when none is expected), 125 skip (the commit does not build or
// cannot be judged, or a run was blind to the expected failure whatever its verdict: a blind check
// is never good), 128 abort (the harness or the machine failed: going on would blame commits for it).
import { cacheLayout, type CacheLayout } from '../cache.ts';
import { HarnessError } from '../errors.ts';
import type { HarnessResult } from '../report/result.ts';
import { repositoryOf } from './history.ts';
import { bisectRunExitCode, type StepVerdict } from './judge.ts';
import type { Signature } from './signature.ts';
import { resolveCommit } from '../source/worktree.ts';
import { trialEvidence, tryCommit, type TrialRequest } from './trial.ts';

export const abortBisect = 128;

export interface CheckRequest extends Omit<TrialRequest, 'layout'> {
  /** The expected failure; undefined: any failure is bad. */
  expect?: Signature;
  runs: number;
  /** The commit to test; HEAD, where `git bisect` leaves it, by default. */
  ref?: string;
  /** Where to look for the repository when `src` is not given. */
  cwd?: string;
  layout?: CacheLayout;
}

export interface CheckOutcome {
  verdict: StepVerdict;
  /** 0, 1 or 125; errors are thrown and mapped by `checkExitCode`. */
  exitCode: number;
  commit: string;
  reason: string;
  /** The lines that show the failure, when bad. */
  evidence: string[];
  /** Failures that are not the expected one. */
  otherFailures: string[];
  results: HarnessResult[];
  buildSeconds: number;
}

export async function checkTree(request: CheckRequest): Promise<CheckOutcome> {
  const layout = request.layout ?? cacheLayout();
  const src = request.src ?? (await repositoryOf(request.cwd ?? process.cwd()));
  const commit = await resolveCommit(src, request.ref ?? 'HEAD');
  const trial = await tryCommit({ ...request, src, layout }, commit, request.runs, request.expect);
  const { verdict, reason, otherFailures } = trial.judgement;
  return {
    verdict,
    exitCode: bisectRunExitCode[verdict],
    commit,
    reason,
    evidence: verdict === 'bad' ? await trialEvidence(trial) : trial.buildError?.excerpt ?? [],
    otherFailures,
    results: trial.results,
    buildSeconds: trial.buildSeconds,
  };
}

/**
 * An error that escaped the trial is the harness's or the machine's, not the
 * commit's (those are skips already): abort the bisect, except on Ctrl-C,
 * which keeps its own code (130, also an abort for git).
 */
export function checkExitCode(error: unknown): number {
  if (error instanceof HarnessError && error.kind === 'interrupted') return error.exitCode;
  return abortBisect;
}
