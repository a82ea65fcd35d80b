// Pure reading of kernel build output.
import { hostTrouble } from '../errors.ts';

/** The first lines that say why a build failed, for the one-line cause and the excerpt. */
export function firstBuildErrors(log: string, max = 8): string[] {
  const lines = log.split('\n');
  const index = lines.findIndex((line) => /\berror:|undefined reference|\*\*\* \[|Error \d+/.test(line));
  if (index < 0) return lines.filter((line) => line.trim()).slice(-max);
  return lines.slice(index, index + max);
}

/** The file Kbuild is working on, from a quiet-mode line such as `  CC      drivers/iommu/iommu.o`. */
export function buildProgressTarget(line: string): string | undefined {
  const match = /^\s{2}([A-Z][A-Z0-9_]*)\s+(\S+)/.exec(line);
  return match ? `${match[1]} ${match[2]}` : undefined;
}

/** Why a failed build is the machine's fault and not the code's, when its log says so. */
export interface BuildTrouble {
  kind: 'host' | 'prerequisite';
  reason: string;
}

/**
 * A build that failed for want of disk, memory or a program says so in its
 * log. Judged as the commit's build failure it would make `git bisect` skip
 * every commit on a full disk and never stop.
 */
export function buildTrouble(log: string): BuildTrouble | undefined {
  const disk = hostTrouble(log);
  if (disk) return { kind: 'host', reason: disk };
  if (/fatal error: Killed signal terminated program|virtual memory exhausted|Cannot allocate memory/.test(log)) return { kind: 'host', reason: 'out of memory' };
  // `/bin/sh: 1: flex: not found`, `make[2]: bison: No such file or directory` (make running a program it cannot find).
  const program =
    /^(?:\/bin\/)?(?:ba|da)?sh: (?:(?:line )?\d+: )?([\w.+-]+): (?:command )?not found$/m.exec(log)?.[1] ??
    /^make(?:\[\d+\])?: ([\w.+-]+): No such file or directory$/m.exec(log)?.[1];
  if (program) return { kind: 'prerequisite', reason: `the build needs ${program}, which is not installed` };
  const install = /please install ([\w.+-]+)/i.exec(log)?.[1];
  if (install) return { kind: 'prerequisite', reason: `the build needs ${install}, which is not installed` };
  return undefined;
}
