// SPDX-License-Identifier: Apache-2.0
// Derived from google/syzkaller pkg/report (linux.go: findReport, isCorrupted), Copyright syzkaller project authors,
// Apache License 2.0 (LICENSES/Apache-2.0.txt, NOTICE). Ported to TypeScript and modified for
// iommu-harness; the changes are this project's.
// Cutting a log into kernel reports. The rules follow syzkaller's findReport: a report is the
// header line and the following lines printed by the same caller; a later header starts the next
// report unless it is one that rides along (a panic caused by the report), and a circular-locking
// splat arriving deep inside an unfinished report belongs to it (oops printing takes locks in
// unusual orders, so lockdep fires as a side effect).
//
// On top of syzkaller's rules, a cap: syzkaller reads one report per log, this oracle reads every
// report of a boot and places each in a harness step, so a report the kernel never closes (a hung
// task, a sleeping function called from invalid context: no end marker) must not run on into the
// rest of the boot. A report ends at the harness's next step mark in the kernel log, at a pause in the
// kernel's printing, or after a fixed number of lines; without caller ids, a circular-locking splat
// is taken as a side effect only when the kernel then closes the report around it.
import { frameRes, stackStartRes } from './frames.ts';
import { matchOops, reportContinuations, reportStartIgnores, type Oops, type OopsFormat } from './formats.ts';
import { kindOfTitle } from './kinds.ts';
import type { LogLine } from './lines.ts';
import { matchesAny } from './regex.ts';
import { extractDescription } from './titles.ts';
import type { KernelReport } from './types.ts';

