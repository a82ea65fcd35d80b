import { findGroupEvents, findStepMarks, stepAt } from './events.ts';
import { faultPrinters, findFaults } from './faults.ts';
import { splitLines, type LogLine } from './lines.ts';
import { findReports } from './reports.ts';
import type { BlindSpot, KernelReport, ParsedLog, StepMark } from './types.ts';

// Any taint (a WARN taints the kernel) switches lock debugging off just as a lockdep report does.
const taintOffRe = /Disabling lock debugging due to kernel taint/;
// print_lockdep_off() and the non-static key check say it in so many words, whatever came before
// (a table that ran out, "BUG: MAX_LOCKDEP_ENTRIES too low!", is no lock bug but ends checking too).
const validatorOffRe = /turning off the locking correctness validator/;
// lib/refcount.c prints each saturation type with WARN_ONCE: after the first underflow of a boot,
// every later underflow anywhere in the kernel prints nothing.
const refcountMessageRe = /^(refcount_t: [^\n]*?\.)\s*$/m;
// kmemleak_disable(): after an internal error (no memory for its metadata, an overlapping object)
// or kmemleak=off, kmemleak stops tracking and forgets what it had; no leak can be reported after.
const kmemleakOffRe = /kmemleak: (?:Kernel memory leak detector disabled|Kmemleak disabled without freeing)/;
// lib/ratelimit.c: a rate-limited printk that was not printed.
const suppressedRe = /^(\S+): (\d+) callbacks suppressed$/;
// The khungtaskd re-reports a task every timeout while it stays blocked: one hang, not several.
const hungTaskRe = /INFO: task (\S+:\d+) blocked/;
const releaseRe = /^Linux version (\S+) /;

export function parseKernelLog(text: string): ParsedLog {
  const lines = splitLines(text);
  const marks = findStepMarks(lines);
  const reports = foldRepeats(interleave(findReports(lines), findFaults(lines)), marks);
  const parsed: ParsedLog = { reports, groupEvents: findGroupEvents(lines, marks), marks, blindSpots: [] };
  const off = findLockdepOff(lines.map((l) => l.text), reports, marks);
  if (off) {
    parsed.lockdepOff = off;
    for (const report of reports) if (report.startLine > off.line) report.afterLockdepOff = true;
  }
  parsed.blindSpots = findBlindSpots(lines, marks, off, reports);
  const release = lines.map((line) => releaseRe.exec(line.text)?.[1]).find((found) => found !== undefined);
  if (release) parsed.release = release;
  return parsed;
}

/** Faults among the reports by line; the reports keep their order (by header, which an opener line may precede). */
function interleave(reports: KernelReport[], faults: KernelReport[]): KernelReport[] {
  const out: KernelReport[] = [];
  let next = 0;
  for (const report of reports) {
    while (next < faults.length && faults[next]!.startLine < report.startLine) out.push(faults[next++]!);
    out.push(report);
  }
  return [...out, ...faults.slice(next)];
}

/** Places each report in its step and folds a report the kernel printed again into the first. */
function foldRepeats(reports: KernelReport[], marks: StepMark[]): KernelReport[] {
  const firsts = new Map<string, KernelReport>();
  const kept: KernelReport[] = [];
  for (const report of reports) {
    const step = stepAt(marks, report.startLine);
    if (step !== undefined) report.step = step;
    const key = repeatKey(report);
    const first = key === undefined ? undefined : firsts.get(key);
    if (first) {
      first.repeats = (first.repeats ?? 0) + 1;
      continue;
    }
    if (key !== undefined) firsts.set(key, report);
    kept.push(report);
  }
  return kept;
}

/** What makes two reports one: the same blocked task, or the same fault of the same device in one step. */
function repeatKey(report: KernelReport): string | undefined {
  if (report.kind === 'hang') {
    const task = report.lines.map((line) => hungTaskRe.exec(line)?.[1]).find((found) => found !== undefined);
    return task === undefined ? undefined : `hang ${report.title} ${task}`;
  }
  if (report.kind === 'iommu-fault') return `fault ${report.title} ${report.device ?? ''} ${report.step ?? ''}`;
  return undefined;
}

/**
 * The message of a warning the kernel prints once per boot (a refcount_t saturation type), which a
 * later report of the same kind cannot show again; undefined for a report that can recur.
 */
export function oneShotMessage(report: { kind: KernelReport['kind']; lines: readonly string[] }): string | undefined {
  if (report.kind !== 'refcount') return undefined;
  return refcountMessageRe.exec(report.lines.join('\n'))?.[1];
}

function findBlindSpots(lines: LogLine[], marks: StepMark[], lockdepOff: ParsedLog['lockdepOff'], reports: KernelReport[]): BlindSpot[] {
  const spots: BlindSpot[] = [];
  const add = (spot: Omit<BlindSpot, 'step'>) => {
    const step = stepAt(marks, spot.line);
    spots.push(step === undefined ? spot : { ...spot, step });
  };
  if (lockdepOff) add({ check: 'lockdep', line: lockdepOff.line, reason: `lock checking was off after ${lockdepOff.title}` });
  const spent = new Set<string>();
  for (const report of reports) {
    const message = oneShotMessage(report);
    if (message === undefined || spent.has(message)) continue;
    spent.add(message);
    add({
      check: 'refcount',
      line: report.startLine,
      message,
      reason: `"${message}" was printed once (${report.title}): the kernel warns once per refcount type, so a later one printed nothing`,
    });
  }
  for (const [line, { text, dropped }] of lines.entries()) {
    if (dropped) add({ check: 'log', line, reason: `the kernel dropped ${dropped} log message(s)` });
    if (kmemleakOffRe.test(text)) add({ check: 'kmemleak', line, reason: `kmemleak was disabled (${text})` });
    const suppressed = suppressedRe.exec(text);
    if (suppressed?.[1] && faultPrinters.includes(suppressed[1])) {
      add({ check: 'log', line, reason: `the kernel suppressed ${suppressed[2]} message(s) of ${suppressed[1]}` });
    }
  }
  return spots.sort((a, b) => a.line - b.line);
}

function findLockdepOff(texts: string[], reports: KernelReport[], marks: StepMark[]): ParsedLog['lockdepOff'] {
  const lockdep = reports.find((r) => r.kind === 'lockdep');
  const candidates: Array<{ line: number; report?: KernelReport }> = [];
  if (lockdep) candidates.push({ line: lockdep.startLine, report: lockdep });
  for (const re of [taintOffRe, validatorOffRe]) {
    const line = texts.findIndex((t) => re.test(t));
    if (line < 0) continue;
    const cause = reports.filter((r) => r.startLine <= line).at(-1);
    candidates.push(cause ? { line, report: cause } : { line });
  }
  const first = candidates.sort((a, b) => a.line - b.line)[0];
  if (!first) return undefined;
  const off: NonNullable<ParsedLog['lockdepOff']> = {
    line: first.line,
    title: first.report?.title ?? texts[first.line] ?? '',
  };
  const step = stepAt(marks, first.line);
  if (step !== undefined) off.step = step;
  return off;
}
