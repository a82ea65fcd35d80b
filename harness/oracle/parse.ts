import { findGroupEvents, findStepMarks, stepAt } from './events.ts';
import { splitLines } from './lines.ts';
import { findReports } from './reports.ts';
import type { KernelReport, ParsedLog, StepMark } from './types.ts';

// Any taint (a WARN taints the kernel) switches lock debugging off just as a lockdep report does.
const taintOffRe = /Disabling lock debugging due to kernel taint/;

export function parseKernelLog(text: string): ParsedLog {
  const lines = splitLines(text);
  const marks = findStepMarks(lines);
  const reports = findReports(lines);
  for (const report of reports) {
    const step = stepAt(marks, report.startLine);
    if (step !== undefined) report.step = step;
  }
  const parsed: ParsedLog = { reports, groupEvents: findGroupEvents(lines, marks), marks };
  const off = findLockdepOff(lines.map((l) => l.text), reports, marks);
  if (off) {
    parsed.lockdepOff = off;
    for (const report of reports) if (report.startLine > off.line) report.afterLockdepOff = true;
  }
  return parsed;
}

function findLockdepOff(texts: string[], reports: KernelReport[], marks: StepMark[]): ParsedLog['lockdepOff'] {
  const lockdep = reports.find((r) => r.kind === 'lockdep');
  const taintLine = texts.findIndex((t) => taintOffRe.test(t));
  const candidates: Array<{ line: number; report?: KernelReport }> = [];
  if (lockdep) candidates.push({ line: lockdep.startLine, report: lockdep });
  if (taintLine >= 0) {
    const cause = reports.filter((r) => r.startLine <= taintLine).at(-1);
    candidates.push(cause ? { line: taintLine, report: cause } : { line: taintLine });
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
