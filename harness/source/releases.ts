// The kernel releases the harness was verified on: every scenario run on both
// vIOMMUs, the oracle's formats read from that release's printk calls and
// tested on its real consoles. A tree of another release still works; one
// newer than all of them gets a notice, not an error, since the messages the
// oracle reads may have moved.
import { formatVersion, type KernelVersion } from '../build/kconfig.ts';

/** Oldest first. */
export const verifiedReleases: readonly KernelVersion[] = [
  { major: 6, minor: 1 },
  { major: 6, minor: 12 },
  { major: 7, minor: 2 },
];

export function compareVersions(a: KernelVersion, b: KernelVersion): number {
  return a.major - b.major || a.minor - b.minor;
}

/**
 * One line for a tree outside the verified range (undefined inside it): a
 * release newer than every verified one, or older than the oldest.
 */
export function releaseNotice(version: KernelVersion, verified: readonly KernelVersion[] = verifiedReleases): string | undefined {
  const names = verified.map(formatVersion).join(', ');
  const newest = verified[verified.length - 1];
  const oldest = verified[0];
  if (newest && compareVersions(version, newest) > 0) {
    return `notice: Linux ${formatVersion(version)} is newer than every release the harness was verified on (${names}): a message the oracle reads may have changed, check surprising verdicts against the console`;
  }
  if (oldest && compareVersions(version, oldest) < 0) {
    return `notice: Linux ${formatVersion(version)} is older than every release the harness was verified on (${names})`;
  }
  return undefined;
}
