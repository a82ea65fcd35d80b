// From one boot's console and dmesg to a judged run per scenario. Pure: the
// runner hands it text and what the scenarios did.
//
// A run is judged on evidence, in this order: a finding (a report that is not a known issue, a
// leak, a failed check) makes it "fail"; else a guest-side failure makes it "error"; else a check
// the verdict relies on that was off or blind during the scenario's steps makes it "inconclusive"
// (lockdep already off, kmemleak disabled, log lines dropped); else "pass".
import {
  accountGroups,
  appliesToRelease,
  applyKnownIssues,
  holdLedgerAgainstSysfs,
  matchesKnownIssue,
  parseKernelLog,
  scenarioOfStep,
  type BlindSpot,
  type GroupAnomaly,
  type GroupEvent,
  type GroupRecord,
  type KernelReport,
  type KnownIssue,
  type LeakFinding,
  type ParsedLog,
  type SysfsSnapshot,
  type WitnessDisagreement,
} from '../oracle/index.ts';
import { machineOf } from '../machine/machines.ts';
import type { IommuModel } from '../machine/topology.ts';
import type { GuestCost } from '../scenario/guest-cost.ts';
import { judgeViommuText, viommuScenarioEvidence } from '../oracle/viommu-evidence.ts';
import type { ResultCase, ResultLeak, ResultReport, ResultSuite, ScenarioRun, Verdict } from './result.ts';

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
  /**
   * /sys/kernel/iommu_groups at the end of each step, in order, read before the next step's mark
   * was written: `step` is that step's mark (SCENARIO/STEP), `groups` each group id with the
   * devices its devices/ folder listed (none for an empty group). The second witness the log's
   * group ledger is held against.
   */
  sysfsGroups?: SysfsSnapshot[];
  /** The scenario's own expectations that did not hold. */
  failedChecks?: string[];
  /** Steps not run because the kernel lacks a feature they need. */
  skippedSteps?: { step: string; reason: string }[];
  /** Where the scenario's seconds went (all its cycles). */
  cost?: GuestCost;
  /**
   * The step the guest was lost in (QEMU ended or hung, or SSH stopped answering): a group whose last
   * device left there may have been released after the log stopped, so it proves no leak.
   */
  lostInStep?: string;
  /**
   * After `error` the guest still answered SSH, QEMU was alive and answering QMP and the guest's NIC
   * had not stalled: no harness cause is known, so a failure that is the kernel's to answer for (a
   * VFIO ioctl refused, DMA data that came back wrong) is a finding.
   */
  guestAnswered?: boolean;
  /** Checks the runner could not switch on or run for this scenario (the hung-task timeout, the kmemleak scan), one reason each. */
  inconclusive?: string[];
  /** The cases of the in-tree test suites the scenario ran (harness/selftest/), in order. */
  cases?: ResultCase[];
  suites?: ResultSuite[];
  /** A `not ok` case's finding (kind `selftest`), placed in its case's step; matched against the known issues like a kernel report. */
  caseReports?: ResultReport[];
  /** The scenario exists to run suites (Scenario.selftests or a kconfig of its own): no case run is no evidence. */
  runsSuites?: boolean;
  /** Steps (and the steps under them) that inject allocation failures on purpose (iommufd_fail_nth's cases). */
  faultInjectionSteps?: string[];
}

export interface BootEvidence {
  iommu: IommuModel;
  accel: 'kvm' | 'tcg';
  console: string;
  dmesg?: string;
  /**
   * /sys/kernel/debug/kmemleak after the scans, judged under the kmemleak pseudo-scenario; absent
   * when no scan ran. Kept apart from dmesg: a mark appended there would make a ring buffer that
   * wrapped look more complete than the console.
   */
  kmemleak?: string;
  consolePath: string;
  dmesgPath?: string;
  outcomes: ScenarioOutcome[];
  /** Why the boot as a whole failed after it started (QEMU died, a panic). */
  bootError?: string;
  known: KnownIssue[];
  /**
   * The vIOMMU's trace, viommu-trace.log (harness/oracle/viommu-trace.ts), '' when QEMU wrote none;
   * absent when the caller judges without that witness.
   */
  viommuTrace?: string;
}

