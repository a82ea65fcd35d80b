// One commit's verdict for a bisect, from the results of its runs. Pure.
//
// Bad: some run shows the signature (a leak seen on one run of three is a
// leak). Good: no run shows it and every run could have shown it: the
// scenario finished, and for a leak the device's group was seen released. A
// different failure alone does not make a commit bad or skipped: a WARNING
// elsewhere does not hide a group that was released. Skip: the commit could
// not be judged (a scenario stopped early, the kernel did not boot), or a run
// was blind to the signature whatever its verdict (lockdep off for a lock
// inversion, a refcount type already spent for a refcount warning, lost log
// lines for anything: harness/bisect/blindness.ts). A run that FAILs on
// another report is no less blind than an inconclusive one.
// Without a signature (`check` with no --expect) any failure is bad.
import type { HarnessResult, ScenarioRun } from '../report/result.ts';
import { blindness } from './blindness.ts';
import { describeFinding, failingFindings, findingsMatching, type MatchedFinding, type Signature } from './signature.ts';

export type StepVerdict = 'good' | 'bad' | 'skip';

export interface StepJudgement {
  verdict: StepVerdict;
  /** One line saying why. */
  reason: string;
  /** The findings that made it bad (the signature's, or any failure's without one). */
  findings: MatchedFinding[];
  /** Failures that are not the signature, shown so nobody mistakes good for clean. */
  otherFailures: string[];
}

export function judgeStep(results: readonly HarnessResult[], signature: Signature | undefined): StepJudgement {
  if (results.length === 0) return { verdict: 'skip', reason: 'nothing was run', findings: [], otherFailures: [] };
  if (!signature) return judgeAnyFailure(results);

  const findings = results.flatMap((result) => findingsMatching(result, signature));
  const otherFailures = unique(
    results
      .flatMap(failingFindings)
      .filter((finding) => !findings.some((match) => match.run === finding.run && match.leak === finding.leak && match.report === finding.report))
      .map(describeFinding),
  );
  if (findings.length > 0) {
    const runsShowing = results.filter((result) => findingsMatching(result, signature).length > 0).length;
    return { verdict: 'bad', reason: `${describeFinding(findings[0]!)} (${runsShowing} of ${results.length} run(s))`, findings, otherFailures };
  }
  for (const result of results) {
    const unseen = whyUnobservable(result, signature);
    if (unseen) return { verdict: 'skip', reason: unseen, findings: [], otherFailures };
  }
  const others = otherFailures.length ? `; other failures: ${otherFailures.join('; ')}` : '';
  return { verdict: 'good', reason: `no ${signature.kind === 'leak' ? 'such leak' : 'such report'} in ${results.length} run(s)${others}`, findings: [], otherFailures };
}

function judgeAnyFailure(results: readonly HarnessResult[]): StepJudgement {
  // Leaks first, as signatureOf picks them: the bad end's line names what the bisect will follow.
  const findings = results.flatMap(failingFindings).sort((a, b) => Number(Boolean(b.leak)) - Number(Boolean(a.leak)));
  if (findings.length > 0) return { verdict: 'bad', reason: describeFinding(findings[0]!), findings, otherFailures: [] };
  const errored = results.flatMap((result) => result.runs).find((run) => run.error);
  if (errored || results.some((result) => result.verdict === 'error')) {
    return { verdict: 'skip', reason: errored ? `${errored.iommu}/${errored.scenario}: ${errored.error}` : 'a run could not be judged', findings: [], otherFailures: [] };
  }
  const wholly = results.find((result) => result.inconclusive?.length);
  if (wholly) return { verdict: 'skip', reason: `the run is inconclusive: ${wholly.inconclusive!.join('; ')}`, findings: [], otherFailures: [] };
  const blind = results.flatMap((result) => result.runs).find((run) => run.verdict === 'inconclusive');
  if (blind) return { verdict: 'skip', reason: `${where(blind)} is inconclusive: ${blind.inconclusive.join('; ')}`, findings: [], otherFailures: [] };
  return { verdict: 'good', reason: `every scenario passed in ${results.length} run(s)`, findings: [], otherFailures: [] };
}

/** Why this result cannot show whether the signature is there; undefined when it can. */
function whyUnobservable(result: HarnessResult, signature: Signature): string | undefined {
  // Said of the run as a whole (none of the patch's code was built): blind to anything.
  if (result.inconclusive?.length) return `the run is inconclusive: ${result.inconclusive.join('; ')}`;
  if (signature.kind === 'leak') {
    const runs = result.runs.filter((run) => (signature.scenario === undefined ? run.scenario !== 'boot' : run.scenario === signature.scenario));
    if (runs.length === 0) return `no run of ${signature.scenario ?? 'any scenario'}: the leak could not have been seen`;
    for (const run of runs) {
      if (run.error) return `${where(run)} did not finish (${run.error}): the leak could not have been seen`;
      if (signature.device !== undefined && !run.groups.some((group) => group.released && group.devices.includes(signature.device!))) {
        return `${where(run)}: ${signature.device} was never seen in a released group, so its absence proves nothing`;
      }
    }
    const boot = result.runs.find((run) => run.scenario === 'boot' && run.error);
    if (boot) return `${where(boot)}: ${boot.error}`;
    return blindness(runs, { kind: 'leak' });
  }
  const errored = result.runs.find((run) => run.error);
  if (errored) return `${where(errored)} did not finish (${errored.error}): the report could not have been seen`;
  // A report can land in any run; any run that was blind could have hidden it.
  return blindness(result.runs, { kind: 'report', title: signature.title, ...(signature.reportKind ? { reportKind: signature.reportKind } : {}), ...(signature.message ? { message: signature.message } : {}) });
}

function where(run: ScenarioRun): string {
  return `${run.iommu}/${run.scenario}`;
}

function unique(lines: string[]): string[] {
  return [...new Set(lines)];
}

/** `git bisect run`'s language: 0 good, 1 bad, 125 skip. 128 and above (abort) is for errors, decided by the caller. */
export const bisectRunExitCode: Record<StepVerdict, number> = { good: 0, bad: 1, skip: 125 };