/** Lines a report must have before a trailing panic or lockdep splat is taken as its side effect. */
const minLinesBeforeSideEffects = 22;
/** The most lines one report may own: enough for a lockdep chain with a full list of held locks. */
export const maxReportLines = 400;
/** The kernel prints a report in one go; a longer pause between two of its lines means it was over. */
export const maxReportPauseSeconds = 5;
// The harness's step mark: the step before it was over, and a report belongs to the step it began
// in. (A device-gone mark is not a boundary: it is written while the removal path, where a WARN may
// still be printing on the other CPU, finishes.)
const stepMarkRe = /^iommu-harness: step /;
const sideEffectRe = /Kernel panic - not syncing|WARNING: possible circular locking dependency detected/;
const endMarkerRe = /^-+\[ end (?:trace|Kernel panic)/;
// The sanitizers frame their reports with rules of '='; the closing one ends the report.
const ruleRe = /^={20,}$/;
const ruledReportRe = /BUG: K(?:ASAN|FENCE|MSAN|CSAN):/;
// The lines the kernel prints just before a header belong to the report: WARN's "cut here"
// (with the WARN message after it), and the rule above lockdep and sanitizer reports.
const openerRe = /^-+\[ cut here \]-+$|^={20,}$/;
const maxOpenerDistance = 5;
const cpuContextRe = /^C\d+$/;
// Messages that are not bugs but print a stack; without caller ids their stack cannot be told
// from the report's, so the title is taken from the text before them.
const infoMessagesWithStack = ['vmalloc: allocation failure:', 'FAULT_INJECTION: forcing a failure', 'FAULT_FLAG_ALLOW_RETRY missing'];

interface Segment {
  oops: Oops;
  start: number;
  end: number;
  /** Indices of the report's own lines. */
  own: number[];
  /** Indices of the lines its title is read from. */
  titleLines: number[];
  /** Header lines inside this segment that belong to it. */
  consumed: number[];
}

export function findReports(lines: LogLine[]): KernelReport[] {
  const headers = new Map<number, Oops>();
  for (const [i, line] of lines.entries()) {
    const oops = matchOops(line.text);
    if (oops) headers.set(i, oops);
  }
  const consumed = new Set<number>();
  const reports: KernelReport[] = [];
  for (const [start, oops] of headers) {
    if (consumed.has(start)) continue;
    const segment = collect(lines, headers, start, oops);
    for (const i of segment.consumed) consumed.add(i);
    reports.push(toReport(lines, segment));
  }
  return reports;
}

function isNewReportStart(text: string, previous: string): boolean {
  if (matchesAny(text, reportStartIgnores)) return false;
  return !reportContinuations.some((c) => c.header.test(text) && c.after.test(previous));
}

function collect(lines: LogLine[], headers: Map<number, Oops>, start: number, oops: Oops): Segment {
  const context = lines[start]?.context ?? '';
  // Without caller ids any line may be ours; with them, only our caller's lines are.
  const tagged = context !== '' && context !== 'console';
  const segment: Segment = { oops, start, end: start + 1, own: [start], titleLines: [start], consumed: [start] };
  const ruled = ruledReportRe.test(lines[start]?.text ?? '');
  const opener = findOpener(lines, start, context);
  if (opener !== undefined) {
    segment.start = opener;
    segment.own = lines.slice(opener, start).flatMap((l, k) => (l.context === context && !l.questionable ? [opener + k] : []));
    segment.own.push(start);
  }
  let seen = 1;
  let skipText = false;
  let cpuTraceback = false;
  let closed = false;
  // With caller ids syzkaller reads the title from all of the caller's later lines, even past the
  // next report (a stall's stack may come after a WARNING it provoked); without them it stops there.
  let cut = false;
  let titleFrozen = false;
  let pending: number[] = [];
  let lastTime = lines[start]?.time;
  for (let i = start + 1; i < lines.length; i++) {
    const line = lines[i];
    if (!line) break;
    const ours = line.context === context || (cpuTraceback && cpuContextRe.test(line.context));
    if (ours && !line.questionable && isPastCap(line, lastTime, seen, tagged)) break;
    if (!tagged && infoMessagesWithStack.some((m) => line.text.includes(m))) titleFrozen = true;
    const header = headers.get(i);
    if (header && (ours || !tagged) && !cut) {
      const sideEffect =
        !closed &&
        seen > minLinesBeforeSideEffects &&
        sideEffectRe.test(line.text) &&
        (tagged || closedAround(lines, headers, i, context, ruled));
      const previous = lines[segment.own.at(-1) ?? start]?.text ?? '';
      if (isNewReportStart(line.text, previous) && !sideEffect) {
        if (!tagged) {
          trimNextOpener(lines, segment, i, context);
          break;
        }
        cut = true;
      } else {
        segment.consumed.push(i);
        if (closed) {
          // A panic after the end marker is still this report's consequence.
          closed = false;
          segment.own.push(...pending);
          pending = [];
        }
      }
    }
    if (!ours || line.questionable) {
      if (!closed && !cut) segment.end = i + 1;
      continue;
    }
    seen++;
    if (line.time !== undefined) lastTime = line.time;
    if (!cut) {
      if (closed) {
        pending.push(i);
      } else {
        segment.end = i + 1;
        segment.own.push(i);
        if (endMarkerRe.test(line.text) || (ruled && ruleRe.test(line.text))) closed = true;
      }
    }
    if (line.text.includes('Disabling lock debugging due to kernel taint')) continue;
    if (line.text.includes('Sending NMI from CPU')) {
      // An all-CPU backtrace: other CPUs' lines are part of this report.
      cpuTraceback = true;
    } else if (seen > minLinesBeforeSideEffects && sideEffectRe.test(line.text)) {
      skipText = true;
    }
    if (!skipText && !titleFrozen) segment.titleLines.push(i);
  }
  return segment;
}

/** The cap: the line is not part of the report that was being printed before it. */
function isPastCap(line: LogLine, lastTime: number | undefined, seen: number, tagged: boolean): boolean {
  if (seen >= maxReportLines) return true;
  if (line.time !== undefined && lastTime !== undefined && line.time - lastTime > maxReportPauseSeconds) return true;
  // With caller ids the harness's marks have a caller of their own.
  return !tagged && stepMarkRe.test(line.text);
}

/**
 * Without caller ids a circular-locking splat inside an open report is its side effect only when
 * the kernel closes the report after it (the oops printing that provoked it goes on to its end
 * marker); a report that never closes (a hung task) would otherwise swallow a real deadlock
 * printed later.
 */
function closedAround(lines: LogLine[], headers: Map<number, Oops>, at: number, context: string, ruled: boolean): boolean {
  let lastTime = lines[at]?.time;
  for (let i = at + 1, seen = 0; i < lines.length && seen < maxReportLines; i++) {
    const line = lines[i];
    if (!line || headers.has(i)) return false;
    if (line.context !== context || line.questionable) continue;
    if (isPastCap(line, lastTime, seen, false)) return false;
    if (line.time !== undefined) lastTime = line.time;
    seen++;
    if (endMarkerRe.test(line.text) || (ruled && ruleRe.test(line.text))) return true;
  }
  return false;
}

/** The lines that open the next report (its rule, WARN's cut-here) are not this report's. */
function trimNextOpener(lines: LogLine[], segment: Segment, header: number, context: string): void {
  const opener = findOpener(lines, header, context);
  if (opener === undefined || opener <= segment.start) return;
  segment.own = segment.own.filter((i) => i < opener);
  segment.titleLines = segment.titleLines.filter((i) => i < opener);
  segment.end = Math.min(segment.end, opener);
}

function findOpener(lines: LogLine[], header: number, context: string): number | undefined {
  let seen = 0;
  let laterTime = lines[header]?.time;
  for (let i = header - 1; i >= 0 && seen < maxOpenerDistance; i--) {
    const line = lines[i];
    if (!line || line.context !== context) continue;
    // The opener is printed with its header: not across a step mark or a pause.
    if (stepMarkRe.test(line.text)) return undefined;
    if (line.time !== undefined && laterTime !== undefined && laterTime - line.time > maxReportPauseSeconds) return undefined;
    if (line.time !== undefined) laterTime = line.time;
    if (openerRe.test(line.text)) return i;
    seen++;
  }
  return undefined;
}

const srcRe = /([a-zA-Z0-9\-_/.]+\.[a-z]+:[0-9]+)/;
const titleFrameRe = / in ([a-zA-Z0-9_]+)$/;

function toReport(lines: LogLine[], segment: Segment): KernelReport {
  const reportLines = segment.own.map((i) => lines[i]?.text ?? '');
  const text = segment.titleLines.map((i) => lines[i]?.text ?? '').join('\n') + '\n';
  const desc = extractDescription(text, segment.oops) ?? { title: reportLines[0] ?? '', frames: [] };
  const corrupted = desc.corrupted !== undefined || isCorrupted(desc.title, text, desc.format);
  const report: KernelReport = {
    kind: kindOfTitle(desc.title),
    title: desc.title,
    corrupted,
    lines: reportLines,
    startLine: segment.start,
    endLine: segment.end,
  };
  const frame = desc.frames.find((f) => f !== 'corrupted') ?? titleFrameRe.exec(desc.title)?.[1];
  if (frame) report.guiltyFrame = frame;
  const location = srcRe.exec(lines[segment.titleLines[0] ?? segment.start]?.text ?? '')?.[1];
  if (location) report.location = location;
  return report;
}

// syzkaller's isCorrupted: a report that should have a stack but shows no frame after its
// "Call Trace:" (or kmemleak's "backtrace:", KASAN's "Allocated by task") was cut short.
function isCorrupted(title: string, text: string, format: OopsFormat | undefined): boolean {
  if (/\[ *[0-9]+\.[0-9]+\]/.test(title)) return true;
  if (!format || format.noStackTrace) return false;
  let hasStack = false;
  for (const key of stackStartRes) {
    const m = key.exec(text);
    if (!m) continue;
    const after = text.slice(m.index).split('\n');
    if (after.length < 4) return true;
    let found = false;
    for (const frameLine of after.slice(1, 16)) {
      if (matchesAny(frameLine, stackStartRes)) break;
      if (frameLine.includes('(stack is not available)') || matchesAny(frameLine, frameRes)) {
        found = true;
        break;
      }
    }
    if (!found) return true;
    hasStack = true;
  }
  return !hasStack;
}