export const bootScenario = 'boot';
/** The pseudo-scenario of the kmemleak scan after the scenarios (harness/scenario/runner.ts): it relies on kmemleak alone. */
const kmemleakScan = 'kmemleak';

export function judgeBoot(evidence: BootEvidence): ScenarioRun[] {
  const fromConsole = parseKernelLog(evidence.console);
  // The console has everything from the first byte and survives a panic; dmesg
  // is read over SSH and may add what a busy console interleaved.
  const fromDmesg = evidence.dmesg ? parseKernelLog(evidence.dmesg) : undefined;
  // The dump has no timestamps and belongs to no step of the log: a mark of its own places it.
  const fromKmemleak = evidence.kmemleak === undefined ? [] : parseKernelLog(`iommu-harness: step ${kmemleakScan}/scan\n${evidence.kmemleak}`).reports;
  const release = fromConsole.release ?? fromDmesg?.release;
  const reports = applyKnownIssues([...mergeReports(fromConsole.reports, fromDmesg?.reports ?? []), ...fromKmemleak], evidence.known, {
    iommu: evidence.iommu,
    ...(release ? { release } : {}),
  });
  const groupSource = chooseGroupSource(fromConsole, fromDmesg);
  const accounting = accountGroups(groupSource.groupEvents);
  // "Adding to iommu group" is dev_info, always printed; "Allocated group" and "Releasing group" are
  // pr_debug, printed only through dynamic debug. Without them every removal would read as a leak.
  const lifecycleSilent =
    groupSource.groupEvents.some((event) => event.type === 'device-added') &&
    !groupSource.groupEvents.some((event) => event.type === 'allocated' || event.type === 'released');

  const inScenario = (step: string | undefined, scenario: string) =>
    scenario === bootScenario ? step === undefined || !step.includes('/') : step?.startsWith(`${scenario}/`) ?? false;

  // The third witness: the device model's own ledger of endpoints, domains and invalidations.
  const viommu = !machineOf(evidence.iommu).ledger || evidence.viommuTrace === undefined ? undefined : judgeViommuText(evidence.viommuTrace);

  const runs: ScenarioRun[] = [];
  const all = [{ scenario: bootScenario, goneDevices: [], devices: [] } as ScenarioOutcome, ...evidence.outcomes];
  // Once for the whole boot, in boot order: a group one scenario left empty is
  // that scenario's leak, not again every later scenario's that still sees it in sysfs.
  const witness = holdLedgerAgainstSysfs(groupSource.groupEvents, groupSource.marks, all.flatMap((outcome) => outcome.sysfsGroups ?? []));
  for (const outcome of all) {
    const fromViommu = viommu && viommuScenarioEvidence(viommu, outcome.goneDevices, (step) => inScenario(step, outcome.scenario));
    const scenarioReports: ResultReport[] = [
      ...reports.filter((report) => inScenario(report.step, outcome.scenario)).map(toResultReport),
      ...(fromViommu?.reports ?? []),
      ...caseFindings(outcome.caseReports ?? [], evidence.known, { iommu: evidence.iommu, ...(release ? { release } : {}) }),
    ];
    const witnessLeaks = witness.leaks.filter((leak) => inScenario(leak.step, outcome.scenario));
    // A leak the log infers only from a release it never showed needs the log to have been whole
    // after the group's last device joined; sysfs still listing the empty group needs no log at all.
    const unconfirmed: { leak: LeakFinding; hole: BlindSpot }[] = [];
    const unprintable: LeakFinding[] = [];
    const cutOff: LeakFinding[] = [];
    const ledgerLeaks: LeakFinding[] = [];
    for (const leak of accounting.leaks.filter((candidate) => inScenario(candidate.step, outcome.scenario))) {
      if (witnessLeaks.some((seen) => seen.group === leak.group)) ledgerLeaks.push(leak);
      else if (lifecycleSilent) unprintable.push(leak);
      else if (outcome.lostInStep !== undefined && leak.step === outcome.lostInStep) cutOff.push(leak);
      else {
        const found = holeAfterJoin(groupSource, accounting.groups, leak.group, leak.devices);
        if (found) unconfirmed.push({ leak, hole: found });
        else ledgerLeaks.push(leak);
      }
    }
    const leaks = mergeLeaks(ledgerLeaks, witnessLeaks);
    const anomalies = accounting.anomalies
      .map((anomaly) => ({ ...anomaly, step: stepAtLine(groupSource, anomaly.line) }))
      .filter((anomaly) => inScenario(anomaly.step, outcome.scenario));
    // A group released twice is a refcount bug whatever else the kernel said;
    // a release of a group the log never showed is only worth a note.
    // In a step that injects allocation failures (iommufd_fail_nth), iommu_group_alloc() releases a group
    // it failed to set up without announcing it (several of its failure points print nothing): a second
    // release of an id there proves no double release.
    const injecting = (step: string | undefined) => step !== undefined && (outcome.faultInjectionSteps ?? []).some((prefix) => step === prefix || step.startsWith(`${prefix}/`));
    const groupChecks = [
      ...anomalies
        .filter((anomaly) => anomaly.kind === 'double-release' && !injecting(anomaly.step))
        .map((anomaly) => `${anomaly.step ?? 'boot'}: iommu group ${anomaly.group} released twice`),
      ...witness.disagreements
        .filter((disagreement) => inScenario(disagreement.step, outcome.scenario) && !releaseMaybeLost(disagreement))
        .map(describeDisagreement),
    ];
    const groups = groupsTouching(accounting.groups, outcome.devices, scenarioSpan(groupSource, outcome.scenario));
    const notes: string[] = [];
    const kernelFailure = outcome.guestAnswered ? kernelMisbehaviour(outcome.error) : undefined;
    let error = kernelFailure === undefined ? outcome.error : undefined;
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
    if (lifecycleSilent && outcome.scenario !== kmemleakScan) error ??= lifecycleSilentError;
    for (const leak of cutOff) {
      notes.push(`${leak.step}: ${describeGroup(leak.group, leak.devices)} was not seen released before the guest was lost in that step: its release may never have reached the log, so no leak is claimed`);
    }
    const silentReleases = new Map<string, number>();
    for (const anomaly of anomalies.filter((candidate) => candidate.kind === 'double-release' && injecting(candidate.step))) {
      const key = `${anomaly.step}\0${anomaly.group}`;
      silentReleases.set(key, (silentReleases.get(key) ?? 0) + 1);
    }
    for (const [key, times] of silentReleases) {
      const [step, group] = key.split('\0');
      notes.push(`${step}: iommu group ${group} was released ${times} more time(s) without a new "Allocated group": the step injects allocation failures, and iommu_group_alloc() releases a group it failed to set up without announcing it, so no double release is claimed`);
    }
    for (const anomaly of anomalies.filter((candidate) => candidate.kind === 'release-of-unknown')) {
      notes.push(`iommu group ${anomaly.group} was released but the log never showed it made`);
    }
    const failedChecks = [...(outcome.failedChecks ?? []), ...(kernelFailure === undefined ? [] : [kernelFailure]), ...groupChecks];
    const inconclusive = [
      ...(outcome.scenario === bootScenario ? [] : blindReasons(outcome.scenario, fromConsole, fromDmesg)),
      ...(fromViommu?.inconclusive ?? []),
      ...(outcome.inconclusive ?? []),
      ...unconfirmed.map(({ leak, hole }) => `${leak.step ?? 'boot'}: ${describeGroup(leak.group, leak.devices)} was never seen released, but ${hole.reason} at ${hole.step ?? 'boot'}, after it was made: its release may be among them`),
      ...witness.disagreements
        .filter((disagreement) => inScenario(disagreement.step, outcome.scenario) && releaseMaybeLost(disagreement))
        .map((disagreement) => `${disagreement.step}: ${describeGroup(disagreement.group, disagreement.devices)} left /sys/kernel/iommu_groups unreleased in the log, but the log has a hole after it was made: its release may be in it`),
    ];
    // A scenario every step of which this kernel could not run (a suite the tree lacks) proves nothing: skipped, never a pass.
    // A scenario that runs suites proves nothing when none of their cases ran (the tree has no such suite, or it does not build), whatever else it marked.
    const noCaseRan = outcome.runsSuites === true && !(outcome.cases ?? []).some((row) => row.result !== 'skip');
    if (outcome.scenario !== bootScenario && outcome.skippedSteps?.length && (noCaseRan || !stepsMarked(fromConsole, outcome.scenario).steps) && !outcome.error) {
      inconclusive.push(`skipped: nothing of ${outcome.scenario} could run on this kernel: ${[...new Set(outcome.skippedSteps.map((step) => step.reason))].join('; ')}`);
    }
    const findings = leaks.length + failedChecks.length + scenarioReports.filter((report) => !report.known).length;
    const unconfirmedLeaks = [...unprintable, ...cutOff, ...unconfirmed.map(({ leak }) => leak)].map(toResultLeak);
    runs.push({
      iommu: evidence.iommu,
      scenario: outcome.scenario,
      verdict: judge(findings, error, inconclusive),
      groups: groups.map((group) => ({ id: group.id, devices: group.devices, released: group.released, ...madeIn(groupSource, group) })),
      leaks: leaks.map(toResultLeak),
      ...(unconfirmedLeaks.length ? { unconfirmedLeaks } : {}),
      reports: scenarioReports,
      failedChecks,
      ...(error ? { error } : {}),
      inconclusive,
      ...(outcome.skippedSteps?.length ? { skippedSteps: outcome.skippedSteps } : {}),
      ...stepsMarked(fromConsole, outcome.scenario),
      ...(outcome.cases ? { cases: outcome.cases } : {}),
      ...(outcome.suites ? { suites: outcome.suites } : {}),
      ...(outcome.cost ? { cost: outcome.cost } : {}),
      notes,
      accel: evidence.accel,
      logs: { console: evidence.consolePath, ...(evidence.dmesgPath ? { dmesg: evidence.dmesgPath } : {}) },
    });
  }
  return runs;

  /** A group gone from sysfs whose release the log may have lost in a hole: not a disagreement it can prove. */
  function releaseMaybeLost(disagreement: WitnessDisagreement): boolean {
    return disagreement.kind === 'gone-unreleased' && (lifecycleSilent || holeAfterJoin(groupSource, accounting.groups, disagreement.group, disagreement.devices) !== undefined);
  }
}

