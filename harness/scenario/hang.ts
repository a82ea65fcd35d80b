// Hangs are found by the kernel's hung-task detector; these numbers make it
// speak inside the step that blocked, before that step gives up waiting.

/**
 * The guest's /proc/sys/kernel/hung_task_timeout_secs. debug.config's
 * default (30 s) would report a task only ~30-60 s after it blocked: after
 * the step had timed out and the next scenario had begun, or never, if the
 * boot ended first. Nothing the scenarios do keeps a task in D state for
 * seconds: vfio-pci's removal waits for an open fd interruptibly, and the
 * leakcheck profile has no kmemleak auto-scan thread to block on scan_mutex.
 */
export const hungTaskTimeoutSecs = 10;

/**
 * khungtaskd checks every timeout seconds (hung_task_check_interval_secs is
 * 0, which means the timeout), and reports a task not scheduled since the
 * previous check once it has waited at least the timeout: between one and two
 * timeouts after it blocked. The report takes a moment to print under TCG.
 */
export const hungTaskReportedWithinMs = 2 * hungTaskTimeoutSecs * 1000 + 5_000;

/**
 * The shortest a wait for the kernel may be (a device to leave, appear, or be
 * deleted): a step that blocks must still be running when the detector reports,
 * so the report lands in the step that blocked and not in the next one.
 */
export const blockingWaitMs = Math.max(30_000, hungTaskReportedWithinMs);

export const setHungTaskTimeoutScript = 'echo "$1" > /proc/sys/kernel/hung_task_timeout_secs';

/**
 * One round trip, one grep for the common case of none: `PID NAME` of every
 * task in uninterruptible sleep (State: D). A task that exits meanwhile is skipped.
 */
export const blockedTasksScript =
  'for f in $(grep -l "^State:.D" /proc/[0-9]*/status 2>/dev/null); do p=${f#/proc/}; while read -r k v; do [ "$k" = Name: ] && echo "${p%/status} $v" && break; done < "$f"; done 2>/dev/null; true';

export interface BlockedTask {
  pid: number;
  name: string;
}

export function parseBlockedTasks(output: string): BlockedTask[] {
  return output
    .split('\n')
    .map((line) => /^(\d+) (.+)$/.exec(line.trim()))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ pid: Number(match[1]), name: match[2]! }));
}
