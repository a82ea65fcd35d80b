// `--each-patch`: a series built and judged patch by patch, as the 0-day
// robot and ktest's PATCHCHECK do, so each finding is blamed on the first
// patch that brings it. The base alone first (a finding already there is no
// patch's), then prefixes 1, 1..2, ... go through runHarness one after
// the other: the same worktree and build directory, so every build after the
// first is incremental. A finding is followed across prefixes by the bisect's
// signature (a leak by its scenario step and device, a report by its title),
// which stays put while group ids shift.
import { HarnessError } from './errors.ts';
import { describeFinding, findingsMatching, failingFindings, type MatchedFinding, type Signature } from './bisect/signature.ts';
import type { HarnessResult, IntroducedBy, SeriesStep } from './report/result.ts';
import { runHarness, type RunRequest } from './run.ts';
import type { Series } from './source/series.ts';

export async function runEachPatch(request: Omit<RunRequest, 'patches'>, series: Series, run: (request: RunRequest) => Promise<HarnessResult> = runHarness): Promise<HarnessResult> {
  const { patches } = series;
  if (patches.length === 0) throw new HarnessError('usage', '--each-patch needs a series: give --patch');
  request.progress.step(`--each-patch: the base first, without the series, so what it already shows is blamed on no patch`);
  let base: HarnessResult;
  try {
    base = await run({ ...request, patches: [] });
  } catch (error) {
    if (error instanceof HarnessError) throw new HarnessError(error.kind, `the base, without the series: ${error.message}`, { ...(error.logPath ? { logPath: error.logPath } : {}), excerpt: error.excerpt, cause: error });
    throw error;
  }
  const results: HarnessResult[] = [];
  for (const [at, patch] of patches.entries()) {
    request.progress.step(`--each-patch: ${patch.subject} (${at + 1} of ${patches.length}${at > 0 ? `, on top of the ${at} before it` : ''})`);
    try {
      results.push(await run({ ...request, patches: patches.slice(0, at + 1).map((each) => each.file) }));
    } catch (error) {
      // Which patch broke the build (or did not apply) is the answer a series needs.
      if (error instanceof HarnessError) throw new HarnessError(error.kind, `${patch.subject}: ${error.message}`, { ...(error.logPath ? { logPath: error.logPath } : {}), excerpt: error.excerpt, cause: error });
      throw error;
    }
  }
  return attribute(results, series, base);
}

/**
 * The whole series' result (the last prefix's) with each leak and report
 * marked with the first patch whose prefix shows it, and a line per patch.
 * Pure: `results[i]` is the result of patches 1..i+1.
 */
export function attribute(results: HarnessResult[], series: Series, base?: HarnessResult): HarnessResult {
  const last = results.at(-1);
  if (!last) throw new Error('attribute: no result');
  const byIndex = (index: number): IntroducedBy => ({ index: index + 1, subject: series.patches[index]?.subject ?? `patch ${index + 1}` });
  const firstWith = (finding: MatchedFinding): IntroducedBy => {
    // Index 0: the base showed it before any patch of the series was applied.
    if (base && shows(base, finding)) return { index: 0, subject: 'the base, before the series (not brought by a patch)' };
    const found = results.findIndex((result) => shows(result, finding));
    return byIndex(found < 0 ? results.length - 1 : found);
  };
  const runs = last.runs.map((run) => ({
    ...run,
    leaks: run.leaks.map((leak) => ({ ...leak, introducedBy: firstWith({ run, leak }) })),
    reports: run.reports.map((report) => (report.known ? report : { ...report, introducedBy: firstWith({ run, report }) })),
  }));
  const steps: SeriesStep[] = results.map((result, index) => {
    const previous = index > 0 ? results[index - 1] : base;
    const before = previous ? failingFindings(previous) : [];
    const now = failingFindings(result);
    return {
      index: index + 1,
      subject: series.patches[index]?.subject ?? `patch ${index + 1}`,
      file: series.patches[index]?.file ?? '',
      verdict: result.verdict,
      introduced: now.filter((finding) => !previous || !shows(previous, finding)).map(describeFinding),
      gone: before.filter((finding) => !shows(result, finding)).map(describeFinding),
      buildSeconds: result.timings.buildSeconds,
    };
  });
  return {
    ...last,
    runs,
    timings: { ...last.timings, buildSeconds: [...(base ? [base] : []), ...results].reduce((sum, result) => sum + result.timings.buildSeconds, 0) },
    series: { patches: steps, skipped: series.skipped.map((cover) => cover.subject) },
  };
}

/** Whether `result` has the same finding on the same machine: its signature, or a failed run of the same scenario. */
function shows(result: HarnessResult, finding: MatchedFinding): boolean {
  const signature = signatureOfFinding(finding);
  if (!signature) return result.runs.some((run) => run.iommu === finding.run.iommu && run.scenario === finding.run.scenario && run.verdict === 'fail');
  return findingsMatching(result, signature).some((match) => match.run.iommu === finding.run.iommu);
}

function signatureOfFinding(finding: MatchedFinding): Signature | undefined {
  if (finding.leak) {
    const device = [...finding.leak.devices].sort()[0];
    return { kind: 'leak', scenario: finding.run.scenario, ...(finding.leak.step ? { step: finding.leak.step } : {}), ...(device ? { device } : {}) };
  }
  if (finding.report) return { kind: 'report', title: finding.report.title };
  return undefined;
}