/**
 * A failed case is a finding like a kernel report, and the known-issues file can scope one the same
 * way (its title `selftest failure in SUITE: CASE`, its step the case's).
 */
function caseFindings(caseReports: ResultReport[], known: KnownIssue[], scope: { iommu: IommuModel; release?: string }): ResultReport[] {
  return caseReports.map((report) => {
    const asKernel: KernelReport = { kind: report.kind, title: report.title, corrupted: false, lines: report.text.split('\n'), startLine: -1, endLine: -1, ...(report.step ? { step: report.step } : {}) };
    const [matched] = applyKnownIssues([asKernel], known, scope);
    return matched?.known ? { ...report, known: matched.known.reason } : report;
  });
}

// vfio-helper's own words (images/guest/vfio-helper.c): exit 1 and "error: STEP: REASON", where STEP
// names the ioctl that failed or refused, or "dma" for edu's buffer read back unlike what was written.
const kernelFailureRe = /`vfio-helper [^`]*` exited 1: error: (?:dma: dma data mismatch|(?:VFIO|IOMMU)_[A-Z0-9_]+: .+)$/;

/**
 * A guest-side failure that only the kernel under test can have caused, once the runner saw the guest
 * and QEMU well after it: VFIO refusing an ioctl, or DMA through the vIOMMU returning other data (a
 * wrong page mapped) with no fault the oracle caught. The failed check it becomes; undefined otherwise.
 */
function kernelMisbehaviour(error: string | undefined): string | undefined {
  if (error === undefined || !kernelFailureRe.test(error)) return undefined;
  return `${error} (the guest and QEMU were well afterwards: the kernel's VFIO or IOMMU code did this)`;
}

