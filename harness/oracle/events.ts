// IOMMU group lifecycle lines and the harness's own step marks.
// 6.12 and 6.1 both print "Adding to iommu group N" (dev_info) and, with dyndbg on
// iommu_group_alloc/iommu_group_release, "Allocated group N" / "Releasing group N" (pr_debug).
// Only 6.1 prints "Removing from iommu group N"; on 6.12 the harness writes
// "iommu-harness: device-gone BDF" to /dev/kmsg once it has seen the device go.
import type { LogLine } from './lines.ts';
import type { GroupEvent, StepMark } from './types.ts';

type EventRule = (text: string) => Omit<GroupEvent, 'line' | 'step'> | undefined;

const rules: EventRule[] = [
  (text) => {
    const m = /(?:^|\s)iommu: Allocated group (\d+)\b/.exec(text);
    return m ? { type: 'allocated', group: Number(m[1]) } : undefined;
  },
  (text) => {
    const m = /(?:^|\s)iommu: Releasing group (\d+)\b/.exec(text);
    return m ? { type: 'released', group: Number(m[1]) } : undefined;
  },
  (text) => {
    // "<driver> <device>: Adding to iommu group N"; the driver may be pci, vfio-pci, virtio-pci...
    const m = /(?:^|\s)\S+ (\S+): Adding to iommu group (\d+)\b/.exec(text);
    return m?.[1] ? { type: 'device-added', device: m[1], group: Number(m[2]) } : undefined;
  },
  (text) => {
    const m = /(?:^|\s)\S+ (\S+): Removing from iommu group (\d+)\b/.exec(text);
    return m?.[1] ? { type: 'device-removed', device: m[1], group: Number(m[2]) } : undefined;
  },
  // iommu_group_alloc()'s kobject failed (fault injection, memory pressure): 7.2's kobject_init_and_add() error path.
  (text) => {
    const m = /(?:^|\s)kobject: kobject_add_internal failed for (\d+) \(error: -?\d+ parent: iommu_groups\)/.exec(text);
    return m ? { type: 'alloc-failed', group: Number(m[1]) } : undefined;
  },
  (text) => (/(?:^|\s)kobject: can not set name properly!/.test(text) ? { type: 'alloc-failed' } : undefined),
  (text) => {
    const m = /(?:^|\s)iommu-harness: device-gone (\S+)/.exec(text);
    return m?.[1] ? { type: 'device-removed', device: m[1] } : undefined;
  },
];

const stepRe = /(?:^|\s)iommu-harness: step (\S+)/;

export function findStepMarks(lines: LogLine[]): StepMark[] {
  const marks: StepMark[] = [];
  for (const [line, { text }] of lines.entries()) {
    const step = stepRe.exec(text)?.[1];
    if (step) marks.push({ step, line });
  }
  return marks;
}

/** The step in effect at each line: the last mark at or before it. */
export function stepAt(marks: StepMark[], line: number): string | undefined {
  let step: string | undefined;
  for (const mark of marks) {
    if (mark.line > line) break;
    step = mark.step;
  }
  return step;
}

export function findGroupEvents(lines: LogLine[], marks: StepMark[]): GroupEvent[] {
  const events: GroupEvent[] = [];
  for (const [line, { text }] of lines.entries()) {
    for (const rule of rules) {
      const found = rule(text);
      if (!found) continue;
      const event: GroupEvent = { ...found, line };
      const step = stepAt(marks, line);
      if (step !== undefined) event.step = step;
      events.push(event);
      break;
    }
  }
  return events;
}
