// `iommu-harness bisect` as a library call: check the ends, take the failure's
// signature from the bad end, then bisect the commits between them as git
// bisect does (into a bad merge's side branch), judging every commit against
// that signature. Every commit is built in the harness's
// worktree of the repository and its one build directory, so after the first
// build each step costs an incremental build, a boot and the scenarios; the
// user's checkout is never touched.
import { cacheLayout, type CacheLayout } from '../cache.ts';
import { HarnessError } from '../errors.ts';
import { debianReleaseOf, ensureDebianSource } from '../source/debian-source.ts';
import { bisect } from './algorithm.ts';
import { commitRange } from './history.ts';
import type { StepVerdict } from './judge.ts';
import { describeSignature, formatSignature, signatureOf, type Signature } from './signature.ts';
import { trialEvidence, tryCommit, type Trial, type TrialRequest } from './trial.ts';

export interface BisectRequest extends Omit<TrialRequest, 'layout' | 'ref'> {
  good: string;
  bad: string;
  /** Runs per commit; a commit is bad when any run shows the signature. */
  runs: number;
  layout?: CacheLayout;
  /** Called as each commit is judged, the ends first. */
  onStep?: (step: BisectStep) => void;
}

export type StepRole = 'bad end' | 'good end' | 'step';

/** One judged commit. `commit`, `verdict`, `runs` and `buildSeconds` are stable JSON names. */
export interface BisectStep {
  commit: string;
  subject: string;
  role: StepRole;
  verdict: StepVerdict;
  /** Runs made (fewer than asked when an early one showed the signature). */
  runs: number;
  /** 0 when the kernel came from the cache; for a commit that did not build, the time until it failed. */
  buildSeconds: number;
  /** The whole step: build, boots, scenarios. */
  totalSeconds: number;
  /** Whether this step compiled a kernel, found it in the cache, or failed to build. */
  build: 'built' | 'cached' | 'failed';
  reason: string;
  /** Where the kernel is kept in the cache. */
  kernelKey?: string;
  logs: string[];
}

export interface CommitInfo {
  commit: string;
  subject: string;
}

export interface BisectResult {
  /** The first bad commit; null when skipped commits leave several candidates. */
  culprit: CommitInfo | null;
  /** Set when the culprit is one of several: the skipped commits and the first bad one. */
  candidates?: CommitInfo[];
  signature: Signature;
  /** The signature as `check --expect` takes it. */
  expect: string;
  good: CommitInfo;
  bad: CommitInfo;
  /** Commits in the range, the bad end included. */
  rangeLength: number;
  steps: BisectStep[];
  /** The lines that show the failure at the culprit (or the bad end, when there is no single culprit). */
  evidence: string[];
  /** Kernels built (not taken from the cache), failed builds included. */
  builds: number;
  totalSeconds: number;
}