const lifecycleSilentError =
  'the kernel log shows devices joining iommu groups ("Adding to iommu group") but never "Allocated group" or "Releasing group": ' +
  'the group lifecycle messages (pr_debug in iommu_group_alloc() and iommu_group_release()) are off, so no release could be seen; ' +
  'they need dynamic debug (CONFIG_DYNAMIC_DEBUG=y, and the dyndbg= the harness puts on the kernel command line)';

function toResultLeak(leak: LeakFinding): ResultLeak {
  return { group: leak.group, devices: leak.devices, ...(leak.step ? { step: leak.step } : {}) };
}

function describeGroup(group: number, devices: string[]): string {
  return `iommu group ${group}${devices.length ? ` (${devices.join(', ')})` : ''}`;
}

/**
 * A hole in the log (messages the kernel dropped) after the last of `devices` joined this instance of
 * `group`: its "Releasing group" line may have been one of them. Only drops count: a rate-limited
 * printk ("callbacks suppressed") silences its own printer, never the group lifecycle lines.
 */
function holeAfterJoin(log: ParsedLog, groups: GroupRecord[], group: number, devices: string[]): BlindSpot | undefined {
  const record = groups.filter((candidate) => candidate.id === group && !candidate.released && devices.every((device) => candidate.devices.includes(device))).at(-1);
  const joins = log.groupEvents.filter((event) => event.type === 'device-added' && event.group === group && event.device !== undefined && devices.includes(event.device));
  const start = record?.allocatedLine ?? joins[0]?.line ?? -1;
  // Group ids are reused once released: joins after the id's next allocation are another instance's.
  const next = log.groupEvents.find((event) => event.type === 'allocated' && event.group === group && event.line > start)?.line ?? Infinity;
  const lastJoin = Math.max(start, ...joins.filter((event) => event.line >= start && event.line < next).map((event) => event.line));
  return log.blindSpots.find((spot) => spot.check === 'log' && /\bdropped\b/.test(spot.reason) && spot.line > lastJoin);
}

