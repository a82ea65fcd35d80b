// The one result shape that flows from the runner to every output: the
// terminal table, JSON, JUnit and exit codes. Field names are stable: scripts
// depend on them.
import type { ReportKind } from '../oracle/index.ts';
import type { IommuModel } from '../machine/topology.ts';
import type { BootTimeline } from '../machine/boot-timeline.ts';
import type { GuestCost } from '../scenario/guest-cost.ts';
import type { Preemption } from '../build/preemption.ts';
import type { PatchCoverage } from '../build/patch-coverage.ts';
import type { Provenance } from './provenance.ts';

/**
 * pass: every check the scenario relies on was on and saw its evidence. fail: a finding (a report
 * that is not a known issue, a leak, a failed check). error: the run could not be judged (the
 * scenario stopped, the machine died). inconclusive: no finding and no error, but a check the
 * verdict relies on was off or blind during the scenario's steps (the reasons are in
 * `ScenarioRun.inconclusive`).
 */
export type Verdict = 'pass' | 'fail' | 'inconclusive' | 'error';

export interface ResultReport {
  kind: ReportKind;
  title: string;
  /** The report's lines as the kernel printed them. */
  text: string;
  corrupted: boolean;
  step?: string;
  location?: string;
  guiltyFrame?: string;
  /** Present when the known-issues file lists it: shown, but not failing the run. */
  known?: string;
  /** The stack, symbolized to file:line when the kernel was built with line tables. */
  frames?: { function: string; location?: string }[];
  /** An IOMMU fault's device (PCI address as the IOMMU saw it) and faulting address. */
  device?: string;
  address?: string;
  /** How many more times the kernel printed the same report (a hung task re-reported, a fault repeated). */
  repeats?: number;
  /** With `--each-patch`: the first patch of the series whose prefix shows this report. */
  introducedBy?: IntroducedBy;
}

/** A patch of the series, by its place (1-based) and Subject ("[PATCH 2/3] iommu: ..."; a plain diff's file name). */
export interface IntroducedBy {
  index: number;
  subject: string;
}

export interface ResultGroup {
  id: number;
  devices: string[];
  released: boolean;
  /** The step mark in effect when the kernel made the group (`Allocated group N`), or "boot"; absent when the log has no allocation line. */
  madeIn?: string;
}

export interface ResultLeak {
  group: number;
  devices: string[];
  /** The step in which its last device left. */
  step?: string;
  /** With `--each-patch`: the first patch of the series whose prefix shows this leak. */
  introducedBy?: IntroducedBy;
}

/**
 * One case of an in-tree test suite the scenario ran in the guest (a kselftest program's test, a
 * KUnit test), as its TAP/KTAP said. A `not ok` case is also a report of kind `selftest`.
 */
export interface ResultCase {
  /** The suite: the program (`iommufd`, `iommufd_fail_nth`, `vfio_dma_mapping_test`) or `kunit`. */
  suite: string;
  /** As the suite names it: `fixture.variant.test` for kselftest, `suite.test[.param]` for KUnit. */
  name: string;
  result: 'ok' | 'not ok' | 'skip';
  /** A skip's reason (the suite's own words, or why the harness did not run it); a failure's directive. */
  reason?: string;
  /** Wall time of the case in the guest, when known. */
  seconds?: number;
  /** The step mark the case ran under (SCENARIO/SUITE/CASE): a kernel report there was printed while it ran. */
  step?: string;
}

/** One suite program's run: how long it took, and how much of it the time budget let run. */
export interface ResultSuite {
  name: string;
  seconds: number;
  /** The cases the suite has (its listing or its plan). */
  planned: number;
  /** How many of them were not started because the time budget ran out (each listed in `cases` as a skip saying so). */
  notReached: number;
  /** The budget the suite ran under, when it had one. */
  budgetSeconds?: number;
}

export interface ScenarioRun {
  iommu: IommuModel;
  /** A scenario name, or "boot" for what the kernel printed before the first scenario. */
  scenario: string;
  verdict: Verdict;
  groups: ResultGroup[];
  leaks: ResultLeak[];
  /**
   * Groups the log never showed released where that proves no leak, each named with its reason in
   * `inconclusive`, `error` or `notes`: the log had a hole after the group was made, the guest was
   * lost in the step its last device left, or the kernel prints no group lifecycle messages. Not
   * findings. Absent when none.
   */
  unconfirmedLeaks?: ResultLeak[];
  reports: ResultReport[];
  /** The scenario's expectations about the kernel that did not hold (each fails the run). */
  failedChecks: string[];
  /** Why the run could not be judged (verdict "error"). */
  error?: string;
  /**
   * The checks the verdict relies on that were off or blind during the run's steps (lockdep
   * already off, kmemleak disabled, kernel log lines dropped), one reason each; empty when none.
   * Filled whatever the verdict; the verdict is "inconclusive" when it is not empty and the run
   * has no finding and no error.
   */
  inconclusive: string[];
  /**
   * Steps the scenario did not run because the kernel lacks a feature they need (6.1 has no
   * iommufd), each with the reason. The verdict covers the steps that ran; absent when none.
   */
  skippedSteps?: { step: string; reason: string }[];
  /** The steps the scenario marked in the kernel log, in order (SCENARIO/ left off); absent for "boot". */
  steps?: string[];
  /** The cases of the in-tree test suites the scenario ran (selftest-iommufd, selftest-vfio, kunit-iommu), in order; absent for other scenarios. */
  cases?: ResultCase[];
  /** Per suite program: its time, its planned cases and those the time budget left out; absent for other scenarios. */
  suites?: ResultSuite[];
  /** Where the scenario's seconds went: round trips, QMP, waits (absent for "boot" and runs that never started). */
  cost?: GuestCost;
  /** Notes a reader needs, e.g. a release of a group the log never showed made. */
  notes: string[];
  /**
   * Why this run comes from a second boot: the first lost its guest to the emulator
   * (QEMU ended or hung, or the guest stopped answering) with nothing found. Absent when not.
   */
  retried?: string;
  accel: 'kvm' | 'tcg';
  logs: { console: string; dmesg?: string };
}

