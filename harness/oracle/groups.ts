// The group ledger: which IOMMU group instances were created, which devices joined and left
// them, and which were released. Group ids come from an ida and are reused once released, so a
// record is one instance of an id, not the id.
import type { GroupAccounting, GroupAnomaly, GroupEvent, GroupRecord, LeakFinding } from './types.ts';

interface Instance {
  record: GroupRecord;
  /** Devices still in the group. */
  members: Set<string>;
  /** Step in effect when the last member left. */
  emptiedStep?: string;
  emptied: boolean;
}

export function accountGroups(events: GroupEvent[]): GroupAccounting {
  const instances: Instance[] = [];
  const live = new Map<number, Instance>();
  const lastReleased = new Map<number, Instance>();
  const groupOfDevice = new Map<string, Instance>();
  const anomalies: GroupAnomaly[] = [];
  /** The last failed group allocation, when no group event has come since. */
  let failedAlloc: GroupEvent | undefined;

  const create = (id: number, allocatedLine?: number): Instance => {
    const record: GroupRecord = { id, devices: [], released: false };
    if (allocatedLine !== undefined) record.allocatedLine = allocatedLine;
    const instance: Instance = { record, members: new Set(), emptied: false };
    instances.push(instance);
    live.set(id, instance);
    lastReleased.delete(id);
    return instance;
  };

  for (const event of events) {
    const pendingFailure = failedAlloc;
    failedAlloc = undefined;
    switch (event.type) {
      case 'alloc-failed':
        failedAlloc = event;
        break;
      case 'allocated':
        if (event.group !== undefined) create(event.group, event.line);
        break;
      case 'device-added': {
        if (event.group === undefined || event.device === undefined) break;
        // Without dyndbg, or when the allocation scrolled out, the add is the first sign of a group.
        const instance = live.get(event.group) ?? create(event.group);
        instance.members.add(event.device);
        if (!instance.record.devices.includes(event.device)) instance.record.devices.push(event.device);
        instance.emptied = false;
        groupOfDevice.set(event.device, instance);
        break;
      }
      case 'device-removed': {
        if (event.device === undefined) break;
        // 6.12's device-gone marks carry no group: the device's last add tells which instance.
        const instance =
          groupOfDevice.get(event.device) ?? (event.group !== undefined ? live.get(event.group) : undefined);
        if (!instance?.members.delete(event.device)) break;
        groupOfDevice.delete(event.device);
        if (instance.members.size === 0) {
          instance.emptied = true;
          if (event.step !== undefined) instance.emptiedStep = event.step;
          else delete instance.emptiedStep;
        }
        break;
      }
      case 'released': {
        if (event.group === undefined) break;
        const instance = live.get(event.group);
        // The release right after a failed allocation of this id (or of a kobject whose name failed) is that allocation's.
        const failedJustBefore = pendingFailure !== undefined && (pendingFailure.group ?? event.group) === event.group && event.line - pendingFailure.line <= 3;
        if (!instance && failedJustBefore) break;
        if (!instance) {
          anomalies.push({
            kind: lastReleased.has(event.group) ? 'double-release' : 'release-of-unknown',
            group: event.group,
            line: event.line,
          });
          break;
        }
        // On 6.12 the release usually comes before the harness's device-gone mark: releasing
        // settles the instance whatever members the ledger still lists.
        instance.record.released = true;
        instance.record.releasedLine = event.line;
        live.delete(event.group);
        lastReleased.set(event.group, instance);
        break;
      }
    }
  }

  const leaks: LeakFinding[] = instances
    .filter((i) => !i.record.released && i.emptied)
    .map((i) => {
      const leak: LeakFinding = { group: i.record.id, devices: [...i.record.devices] };
      if (i.emptiedStep !== undefined) leak.step = i.emptiedStep;
      return leak;
    });
  return { groups: instances.map((i) => i.record), leaks, anomalies };
}