/** The verdict a run's evidence gives, for a run put together from two boots (harness/scenario/retry.ts). */
export function verdictOf(run: Pick<ScenarioRun, 'leaks' | 'failedChecks' | 'reports' | 'error' | 'inconclusive'>): Verdict {
  return judge(run.leaks.length + run.failedChecks.length + run.reports.filter((report) => !report.known).length, run.error, run.inconclusive);
}

function judge(findings: number, error: string | undefined, inconclusive: string[]): Verdict {
  if (findings > 0) return 'fail';
  if (error) return 'error';
  return inconclusive.length > 0 ? 'inconclusive' : 'pass';
}

/**
 * The checks that were off or blind during the scenario's steps, one reason each:
 * - lockdep reports once per boot and an oops's taint turns it off too; once off before the
 *   scenario began, or before a later step of it or any kernel group event of it (so kernel work
 *   of the scenario ran after it), a lock inversion there would not be reported. A report that
 *   comes after the scenario's last kernel work (native hot-remove's upstream pciehp report, after
 *   the group's release) leaves nothing of it unchecked;
 * - kmemleak, once disabled, tracks nothing and forgets what it had, so the scan after the
 *   scenarios proves nothing about any of them;
 * - lines the console dropped inside the scenario's steps may have been a report or a group event.
 *   dmesg cannot stand in for them: "** N printk messages dropped **" means the ring buffer
 *   overwrote those records before the console printed them, so a dmesg read later lacks them
 *   too, and a rate-limited printk ("callbacks suppressed") was never stored at all.
 */