export interface KernelInfo {
  source: string;
  /** A Debian source's exact package version (`7.2.13-1`); absent for a git tree. */
  packageVersion?: string;
  commit: string;
  patches: string[];
  /**
   * The `--src` tree's uncommitted files (tracked changes, staged or not, then untracked files git
   * does not ignore), built after the patches; absent when the tree was clean or is not the user's.
   */
  uncommitted?: string[];
  release: string;
  /** The built kernel's preemption model, the .config option and why (the harness's choice or the release's default). */
  preemption?: Preemption;
  /** The built kernel's full .config, as kept in the cache beside the kernel. */
  config?: string;
  /** Its build log, kept beside it. */
  buildLog?: string;
}

export interface HarnessResult {
  verdict: Verdict;
  kernel: KernelInfo;
  runs: ScenarioRun[];
  /** Known-issues entries that matched no report in this run (stale entries, or scoped too narrowly). */
  unusedKnownIssues?: string[];
  /** Wall-clock seconds per stage, for people and the benchmark. */
  /** Boot-to-SSH seconds are keyed by boot: the vIOMMU, with a suffix when one vIOMMU needed several boots. */
  timings: {
    buildSeconds: number;
    /** Per boot (its log folder's name): QEMU start to a usable SSH session. */
    bootSeconds: Record<string, number>;
    /** Per boot: where those seconds went (QEMU to console, kernel to /init, /init to ready, ready to SSH). */
    bootTimelines?: Record<string, BootTimeline>;
    totalSeconds: number;
  };
  /** The accelerator the boots used and why: the probe's finding, a forced choice, or a fallback to TCG. */
  accelerator: { accel: 'kvm' | 'tcg'; reason: string };
  /**
   * Each file the patches (and uncommitted changes) touch, held against the build: compiled into
   * the kernel or not, and which of the machines that booted run it. Absent when nothing but the
   * tree itself is under test.
   */
  patchCoverage?: PatchCoverage;
  /**
   * Why the run as a whole cannot speak for what is under test although every scenario passed
   * (none of the patch's code was built, or none of it runs on a selected machine); the verdict
   * is then "inconclusive". Absent when none.
   */
  inconclusive?: string[];
  /**
   * What the result needs to reproduce itself and to say what was tested: the harness version,
   * command line, profile and fragments, scenarios, machines, QEMU and compiler versions, start
   * time, the base's `git describe`, each patch's subject and Message-ID (harness/report/provenance.ts).
   * Absent in results written before it existed.
   */
  provenance?: Provenance;
  /** With `--each-patch`: the series judged patch by patch (harness/series.ts); the rest of the result is the whole series'. */
  series?: SeriesResult;
}

/** The series built and judged prefix by prefix: patch 1, then 1..2, and so on. */
export interface SeriesResult {
  patches: SeriesStep[];
  /** Cover letters left out ("[PATCH 0/3] ..."). */
  skipped: string[];
}

export interface SeriesStep {
  index: number;
  subject: string;
  /** The file applied for this patch. */
  file: string;
  /** The verdict of the series up to and including this patch. */
  verdict: Verdict;
  /** Findings first seen with this patch, one line each ("intel/remove-rescan: LEAK: iommu group 7 ..."). */
  introduced: string[];
  /** Findings of the patch before that this patch's prefix no longer shows. */
  gone: string[];
  buildSeconds: number;
}

const precedence: Verdict[] = ['fail', 'error', 'inconclusive', 'pass'];

/**
 * A pass that cannot speak for the patch (none of its code built or run) is
 * inconclusive; a finding, an error or a blind run stay what they are.
 */
export function verdictWithCoverage(runsVerdict: Verdict, coverage: PatchCoverage | undefined): Verdict {
  return runsVerdict === 'pass' && coverage?.inconclusive ? 'inconclusive' : runsVerdict;
}

/** The worst verdict wins: fail > error > inconclusive > pass. No run at all is not a pass. */
export function overallVerdict(runs: ScenarioRun[]): Verdict {
  if (runs.length === 0) return 'error';
  return precedence.find((verdict) => runs.some((run) => run.verdict === verdict)) ?? 'pass';
}
