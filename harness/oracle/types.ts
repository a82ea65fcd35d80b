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
  | 'kcsan'
  /** The vIOMMU's own trace left state a departed device should have taken with it (harness/oracle/viommu-ledger.ts). */
  | 'viommu-state'
  /** A DMA fault the IOMMU reported: a device read or wrote an address it had no mapping for. */
  | 'iommu-fault'
  /** A case of an in-tree test suite (kselftest, KUnit) run in the guest said `not ok` (harness/selftest/). */
  | 'selftest';

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
  /** An IOMMU fault's device, as the IOMMU names it (PCI address, or virtio-iommu endpoint). */
  device?: string;
  /** An IOMMU fault's faulting address (IOVA), as printed. */
  address?: string;
  /** How many more times the kernel printed the same report (a hung task re-reported every timeout, a fault repeated). */
  repeats?: number;
}

/**
 * `alloc-failed`: iommu_group_alloc() could not add the group's kobject (kobject_add_internal failed
 * for N under iommu_groups, or its name could not be set): its error path releases the group it never
 * announced, so the "Releasing group N" that follows is that failed allocation's, not a second release.
 */
export type GroupEventType = 'allocated' | 'device-added' | 'device-removed' | 'released' | 'alloc-failed';

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

/** A check the verdicts rely on that went off or lost its evidence at some point of the log. */
export interface BlindSpot {
  /** `refcount`: a one-shot warning was spent (see `message`). */
  check: 'lockdep' | 'kmemleak' | 'log' | 'refcount';
  line: number;
  step?: string;
  /** One line saying what happened, in the kernel's words where it said something. */
  reason: string;
  /** For a one-shot warning: the message the kernel will not print again in this boot, e.g. "refcount_t: underflow; use-after-free.". */
  message?: string;
}

export interface ParsedLog {
  reports: KernelReport[];
  groupEvents: GroupEvent[];
  marks: StepMark[];
  /** Set when lockdep reported once: the kernel turns lock checking off for the rest of the boot. */
  lockdepOff?: { line: number; step?: string; title: string };
  /** Every point where a check went off or the log lost lines, lockdep's included, in log order. */
  blindSpots: BlindSpot[];
  /** The kernel release from the "Linux version" line, when the log has it. */
  release?: string;
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

/** One entry of the known-issues file: a report already triaged, and where it is expected. */
export interface KnownIssue {
  /** The whole title (a string), or an anchored regular expression. */
  title: string | RegExp;
  reason: string;
  /** Each scope field, when set, must hold too; `release` may be an anchored regular expression. */
  kind?: ReportKind;
  scenario?: string;
  step?: string;
  iommu?: string;
  release?: string | RegExp;
  /** The first kernel release it applies to (6.1 covers 6.1.0 and every later release), compared as versions. */
  since?: string;
  /** The first release that has the fix upstream: it and every later release no longer match. */
  until?: string;
  /** Lock classes the report's text must each name, as lockdep prints them: `(pci_rescan_remove_lock)`. */
  locks?: string[];
  /** A string the report's text must contain, or a regular expression it must match somewhere. */
  text?: string | RegExp;
  /** The entry as written, to name it when it matched nothing. */
  entry: string;
}

/** Where a report was seen, for the known issues' scopes. */
export interface ReportScope {
  scenario?: string;
  iommu?: string;
  release?: string;
}
