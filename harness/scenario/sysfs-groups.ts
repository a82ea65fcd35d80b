// The guest's own view of its iommu groups, read from sysfs after each step:
// the second witness the oracle holds the kernel log's group ledger against.

/** Group id to the devices sysfs lists in it; a group with no devices is listed with none. */
export type SysfsGroups = Record<number, string[]>;

/**
 * One round trip: a line per group, `group ID DEVICE...`. Every group
 * directory is listed, also one whose devices/ is empty, since a group left
 * with no devices that never goes away is exactly a leak.
 */
export const sysfsGroupsScript =
  'cd /sys/kernel/iommu_groups 2>/dev/null || exit 0; for g in *; do [ -d "$g" ] || continue; printf "group %s" "$g"; for d in "$g"/devices/*; do [ -e "$d" ] && printf " %s" "${d##*/}"; done; echo; done';

export function parseSysfsGroups(output: string): SysfsGroups {
  const groups: SysfsGroups = {};
  for (const line of output.split('\n')) {
    const [tag, id, ...devices] = line.trim().split(/\s+/);
    if (tag !== 'group' || !id || !/^\d+$/.test(id)) continue;
    groups[Number(id)] = devices.sort();
  }
  return groups;
}
