// Whether a run could have shown a given failure: the question behind a bisect's "good", `check
// --expect`'s 0 and the nightly's "fixed". The verdict does not answer it: a run that FAILs on one
// report, with lockdep already off, is as blind to a lock inversion as one that came out
// inconclusive, and a run whose only blind spot is lockdep still sees every leak. So each blind
// check a run carries (ScenarioRun.inconclusive, filled whatever the verdict) is held against what
// is sought, and one-shot warnings the boot already spent are read off its reports. Pure.
import { oneShotMessage, type ReportKind } from '../oracle/index.ts';
import { kindOfTitle } from '../oracle/kinds.ts';
import type { ScenarioRun } from '../report/result.ts';

export type Sought =
  /** A group left unreleased: the kernel log's group ledger and sysfs. */
  | { kind: 'leak' }
  /** A kernel report. `message`: its one-shot message, when it has one (see oneShotMessage). */
  | { kind: 'report'; title: string; reportKind?: ReportKind; message?: string }
  /** A scenario's own expectation, or a group check (a double release, a witness disagreement). */
  | { kind: 'check' };

type BlindCheck = 'log' | 'viommu' | 'lockdep' | 'kmemleak' | 'refcount' | 'hang';

// Read from the reasons' wording (harness/report/verdict.ts, harness/oracle/viommu-evidence.ts,
// harness/scenario/runner.ts and retry.ts, which may prefix them with the boot they come from).
// Lost log lines come first: they blind every check, so a reason that also names another check
// must never be narrowed to it. A reason none of these knows blinds everything.
const reasonChecks: Array<[RegExp, BlindCheck]> = [
  [/dropped|suppressed|may be missing|log (?:lines|messages)/i, 'log'],
  [/vIOMMU ledger/, 'viommu'],
  [/hung-task timeout/, 'hang'],
  [/lock checking|lockdep|lock inversion|locking correctness/i, 'lockdep'],
  [/kmemleak|memory leak could/i, 'kmemleak'],
  [/refcount_t: /, 'refcount'],
];

/** The check a blind-spot reason is about; undefined when the wording is not known here. */
export function checkOfReason(reason: string): BlindCheck | undefined {
  return reasonChecks.find(([re]) => re.test(reason))?.[1];
}

function hides(reason: string, sought: Sought): boolean {
  const check = checkOfReason(reason);
  if (check === undefined || check === 'log') return true;
  if (sought.kind !== 'report') return false;
  const kind = sought.reportKind ?? kindOfTitle(sought.title);
  switch (check) {
    case 'lockdep':
      return kind === 'lockdep';
    case 'kmemleak':
      return kind === 'kmemleak';
    case 'viommu':
      return kind === 'viommu-state';
    case 'refcount':
      return kind === 'refcount' && (sought.message === undefined || reason.includes(sought.message));
    case 'hang':
      return kind === 'hang';
  }
}

/**
 * Why `runs` could not have shown `sought`: the first run blind to it, with the reasons that bear
 * on it; undefined when every run could have shown it.
 */
export function blindness(runs: readonly ScenarioRun[], sought: Sought): string | undefined {
  for (const run of runs) {
    const reasons = (run.inconclusive ?? []).filter((reason) => hides(reason, sought));
    if (reasons.length > 0) {
      return `${run.iommu}/${run.scenario} ${run.verdict === 'inconclusive' ? 'is inconclusive' : `(${run.verdict}) was blind to it`}: ${reasons.join('; ')}`;
    }
  }
  return spentOneShot(runs, sought);
}

/**
 * A refcount_t warning of the same type already printed in the boot (known or not, the kernel's
 * once-flag is set either way): a later one printed nothing. Without the sought one's message
 * (a title typed on the command line) any refcount warning may have been it.
 */
function spentOneShot(runs: readonly ScenarioRun[], sought: Sought): string | undefined {
  if (sought.kind !== 'report' || (sought.reportKind ?? kindOfTitle(sought.title)) !== 'refcount') return undefined;
  for (const run of runs) {
    for (const report of run.reports) {
      if (report.title === sought.title) continue;
      const message = oneShotMessage({ kind: report.kind, lines: report.text.split('\n') });
      if (message === undefined || (sought.message !== undefined && message !== sought.message)) continue;
      const where = `${run.iommu}/${run.scenario}`;
      return `${where}: "${message}" was printed already (${report.title}${report.step ? ` in ${report.step}` : ''}): the kernel warns once per refcount type, so another printed nothing`;
    }
  }
  return undefined;
}
