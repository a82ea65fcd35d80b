// What "the same failure" means across commits. A bisect must not blame the
// first commit that fails in any way: it follows one failure, named by
// something that stays put while the code around it changes. Group ids are
// allocated at boot and shift when a commit adds or drops a device, so a leak
// is keyed on the scenario step and the device's BDF; a report on its
// syzkaller-style title, which names a function, not an address. Pure.
import { oneShotMessage, type ReportKind } from '../oracle/index.ts';
import type { HarnessResult, ResultLeak, ResultReport, ScenarioRun } from '../report/result.ts';

export type Signature = LeakSignature | ReportSignature;

/** A group left unreleased after its device went away. Absent fields match anything. */
export interface LeakSignature {
  kind: 'leak';
  /** The scenario the leak appeared in, e.g. "vfio-bind-unbind". */
  scenario?: string;
  /** The step in which the group's last device left, e.g. "vfio-bind-unbind/remove". */
  step?: string;
  /** A device of the leaked group, e.g. "0000:01:00.0". */
  device?: string;
}

/** A kernel report (WARNING, lockdep, refcount...) with this title. */
export interface ReportSignature {
  kind: 'report';
  /** e.g. "WARNING in iommu_group_release". */
  title: string;
  /** What the bad end printed; only used to know when the report could not have been seen. */
  reportKind?: ReportKind;
  /** The bad end's one-shot message (a refcount_t type), for the same reason. */
  message?: string;
}

/** A finding of a result that carries the signature, with where it was seen. */
export interface MatchedFinding {
  run: ScenarioRun;
  /** Neither set: the run failed for another reason (a scenario's own check). */
  leak?: ResultLeak;
  report?: ResultReport;
}

/**
 * The failure a bisect follows: the first leak if there is one (this is a
 * leak hunter, and a leak often drags a WARNING or refcount report after it),
 * else the first report that is not a known issue. Undefined when nothing failed.
 */
export function signatureOf(result: HarnessResult): Signature | undefined {
  for (const run of result.runs) {
    const leak = run.leaks[0];
    if (leak) return leakSignature(run, leak);
  }
  for (const run of result.runs) {
    const report = run.reports.find((candidate) => !candidate.known);
    if (report) {
      const message = oneShotMessage({ kind: report.kind, lines: report.text.split('\n') });
      return { kind: 'report', title: report.title, reportKind: report.kind, ...(message ? { message } : {}) };
    }
  }
  return undefined;
}

function leakSignature(run: ScenarioRun, leak: ResultLeak): LeakSignature {
  const signature: LeakSignature = { kind: 'leak', scenario: run.scenario };
  if (leak.step) signature.step = leak.step;
  // Sorted so a group of several devices always yields the same one.
  const device = [...leak.devices].sort()[0];
  if (device) signature.device = device;
  return signature;
}

/** Every finding of `result` that carries `signature`; known issues never do. */
export function findingsMatching(result: HarnessResult, signature: Signature): MatchedFinding[] {
  const found: MatchedFinding[] = [];
  for (const run of result.runs) {
    if (signature.kind === 'leak') {
      if (signature.scenario !== undefined && run.scenario !== signature.scenario) continue;
      for (const leak of run.leaks) {
        if (signature.step !== undefined && leak.step !== signature.step) continue;
        if (signature.device !== undefined && !leak.devices.includes(signature.device)) continue;
        found.push({ run, leak });
      }
    } else {
      for (const report of run.reports) {
        if (!report.known && report.title === signature.title) found.push({ run, report });
      }
    }
  }
  return found;
}

export function matchesSignature(result: HarnessResult, signature: Signature): boolean {
  return findingsMatching(result, signature).length > 0;
}

/**
 * The failing findings of a result, for "any failure" and for showing what
 * else went wrong. A run can fail for a reason that is neither a leak nor a
 * report (a scenario's own check); it is listed as the run itself.
 */
export function failingFindings(result: HarnessResult): MatchedFinding[] {
  return result.runs.flatMap((run) => {
    const findings: MatchedFinding[] = [
      ...run.leaks.map((leak) => ({ run, leak })),
      ...run.reports.filter((report) => !report.known).map((report) => ({ run, report })),
    ];
    return findings.length === 0 && run.verdict === 'fail' ? [{ run }] : findings;
  });
}

/**
 * The command-line form, also accepted by `--expect`:
 * `leak:SCENARIO/STEP:BDF` (`leak`, `leak:SCENARIO` and `leak:SCENARIO/STEP`
 * match more loosely), or a report title, optionally written `report:TITLE`.
 */
export function formatSignature(signature: Signature): string {
  if (signature.kind === 'report') return signature.title;
  const where = signature.step ?? signature.scenario;
  if (!where) return signature.device ? `leak:*:${signature.device}` : 'leak';
  return `leak:${where}${signature.device ? `:${signature.device}` : ''}`;
}

export class SignatureSyntaxError extends Error {}

export function parseSignature(text: string): Signature {
  const trimmed = text.trim();
  if (!trimmed) throw new SignatureSyntaxError('an empty signature: give a report title or leak:SCENARIO/STEP:BDF');
  if (/^report:/i.test(trimmed)) {
    const title = trimmed.slice('report:'.length).trim();
    if (!title) throw new SignatureSyntaxError(`"${text}" names no report title`);
    return { kind: 'report', title };
  }
  if (!/^leak(:|$)/i.test(trimmed)) return { kind: 'report', title: trimmed };
  const signature: LeakSignature = { kind: 'leak' };
  const rest = trimmed.slice('leak'.length).replace(/^:/, '');
  if (!rest) return signature;
  // A BDF has colons of its own; a scenario or step never does, so the first one splits.
  const colon = rest.indexOf(':');
  const where = colon < 0 ? rest : rest.slice(0, colon);
  const device = colon < 0 ? '' : rest.slice(colon + 1);
  if (where && where !== '*') {
    const slash = where.indexOf('/');
    signature.scenario = slash < 0 ? where : where.slice(0, slash);
    if (slash >= 0) signature.step = where;
  }
  if (device && device !== '*') {
    if (!/^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/i.test(device)) {
      throw new SignatureSyntaxError(`"${device}" is not a PCI address like 0000:01:00.0 (in "${text}")`);
    }
    signature.device = device.toLowerCase();
  }
  return signature;
}

/** One line for people: "leak of 0000:01:00.0's iommu group after vfio-bind-unbind/remove". */
export function describeSignature(signature: Signature): string {
  if (signature.kind === 'report') return `report "${signature.title}"`;
  const whose = signature.device ? `${signature.device}'s iommu group` : 'an iommu group';
  const when = signature.step ? ` after ${signature.step}` : signature.scenario ? ` in ${signature.scenario}` : '';
  return `leak of ${whose}${when}`;
}

/** One line per finding, as the table prints it. */
export function describeFinding(finding: MatchedFinding): string {
  const where = `${finding.run.iommu}/${finding.run.scenario}`;
  if (finding.leak) {
    const { leak } = finding;
    return `${where}: LEAK: iommu group ${leak.group} (${leak.devices.join(', ')}) never released${leak.step ? ` after ${leak.step}` : ''}`;
  }
  const { report } = finding;
  if (!report) return `${where}: FAIL (see its table row)`;
  return `${where}: ${report.kind.toUpperCase()}: ${report.title}${report.step ? ` [${report.step}]` : ''}`;
}
