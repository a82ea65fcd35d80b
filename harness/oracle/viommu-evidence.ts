// What one scenario's verdict takes from the vIOMMU ledger: its findings as
// reports, and why the ledger could not vouch for a device the scenario
// removed, when it could not. Pure.
import { judgeViommuTrace, type ViommuFinding, type ViommuJudgement } from './viommu-ledger.ts';
import { parseViommuTrace } from './viommu-trace.ts';

/** A finding in the shape of the result's reports (report/result.ts ResultReport). */
export interface ViommuReport {
  kind: 'viommu-state';
  title: string;
  text: string;
  corrupted: false;
  step?: string;
}

export interface ViommuScenarioEvidence {
  reports: ViommuReport[];
  /** Reasons the scenario cannot pass on this witness: it removed a device the ledger could not judge. */
  inconclusive: string[];
}

/** Judges a boot's trace once; no text (or an empty file) means QEMU recorded none. */
export function judgeViommuText(text: string | undefined): ViommuJudgement {
  if (!text) return { findings: [], checked: [], blind: 'QEMU wrote no vIOMMU trace' };
  return judgeViommuTrace(parseViommuTrace(text));
}

export function toViommuReport(finding: ViommuFinding): ViommuReport {
  return { kind: finding.kind, title: finding.title, text: finding.text, corrupted: false, ...(finding.step ? { step: finding.step } : {}) };
}

/**
 * The findings made in a scenario's steps, and a reason for every device it
 * removed that the ledger did not judge or never saw behind the vIOMMU.
 */
export function viommuScenarioEvidence(
  judgement: ViommuJudgement,
  goneDevices: readonly string[],
  inScenario: (step: string | undefined) => boolean,
): ViommuScenarioEvidence {
  const reports = judgement.findings.filter((finding) => inScenario(finding.step)).map(toViommuReport);
  const inconclusive: string[] = [];
  if (goneDevices.length === 0) return { reports, inconclusive };
  if (judgement.blind) {
    inconclusive.push(`vIOMMU ledger blind: ${judgement.blind}`);
    return { reports, inconclusive };
  }
  const checks = judgement.checked.filter((check) => inScenario(check.step));
  for (const device of new Set(goneDevices)) {
    const mine = checks.filter((check) => check.device === device);
    if (mine.length === 0) inconclusive.push(`vIOMMU ledger: the trace's console never showed ${device} leave, so its endpoint was not judged`);
    else if (!mine.some((check) => check.seen)) inconclusive.push(`vIOMMU ledger: the trace never showed ${device} behind the vIOMMU, so its departure proves nothing`);
  }
  return { reports, inconclusive };
}

/** What `parse` adds to a saved log's judgement when the boot's vIOMMU trace is there. */
export interface LogViommu {
  trace: string;
  iommu?: ViommuJudgement['iommu'];
  /** The departures the ledger judged. */
  checked: ViommuJudgement['checked'];
  blind?: string;
}

/**
 * A saved log judged again with its vIOMMU trace: each ledger finding is a
 * report and fails the log, as in a run; a blind ledger makes a log that
 * otherwise passes inconclusive.
 */
export function withViommuLedger<J extends { verdict: 'pass' | 'fail' | 'inconclusive'; reports: object[]; inconclusive: string[] }>(
  judgement: J,
  traceText: string,
  tracePath: string,
): J & { viommu: LogViommu } {
  const ledger = judgeViommuText(traceText);
  const reports = ledger.findings.map(toViommuReport);
  const inconclusive = ledger.blind ? [`vIOMMU ledger blind: ${ledger.blind}`] : [];
  const verdict = judgement.verdict === 'fail' || reports.length > 0 ? 'fail' : judgement.verdict === 'inconclusive' || inconclusive.length > 0 ? 'inconclusive' : 'pass';
  return {
    ...judgement,
    verdict,
    reports: [...judgement.reports, ...reports],
    inconclusive: [...judgement.inconclusive, ...inconclusive],
    viommu: { trace: tracePath, ...(ledger.iommu ? { iommu: ledger.iommu } : {}), checked: ledger.checked, ...(ledger.blind ? { blind: ledger.blind } : {}) },
  };
}
