// From one boot's console and dmesg to a judged run per scenario. Pure: the
// runner hands it text and what the scenarios did.
import {
  accountGroups,
  applyKnownIssues,
  parseKernelLog,
  type GroupRecord,
  type KernelReport,
  type KnownIssue,
  type ParsedLog,
} from '../oracle/index.ts';
import type { IommuModel } from '../machine/topology.ts';
import type { ResultReport, ScenarioRun, Verdict } from './result.ts';

export interface ScenarioOutcome {
  scenario: string;
  /** The guest-side failure that stopped the scenario, if any. */
  error?: string;
  /** Devices the scenario removed; each must have been in a group and that group released. */
  goneDevices: string[];
  /** Every device the scenario used. */
  devices: string[];
  /** Device to group, as sysfs showed it in the guest. */
  observedGroups?: Record<string, number>;
  /** The scenario's own expectations that did not hold. */
  failedChecks?: string[];
  /** sysfs's iommu groups (id to devices) at the end of each step: the ledger's second witness. */
  sysfsGroups?: { step: string; groups: Record<number, string[]> }[];
}

export interface BootEvidence {
  iommu: IommuModel;
  accel: 'kvm' | 'tcg';
  console: string;
  dmesg?: string;
  consolePath: string;
  dmesgPath?: string;
  outcomes: ScenarioOutcome[];
  /** Why the boot as a whole failed after it started (QEMU died, a panic). */
  bootError?: string;
  known: KnownIssue[];
}

export const bootScenario = 'boot';

export function judgeBoot(evidence: BootEvidence): ScenarioRun[] {
  const fromConsole = parseKernelLog(evidence.console);
  // The console has everything from the first byte and survives a panic; dmesg
  // is read over SSH and may add what a busy console interleaved.
  const fromDmesg = evidence.dmesg ? parseKernelLog(evidence.dmesg) : undefined;
  const reports = applyKnownIssues(mergeReports(fromConsole.reports, fromDmesg?.reports ?? []), evidence.known);
  const groupSource = chooseGroupSource(fromConsole, fromDmesg);
  const accounting = accountGroups(groupSource.groupEvents);
  const lockdepOff = fromConsole.lockdepOff ?? fromDmesg?.lockdepOff;
  const lockdepOffOrder = lockdepOff?.step ? stepOrder(evidence.outcomes, lockdepOff.step) : lockdepOff ? -1 : Infinity;

  const inScenario = (step: string | undefined, scenario: string) =>
    scenario === bootScenario ? step === undefined || !step.includes('/') : step?.startsWith(`${scenario}/`) ?? false;

  const runs: ScenarioRun[] = [];
  const all = [{ scenario: bootScenario, goneDevices: [], devices: [] } as ScenarioOutcome, ...evidence.outcomes];
  all.forEach((outcome, index) => {
    const scenarioReports = reports.filter((report) => inScenario(report.step, outcome.scenario)).map(toResultReport);
    const leaks = accounting.leaks.filter((leak) => inScenario(leak.step, outcome.scenario));
    const anomalies = accounting.anomalies
      .map((anomaly) => ({ ...anomaly, step: stepAtLine(groupSource, anomaly.line) }))
      .filter((anomaly) => inScenario(anomaly.step, outcome.scenario));
    // A group released twice is a refcount bug whatever else the kernel said;
    // a release of a group the log never showed is only worth a note.
    const groupChecks = anomalies
      .filter((anomaly) => anomaly.kind === 'double-release')
      .map((anomaly) => `${anomaly.step ?? 'boot'}: iommu group ${anomaly.group} released twice`);
    const groups = groupsTouching(accounting.groups, outcome.devices, scenarioSpan(groupSource, outcome.scenario));
    const notes: string[] = [];
    let error = outcome.error;
    if (!error && outcome.scenario === bootScenario && evidence.bootError) error = evidence.bootError;
    for (const device of outcome.goneDevices) {
      if (!accounting.groups.some((group) => group.devices.includes(device))) {
        error ??= `${device} left without ever joining an iommu group: nothing could be accounted`;
      }
    }
    for (const [device, id] of Object.entries(outcome.observedGroups ?? {})) {
      if (!accounting.groups.some((group) => group.id === id && group.devices.includes(device))) {
        error ??= `sysfs put ${device} in iommu group ${id}, but the kernel log never showed it joining: the log is incomplete`;
      }
    }
    for (const anomaly of anomalies.filter((candidate) => candidate.kind === 'release-of-unknown')) {
      notes.push(`iommu group ${anomaly.group} was released but the log never showed it made`);
    }
    if (lockdepOff && index - 1 > lockdepOffOrder) {
      notes.push(`lock checking was off from ${lockdepOff.step ?? 'boot'} (${lockdepOff.title}): later lock bugs cannot be seen`);
    }
    runs.push({
      iommu: evidence.iommu,
      scenario: outcome.scenario,
      verdict: judge(scenarioReports, leaks.length + (outcome.failedChecks?.length ?? 0) + groupChecks.length, error),
      groups: groups.map((group) => ({ id: group.id, devices: group.devices, released: group.released })),
      leaks: leaks.map((leak) => ({ group: leak.group, devices: leak.devices, ...(leak.step ? { step: leak.step } : {}) })),
      reports: scenarioReports,
      failedChecks: [...(outcome.failedChecks ?? []), ...groupChecks],
      ...(error ? { error } : {}),
      notes,
      accel: evidence.accel,
      logs: { console: evidence.consolePath, ...(evidence.dmesgPath ? { dmesg: evidence.dmesgPath } : {}) },
    });
  });
  return runs;
}

