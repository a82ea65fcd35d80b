// The oracle's data shapes: what it reads out of a console or dmesg capture.

export type ReportKind =
  | 'warning'
  | 'lockdep'
  | 'bug'
  | 'refcount'
  | 'kasan'
  | 'kmemleak'
  | 'hang'
  | 'panic'
  | 'oops'
  | 'ubsan'
  | 'rcu-stall'
  | 'gpf'
  | 'null-deref'
  | 'kfence'
  | 'kmsan'
  | 'kcsan';

export interface KernelReport {
  kind: ReportKind;
  /** syzkaller-style title, e.g. "WARNING in iommu_group_release". */
  title: string;
  /** Interleaved or truncated output: the title is a best effort. */
  corrupted: boolean;
  /** The report's own lines, timestamp and caller prefixes stripped. */
  lines: string[];
  /** 0-based index of the report's first line in the input. */
  startLine: number;
  /** Exclusive. */
  endLine: number;
  /** The function the title names, helpers skipped, e.g. "iommu_group_release". */
  guiltyFrame?: string;
  /** Source file:line printed in the report header, e.g. "drivers/iommu/iommu.c:940". */
  location?: string;
  /** The harness step in effect when the report started. */
  step?: string;
  /** Set by applyKnownIssues. */
  known?: { reason: string };
  /** The report came after lockdep switched itself off, so lock bugs after it went unchecked. */
  afterLockdepOff?: boolean;
}

export type GroupEventType = 'allocated' | 'device-added' | 'device-removed' | 'released';

export interface GroupEvent {
  type: GroupEventType;
  /** Absent for a harness device-gone mark: the ledger resolves it from the device's last add. */
  group?: number;
  device?: string;
  line: number;
  step?: string;
}

export interface StepMark {
  step: string;
  line: number;
}

export interface ParsedLog {
  reports: KernelReport[];
  groupEvents: GroupEvent[];
  marks: StepMark[];
  /** Set when lockdep reported once: the kernel turns lock checking off for the rest of the boot. */
  lockdepOff?: { line: number; step?: string; title: string };
}

export interface GroupRecord {
  id: number;
  /** Every device that joined this group instance, in order. */
  devices: string[];
  released: boolean;
  allocatedLine?: number;
  releasedLine?: number;
}

export interface LeakFinding {
  group: number;
  devices: string[];
  /** Step in effect when its last device left. */
  step?: string;
}

export interface GroupAnomaly {
  kind: 'release-of-unknown' | 'double-release';
  group: number;
  line: number;
}

export interface GroupAccounting {
  groups: GroupRecord[];
  leaks: LeakFinding[];
  anomalies: GroupAnomaly[];
}

export interface KnownIssue {
  title: string | RegExp;
  reason: string;
}