function blindReasons(scenario: string, console: ParsedLog, dmesg: ParsedLog | undefined): string[] {
  const reasons: string[] = [];
  const seen = new Set<string>();
  const add = (reason: string) => {
    if (!seen.has(reason)) reasons.push(reason);
    seen.add(reason);
  };
  for (const log of dmesg ? [console, dmesg] : [console]) {
    const span = scenarioSpan(log, scenario);
    for (const spot of log.blindSpots) {
      if (spot.check === 'lockdep' && scenario !== kmemleakScan && span.start !== Infinity && kernelWorkAfter(log, span, spot.line)) add(lockdepReason(spot));
      if (spot.check === 'kmemleak') add(`${spot.reason}: no memory leak could be reported`);
      // WARN_ONCE per saturation type: a scenario that drove the kernel after the first one cannot show a second.
      if (spot.check === 'refcount' && scenario !== kmemleakScan && span.start !== Infinity && kernelWorkAfter(log, span, spot.line)) {
        add(`${spot.reason}, from ${spot.step ?? 'boot'} on: the kernel prints "${spot.message ?? 'that refcount_t warning'}" once per boot, so this scenario's own would not be seen`);
      }
      if (spot.check === 'log' && spot.line >= span.start && spot.line < span.end) {
        add(`${spot.step ?? 'boot'}: ${spot.reason}: a report or group event may be missing`);
      }
    }
  }
  return reasons;
}

/** Whether the scenario drove the kernel after a line: it began later, or a step or a kernel group event of it came after. */
function kernelWorkAfter(log: ParsedLog, span: { start: number; end: number }, line: number): boolean {
  if (line < span.start) return true;
  const inSpan = (at: number) => at > line && at < span.end;
  // A device-gone mark is the harness's observation, not kernel work.
  const kernelEvent = (event: GroupEvent) => event.type !== 'device-removed' || event.group !== undefined;
  return log.marks.some((mark) => inSpan(mark.line)) || log.groupEvents.some((event) => inSpan(event.line) && kernelEvent(event));
}

function lockdepReason(spot: BlindSpot): string {
  return `${spot.reason}, from ${spot.step ?? 'boot'} on: a lock inversion in this scenario's steps would not be reported`;
}

function describeDisagreement(disagreement: WitnessDisagreement): string {
  const devices = disagreement.devices.length ? ` (${disagreement.devices.join(', ')})` : '';
  return disagreement.kind === 'gone-unreleased'
    ? `${disagreement.step}: iommu group ${disagreement.group}${devices} left /sys/kernel/iommu_groups but the log never showed it released`
    : `${disagreement.step}: the log shows iommu group ${disagreement.group} released, but /sys/kernel/iommu_groups still lists it with${devices}`;
}

/** The ledger's leaks and sysfs's, each group once (the ledger's first: it names the step its last device left in). */
function mergeLeaks(fromLog: LeakFinding[], fromSysfs: LeakFinding[]): LeakFinding[] {
  return [...fromLog, ...fromSysfs.filter((leak) => !fromLog.some((known) => known.group === leak.group))];
}

/**
 * The capture whose group events carry the harness's marks: the console, unless it lost marks that
 * dmesg kept and dmesg still holds the boot's first line. A ring buffer that wrapped has lost the
 * boot's "Adding to iommu group" lines, so every device removed later would look as if it had never
 * joined a group.
 */
function chooseGroupSource(console: ParsedLog, dmesg: ParsedLog | undefined): ParsedLog {
  if (!dmesg || dmesg.release === undefined) return console;
  return console.marks.length >= dmesg.marks.length ? console : dmesg;
}

/**
 * The console's reports, then what only dmesg has. A report is the same one only in the same step:
 * the same WARN in another scenario is another report (its known-issue scope, its scenario's verdict),
 * so a title the console showed elsewhere must not hide dmesg's copy of it here.
 */
function mergeReports(primary: KernelReport[], secondary: KernelReport[]): KernelReport[] {
  const placed = (report: KernelReport) => `${report.step ?? ''}\0${report.title}`;
  const seen = new Set(primary.map(placed));
  return [...primary, ...secondary.filter((report) => !seen.has(placed(report)))];
}

function stepAtLine(log: ParsedLog, line: number): string | undefined {
  return log.marks.filter((mark) => mark.line < line).at(-1)?.step;
}

