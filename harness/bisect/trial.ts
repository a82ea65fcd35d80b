// One commit, tried: build it (incrementally, in the harness's worktree and
// build directory for the repository), then run the scenarios up to `runs`
// times, and judge. A commit that does not build, or whose uapi headers the
// guest helper does not compile against, is a skip, not an error.
import { readFile } from 'node:fs/promises';
import type { CacheLayout } from '../cache.ts';
import { HarnessError } from '../errors.ts';
import type { Progress } from '../log.ts';
import type { HarnessResult } from '../report/result.ts';
import { prepareKernel, runHarness, type RunRequest } from '../run.ts';
import { evidenceLines } from './evidence.ts';
import { judgeStep, type StepJudgement } from './judge.ts';
import { matchesSignature, type Signature } from './signature.ts';

/** What `run` would be asked, minus the commit. */
export type TrialRequest = Omit<RunRequest, 'ref' | 'progress' | 'runDir'> & { progress: Progress; layout: CacheLayout };

export interface Trial {
  commit: string;
  judgement: StepJudgement;
  results: HarnessResult[];
  /** 0 when the kernel came from the cache. */
  buildSeconds: number;
  /** Wall time of the whole trial: build, boots, scenarios. */
  seconds: number;
  /** The content key of the kernel in the cache; absent when it did not build. */
  kernelKey?: string;
  /** Why it did not build, with the log. */
  buildError?: HarnessError;
}

/**
 * Kinds of failure that belong to this commit rather than to the machine: the
 * code does not compile, a config option it lacks, a patch that does not fit it.
 */
const commitFailures = new Set(['build', 'config', 'patch']);
// harness/image/guest-helpers.ts compiles the helper against the commit's own uapi headers, so a
// commit whose headers it does not fit (a VFIO struct mid-rework) cannot be run, as one that does
// not build. The image's other failures (dropbear's libraries) are the host's: those still abort.
const helperMisfitRe = /^guest helper \S+ does not compile/;

/** Whether a failure to prepare the kernel and its guest is the commit's (a skip) rather than the machine's (an abort). */
export function isCommitFailure(error: unknown): error is HarnessError {
  if (!(error instanceof HarnessError)) return false;
  return commitFailures.has(error.kind) || (error.kind === 'image' && helperMisfitRe.test(error.message));
}

/** The stages a trial drives; a test replaces them to try the judging without a kernel. */
export interface TrialStages {
  prepareKernel: typeof prepareKernel;
  runHarness: typeof runHarness;
}

export async function tryCommit(
  request: TrialRequest,
  commit: string,
  runs: number,
  signature: Signature | undefined,
  stages: TrialStages = { prepareKernel, runHarness },
): Promise<Trial> {
  const started = Date.now();
  const seconds = () => (Date.now() - started) / 1000;
  let prepared;
  for (let attempt = 1; !prepared; attempt++) {
    try {
      prepared = await stages.prepareKernel({ ...kernelRequest(request), ref: commit }, request.progress, request.layout);
    } catch (error) {
      if (!isCommitFailure(error)) throw error;
      request.progress.warn(`${commit.slice(0, 12)}: ${error.message}`);
      // A failure that names no source line may be the build directory's, not the commit's: once more.
      if (attempt === 1 && error.kind === 'build' && !isCodeError(error.excerpt)) {
        request.progress.warn(`${commit.slice(0, 12)}: the build failed without a compiler error; building once more`);
        continue;
      }
      const judgement: StepJudgement = { verdict: 'skip', reason: `${error.kind} error: ${error.message}`, findings: [], otherFailures: [] };
      return { commit, judgement, results: [], buildSeconds: seconds(), seconds: seconds(), buildError: error };
    }
  }
  const results: HarnessResult[] = [];
  for (let attempt = 0; attempt < runs; attempt++) {
    // The kernel is in the cache now: this costs a boot and the scenarios.
    const result = await stages.runHarness({ ...request, ref: commit });
    results.push(result);
    // One sighting settles it: a leak seen on some runs only is still a leak.
    if (signature ? matchesSignature(result, signature) : result.verdict === 'fail') break;
  }
  return {
    commit,
    judgement: judgeStep(results, signature),
    results,
    buildSeconds: prepared.kernel.buildSeconds,
    seconds: seconds(),
    kernelKey: prepared.kernel.artifacts.key,
  };
}

/** Whether a failed build's first lines blame the code: a compiler or linker error at a source file. */
export function isCodeError(excerpt: readonly string[]): boolean {
  return excerpt.some((line) => /\.(c|h|S|lds|rs):\d+(:\d+)?: (fatal )?error:|undefined reference to|multiple definition of/.test(line));
}

function kernelRequest(request: TrialRequest) {
  return { ...(request.src ? { src: request.src } : {}), patches: request.patches, kconfigs: request.kconfigs };
}

/** The evidence of a judged trial: each finding that made it bad, with its console lines. */
export async function trialEvidence(trial: Trial): Promise<string[]> {
  const lines: string[] = [];
  const consoles = new Map<string, string>();
  for (const finding of trial.judgement.findings) {
    const file = finding.run.logs.console;
    if (!consoles.has(file)) consoles.set(file, await readFile(file, 'utf8').catch(() => ''));
    lines.push(...evidenceLines(finding, consoles.get(file)!));
  }
  const logs = [...new Set(trial.judgement.findings.map((finding) => finding.run.logs.console))];
  lines.push(...logs.map((log) => `console: ${log}`));
  return lines;
}