function judge(reports: ResultReport[], findings: number, error: string | undefined): Verdict {
  if (findings > 0 || reports.some((report) => !report.known)) return 'fail';
  return error ? 'error' : 'pass';
}

function stepOrder(outcomes: ScenarioOutcome[], step: string): number {
  return outcomes.findIndex((outcome) => step.startsWith(`${outcome.scenario}/`));
}

/** The capture whose group events carry the harness's marks; the console unless it lost them. */
function chooseGroupSource(console: ParsedLog, dmesg: ParsedLog | undefined): ParsedLog {
  if (!dmesg) return console;
  return console.marks.length >= dmesg.marks.length ? console : dmesg;
}

function mergeReports(primary: KernelReport[], secondary: KernelReport[]): KernelReport[] {
  const titles = new Set(primary.map((report) => report.title));
  return [...primary, ...secondary.filter((report) => !titles.has(report.title))];
}

function stepAtLine(log: ParsedLog, line: number): string | undefined {
  return log.marks.filter((mark) => mark.line < line).at(-1)?.step;
}

/** Lines from a scenario's first mark to the next scenario's first mark. */
function scenarioSpan(log: ParsedLog, scenario: string): { start: number; end: number } {
  const first = log.marks.findIndex((mark) => mark.step.startsWith(`${scenario}/`));
  if (first < 0) return { start: Infinity, end: -Infinity };
  const next = log.marks.slice(first).find((mark) => !mark.step.startsWith(`${scenario}/`));
  return { start: log.marks[first]!.line, end: next?.line ?? Infinity };
}

/** Group instances holding one of the scenario's devices while the scenario ran. */
function groupsTouching(groups: GroupRecord[], devices: string[], span: { start: number; end: number }): GroupRecord[] {
  return groups.filter(
    (group) =>
      group.devices.some((device) => devices.includes(device)) &&
      (group.allocatedLine ?? -1) < span.end &&
      (group.releasedLine ?? Infinity) > span.start,
  );
}

export function toResultReport(report: KernelReport): ResultReport {
  return {
    kind: report.kind,
    title: report.title,
    text: report.lines.join('\n'),
    corrupted: report.corrupted,
    ...(report.step ? { step: report.step } : {}),
    ...(report.location ? { location: report.location } : {}),
    ...(report.guiltyFrame ? { guiltyFrame: report.guiltyFrame } : {}),
    ...(report.known ? { known: report.known.reason } : {}),
  };
}