export async function bisectKernel(request: BisectRequest): Promise<BisectResult> {
  const started = Date.now();
  const layout = request.layout ?? cacheLayout();
  const { progress } = request;
  if (!Number.isInteger(request.runs) || request.runs < 1) throw new HarnessError('usage', `--runs must be at least 1 (got ${request.runs})`);
  const debian = debianReleaseOf(request.src);
  const repo = debian ? await ensureDebianSource(layout, debian, progress) : (request.src ?? '.');
  const range = await commitRange(repo, request.good, request.bad);
  const info = (commit: string): CommitInfo => ({ commit, subject: range.subjects.get(commit) ?? '' });
  const trialRequest: TrialRequest = { ...request, layout };
  const steps: BisectStep[] = [];
  const trials = new Map<string, Trial>();

  const judge = async (commit: string, role: StepRole, signature: Signature | undefined): Promise<Trial> => {
    progress.step(`${role} ${commit.slice(0, 12)} ${info(commit).subject}`);
    const trial = await tryCommit(trialRequest, commit, request.runs, signature);
    trials.set(commit, trial);
    const step = toStep(trial, info(commit).subject, role);
    steps.push(step);
    request.onStep?.(step);
    return trial;
  };

  progress.step(`${range.commits.length} commit(s) from ${range.good.slice(0, 12)} (good) to ${range.bad.slice(0, 12)} (bad), merges' side branches included`);
  const badEnd = await judge(range.bad, 'bad end', undefined);
  const signature = endsSignature(badEnd, request.bad);
  progress.step(`following the ${describeSignature(signature)} (--expect '${formatSignature(signature)}')`);
  const goodEnd = await judge(range.good, 'good end', signature);
  checkGoodEnd(goodEnd, request.good, signature);

  const outcome = await bisect(
    range,
    async (commit) => (await judge(commit, 'step', signature)).judgement.verdict,
    new Map([[range.bad, 'bad' as StepVerdict]]),
  );
  const culprit = outcome.kind === 'found' ? info(outcome.culprit) : null;
  const evidenceTrial = trials.get(outcome.kind === 'found' ? outcome.culprit : range.bad)!;
  return {
    culprit,
    ...(outcome.kind === 'ambiguous' ? { candidates: outcome.candidates.map(info) } : {}),
    signature,
    expect: formatSignature(signature),
    good: info(range.good),
    bad: info(range.bad),
    rangeLength: range.commits.length,
    steps,
    evidence: await trialEvidence(evidenceTrial),
    builds: steps.filter((step) => step.build !== 'cached').length,
    totalSeconds: (Date.now() - started) / 1000,
  };
}

/** The bad end must fail, in a way a bisect can follow. */
function endsSignature(trial: Trial, ref: string): Signature {
  const where = `the bad end ${ref} (${trial.commit.slice(0, 12)})`;
  if (trial.buildError) {
    throw new HarnessError('usage', `${where} does not build: ${trial.buildError.message}`, { ...logOf(trial.buildError), excerpt: trial.buildError.excerpt });
  }
  const { verdict, reason } = trial.judgement;
  if (verdict === 'good') throw new HarnessError('usage', `${where} passes (${reason}): nothing to bisect; check --iommu and --scenario`);
  if (verdict === 'skip') throw new HarnessError('usage', `${where} could not be judged: ${reason}`);
  const failing = trial.results.find((result) => result.verdict === 'fail');
  const signature = failing && signatureOf(failing);
  if (!signature) throw new HarnessError('usage', `${where} fails without a leak or a kernel report (${reason}): a bisect has nothing to follow`);
  return signature;
}

/** The good end must build and must not show the signature. */
function checkGoodEnd(trial: Trial, ref: string, signature: Signature): void {
  const where = `the good end ${ref} (${trial.commit.slice(0, 12)})`;
  if (trial.buildError) {
    throw new HarnessError('usage', `${where} does not build: ${trial.buildError.message}`, { ...logOf(trial.buildError), excerpt: trial.buildError.excerpt });
  }
  const { verdict, reason } = trial.judgement;
  if (verdict === 'bad') throw new HarnessError('usage', `${where} shows the same ${describeSignature(signature)} (${reason}): the bug is older; pick an older --good`);
  if (verdict === 'skip') throw new HarnessError('usage', `${where} could not be judged: ${reason}`);
}

function logOf(error: HarnessError): { logPath?: string } {
  return error.logPath ? { logPath: error.logPath } : {};
}

function toStep(trial: Trial, subject: string, role: StepRole): BisectStep {
  return {
    commit: trial.commit,
    subject,
    role,
    verdict: trial.judgement.verdict,
    runs: trial.results.length,
    buildSeconds: round(trial.buildSeconds),
    totalSeconds: round(trial.seconds),
    build: trial.buildError ? 'failed' : trial.buildSeconds > 0 ? 'built' : 'cached',
    reason: trial.judgement.reason,
    ...(trial.kernelKey ? { kernelKey: trial.kernelKey } : {}),
    logs: [
      ...new Set([
        ...trial.results.flatMap((result) => result.runs.map((run) => run.logs.console)),
        ...(trial.buildError?.logPath ? [trial.buildError.logPath] : []),
      ]),
    ],
  };
}

function round(seconds: number): number {
  return Math.round(seconds * 10) / 10;
}
