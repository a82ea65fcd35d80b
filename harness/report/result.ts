// The one result shape that flows from the runner to every output: the
// terminal table, JSON, JUnit and exit codes. Field names are stable: scripts
// depend on them.
import type { ReportKind } from '../oracle/index.ts';
import type { IommuModel } from '../machine/topology.ts';

export type Verdict = 'pass' | 'fail' | 'error';

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
}

export interface ResultGroup {
  id: number;
  devices: string[];
  released: boolean;
}

export interface ResultLeak {
  group: number;
  devices: string[];
  /** The step in which its last device left. */
  step?: string;
}

export interface ScenarioRun {
  iommu: IommuModel;
  /** A scenario name, or "boot" for what the kernel printed before the first scenario. */
  scenario: string;
  verdict: Verdict;
  groups: ResultGroup[];
  leaks: ResultLeak[];
  reports: ResultReport[];
  /** The scenario's expectations about the kernel that did not hold (each fails the run). */
  failedChecks: string[];
  /** Why the run could not be judged (verdict "error"). */
  error?: string;
  /** Notes a reader needs, e.g. that lock checking was off for part of the run. */
  notes: string[];
  accel: 'kvm' | 'tcg';
  logs: { console: string; dmesg?: string };
}

export interface KernelInfo {
  source: string;
  commit: string;
  patches: string[];
  release: string;
}

export interface HarnessResult {
  verdict: Verdict;
  kernel: KernelInfo;
  runs: ScenarioRun[];
  /** Wall-clock seconds per stage, for people and the benchmark. */
  /** Boot-to-SSH seconds are keyed by boot: the vIOMMU, with a suffix when one vIOMMU needed several boots. */
  timings: { buildSeconds: number; bootSeconds: Record<string, number>; totalSeconds: number };
}

/** A failing finding anywhere fails the whole; otherwise any error makes it an error. */
export function overallVerdict(runs: ScenarioRun[]): Verdict {
  if (runs.some((run) => run.verdict === 'fail')) return 'fail';
  if (runs.some((run) => run.verdict === 'error')) return 'error';
  return 'pass';
}