/** Lines from a scenario's first mark to the next scenario's first mark. */
/** Where the group's ledger begins: the step mark before its `Allocated group` line, or the boot. */
function madeIn(log: ParsedLog, group: GroupRecord): { madeIn?: string } {
  if (group.allocatedLine === undefined) return {};
  const mark = log.marks.filter((candidate) => candidate.line < group.allocatedLine!).at(-1);
  return { madeIn: mark?.step ?? 'boot' };
}

/** The steps a scenario marked in the console, each once, in order: what KTAP and KCIDB list as subtests. */
function stepsMarked(log: ParsedLog, scenario: string): { steps?: string[] } {
  const prefix = `${scenario}/`;
  const steps = [...new Set(log.marks.filter((mark) => mark.step.startsWith(prefix)).map((mark) => mark.step.slice(prefix.length)))];
  return steps.length ? { steps } : {};
}

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

/**
 * Known-issues entries that could have matched in this run (their scenario, vIOMMU and release scopes ran)
 * and matched no report: stale, or scoped too narrowly.
 */
export function unusedKnownIssues(known: KnownIssue[], runs: ScenarioRun[], release?: string): string[] {
  const ran = (list: string | undefined, values: string[]) => list === undefined || list.split(',').some((value) => values.includes(value));
  const scenarios = runs.map((run) => run.scenario);
  const iommus = runs.map((run) => run.iommu);
  return known
    // An entry for another kernel (release=6.1 on a 6.12 run) could not have matched.
    .filter((issue) => ran(issue.scenario, scenarios) && ran(issue.iommu, iommus) && (release === undefined || appliesToRelease(issue, release)))
    .filter(
      (issue) =>
        !runs.some((run) =>
          run.reports.some((report) =>
            matchesKnownIssue(issue, report, { iommu: run.iommu, scenario: scenarioOfStep(report.step), ...(release ? { release } : {}) }),
          ),
        ),
    )
    .map((issue) => issue.entry);
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
    ...(report.device ? { device: report.device } : {}),
    ...(report.address ? { address: report.address } : {}),
    ...(report.repeats ? { repeats: report.repeats } : {}),
  };
}

/** A saved log judged on its own (`iommu-harness parse`): no scenarios, no sysfs, no known issues. */
export interface LogJudgement {
  verdict: Exclude<Verdict, 'error'>;
  reports: ResultReport[];
  groups: { id: number; devices: string[]; released: boolean }[];
  leaks: LeakFinding[];
  /** A double release is a finding, as in a run; a release of a group never shown made is not. */
  anomalies: GroupAnomaly[];
  inconclusive: string[];
  lockdepOff?: ParsedLog['lockdepOff'];
}

/** Findings are reports, leaks and double releases; with none, a blind spot anywhere makes the log inconclusive. */
export function judgeLog(text: string): LogJudgement {
  const parsed = parseKernelLog(text);
  const accounting = accountGroups(parsed.groupEvents);
  const doubleReleases = accounting.anomalies.filter((anomaly) => anomaly.kind === 'double-release');
  // Without scenarios a lockdep report that turned lock checking off is a finding already; the
  // other blind spots (dropped lines, kmemleak disabled) leave the log inconclusive.
  // A spent refcount_t type is already a finding in the log it spent it in; lockdep's own report likewise.
  const inconclusive = parsed.blindSpots.filter((spot) => spot.check !== 'lockdep' && spot.check !== 'refcount').map((spot) => `${spot.step ?? 'boot'}: ${spot.reason}`);
  const findings = parsed.reports.length + accounting.leaks.length + doubleReleases.length;
  return {
    verdict: findings > 0 ? 'fail' : inconclusive.length > 0 ? 'inconclusive' : 'pass',
    reports: parsed.reports.map(toResultReport),
    groups: accounting.groups.map((group) => ({ id: group.id, devices: group.devices, released: group.released })),
    leaks: accounting.leaks,
    anomalies: accounting.anomalies,
    inconclusive,
    ...(parsed.lockdepOff ? { lockdepOff: parsed.lockdepOff } : {}),
  };
}
