// What a person sees while the kernel builds: a percentage and an ETA on a
// terminal, a plain line every tenth in CI. Kbuild prints one quiet-mode line
// per target; how many a build prints is known from the previous build (a cold
// build of the default config prints about 3000). Pure: counts in, text out.

export interface BuildEstimate {
  /** Progress lines the previous comparable build printed; undefined when there was none. */
  expectedLines?: number;
}

function duration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  return seconds >= 60 ? `${Math.floor(seconds / 60)} min ${String(seconds % 60).padStart(2, '0')} s` : `${seconds} s`;
}

/** Percent done, capped at 99 until make ends (a build may print more lines than the last one). */
export function percentDone(lines: number, estimate: BuildEstimate): number | undefined {
  if (!estimate.expectedLines) return undefined;
  return Math.min(99, Math.floor((lines / estimate.expectedLines) * 100));
}

/** The status line for a terminal: `[#####.....] 52% 1580/3040, ETA 4 min 10 s  CC drivers/iommu/iommu.o`. */
export function statusLine(lines: number, elapsedMs: number, estimate: BuildEstimate, target: string): string {
  const percent = percentDone(lines, estimate);
  if (percent === undefined) return `building: ${lines} targets, ${duration(elapsedMs)}  ${target}`;
  const filled = Math.round(percent / 10);
  const remaining = lines > 0 ? (elapsedMs / lines) * Math.max(0, estimate.expectedLines! - lines) : undefined;
  return `[${'#'.repeat(filled)}${'.'.repeat(10 - filled)}] ${percent}% ${lines}/${estimate.expectedLines}${remaining === undefined ? '' : `, ETA ${duration(remaining)}`}  ${target}`;
}

/** Builds shorter than this many targets (an incremental rebuild) get no plain progress lines: they end in seconds. */
const milestoneMinimum = 300;

/** A plain line for logs when a long build crosses a tenth (or, without an estimate, every 500 targets). */
export function milestoneLine(lines: number, elapsedMs: number, estimate: BuildEstimate): string | undefined {
  if (estimate.expectedLines !== undefined && estimate.expectedLines < milestoneMinimum) return undefined;
  const percent = percentDone(lines, estimate);
  if (percent === undefined) return lines % 500 === 0 ? `building: ${lines} targets in ${duration(elapsedMs)}` : undefined;
  const previous = percentDone(lines - 1, estimate) ?? 0;
  if (Math.floor(percent / 10) === Math.floor(previous / 10) || percent < 10) return undefined;
  const remaining = (elapsedMs / lines) * Math.max(0, estimate.expectedLines! - lines);
  return `building: ${Math.floor(percent / 10) * 10}% (${lines}/${estimate.expectedLines} targets), ETA ${duration(remaining)}`;
}
