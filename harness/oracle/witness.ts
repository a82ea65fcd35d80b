// The second witness: the guest's own listing of /sys/kernel/iommu_groups, read at the end of each
// step (before the next step's mark is written), held against the log's group ledger. The log
// alone can only call a group leaked once every device that joined it was seen to leave, and 6.12
// prints nothing when one does; sysfs shows the group itself. Three disagreements are findings:
// - a group gone from sysfs that the log never released (the release path skipped or the log lost it);
// - a group still in sysfs with no devices that is never released: a leak, whatever marks were written;
// - a group the log released while sysfs still lists it with devices.
// Timing: sysfs is read before the next mark is written, so whatever happened before the read is
// logged before that mark; a line logged before the mark may still have happened after the read,
// so only events before the step's own mark are taken as settled when sysfs was read.
import type { GroupEvent, LeakFinding, StepMark } from './types.ts';

export interface SysfsSnapshot {
  /** The step (its mark, SCENARIO/STEP) at whose end sysfs was read. */
  step: string;
  /** Group id to the devices /sys/kernel/iommu_groups/ID/devices lists; none for an empty group. */
  groups: Record<number, string[]>;
}

export interface WitnessDisagreement {
  kind: 'gone-unreleased' | 'released-while-listed';
  step: string;
  group: number;
  devices: string[];
}

export interface WitnessFindings {
  leaks: LeakFinding[];
  disagreements: WitnessDisagreement[];
}

interface Placed {
  snapshot: SysfsSnapshot;
  /** The line of the step's own mark. */
  markLine: number;
  /** The line of the next mark (written after sysfs was read), or the end of the log. */
  readBy: number;
}

export function holdLedgerAgainstSysfs(events: GroupEvent[], marks: StepMark[], snapshots: SysfsSnapshot[]): WitnessFindings {
  const placed = place(snapshots, marks);
  const findings: WitnessFindings = { leaks: [], disagreements: [] };
  const leaked = new Set<string>();
  placed.forEach(({ snapshot, markLine, readBy }, index) => {
    const listed = new Set(Object.keys(snapshot.groups).map(Number));
    // Before the scenario's first snapshot, the ledger says which groups stood at its first mark.
    const earlier = placed[index - 1];
    const previous = earlier ? new Set(Object.keys(earlier.snapshot.groups).map(Number)) : liveAt(events, markLine);
    const previousRead = earlier?.readBy ?? markLine;
    for (const group of previous) {
      if (listed.has(group)) continue;
      // The instance sysfs showed began before that read; its release must come after it began.
      if (!releasedAfter(events, group, instanceStart(events, group, previousRead))) {
        findings.disagreements.push({ kind: 'gone-unreleased', step: snapshot.step, group, devices: devicesOf(events, group, previousRead) });
      }
    }
    for (const [id, devices] of Object.entries(snapshot.groups)) {
      const group = Number(id);
      if (devices.length === 0) {
        const start = instanceStart(events, group, readBy);
        const key = `${group}@${start}`;
        if (!leaked.has(key) && !releasedAfter(events, group, start)) {
          leaked.add(key);
          findings.leaks.push({ group, devices: devicesOf(events, group, readBy), step: snapshot.step });
        }
      } else if (releasedBefore(events, group, markLine, readBy)) {
        findings.disagreements.push({ kind: 'released-while-listed', step: snapshot.step, group, devices });
      }
    }
  });
  return findings;
}

/** Each snapshot at its step's mark, in order (a step name can come back in a later cycle). */
function place(snapshots: SysfsSnapshot[], marks: StepMark[]): Placed[] {
  const placed: Placed[] = [];
  let from = 0;
  for (const snapshot of snapshots) {
    const index = marks.findIndex((mark, i) => i >= from && mark.step === snapshot.step);
    // A snapshot whose mark the log lost cannot be placed; the verdict already calls such a log incomplete.
    if (index < 0) continue;
    placed.push({ snapshot, markLine: marks[index]!.line, readBy: marks[index + 1]?.line ?? Infinity });
    from = index + 1;
  }
  return placed;
}

const opensInstance = (event: GroupEvent) => event.type === 'allocated' || event.type === 'device-added';

/** Groups the ledger holds live at a line: made (or joined) and not released since. */
function liveAt(events: GroupEvent[], line: number): Set<number> {
  const live = new Set<number>();
  for (const event of events) {
    if (event.line >= line || event.group === undefined) continue;
    if (opensInstance(event)) live.add(event.group);
    else if (event.type === 'released') live.delete(event.group);
  }
  return live;
}

/** Whether the log releases the group after a line (its instance's start), before any new instance of its id is made. */
function releasedAfter(events: GroupEvent[], group: number, line: number): boolean {
  for (const event of events) {
    if (event.line <= line || event.group !== group) continue;
    if (event.type === 'released') return true;
    // ida hands an id out again only after its release: a new instance means the old one's release went unlogged.
    if (event.type === 'allocated') return false;
  }
  return false;
}

/**
 * Whether the log had released the group before the step began and made no new instance of its id
 * by the time sysfs was read: then no group of that id can have stood in sysfs.
 */
function releasedBefore(events: GroupEvent[], group: number, markLine: number, readBy: number): boolean {
  const last = events.filter((event) => event.group === group && event.line < readBy && (opensInstance(event) || event.type === 'released')).at(-1);
  return last?.type === 'released' && last.line < markLine;
}

/** The line where the group's latest instance before `line` began (-1: the log never showed it), to tell one instance from the next. */
function instanceStart(events: GroupEvent[], group: number, line: number): number {
  let start = -1;
  let live = false;
  for (const event of events) {
    if (event.line >= line || event.group !== group) continue;
    if (event.type === 'released') live = false;
    else if (opensInstance(event) && (!live || event.type === 'allocated')) {
      start = event.line;
      live = true;
    }
  }
  return start;
}

/** Every device the log shows joining the group's instance standing at `line`. */
function devicesOf(events: GroupEvent[], group: number, line: number): string[] {
  const start = instanceStart(events, group, line);
  const devices: string[] = [];
  for (const event of events) {
    if (event.line < start || event.line >= line || event.group !== group) continue;
    if (event.type === 'device-added' && event.device && !devices.includes(event.device)) devices.push(event.device);
  }
  return devices;
}
