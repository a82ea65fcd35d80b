// Stack frames to source lines. A report's frames are `func+0xOFF/0xLEN`. The
// harness builds kernels without DWARF (a cold build is minutes shorter), so
// the frames' objects are compiled again with -g when a report has frames
// (harness/build/frame-lines.ts); a vmlinux that has line tables (a --kconfig
// with DEBUG_INFO, shell --gdb's kernel) is read directly with nm and
// addr2line. Parsing is pure; the tool calls are the only I/O.
import { describeError } from '../errors.ts';
import { binutils, frameKey, frameLines, parseInnermost } from '../build/frame-lines.ts';
import type { ResultReport, ScenarioRun } from './result.ts';

export interface FrameRef {
  function: string;
  offset: number;
}

export interface SymbolizedFrame {
  function: string;
  /** `path/file.c:LINE`, relative to the kernel tree. */
  location?: string;
}

const framePattern = /(?:^|\s|RIP: [0-9a-f]{4}:)(?:\?\s+)?([A-Za-z_][\w.]*)\+0x([0-9a-f]+)\/0x[0-9a-f]+/;

/** The frames a report prints, in order, each once; `?` (unreliable) frames left out. */
export function framesOf(text: string): FrameRef[] {
  const frames: FrameRef[] = [];
  const seen = new Set<string>();
  for (const line of text.split('\n')) {
    // `?` entries are unreliable; lockdep's irq-event stamps name where irqs
    // were last switched, not frames of this stack.
    if (/^\s*\?\s/.test(line) || /irqs last\s+(en|dis)abled at/.test(line)) continue;
    const match = framePattern.exec(line);
    if (!match?.[1] || !match[2]) continue;
    const key = `${match[1]}+${match[2]}`;
    if (seen.has(key)) continue;
    seen.add(key);
    frames.push({ function: match[1], offset: Number.parseInt(match[2], 16) });
  }
  return frames;
}

/** Function start addresses from `nm` output (text symbols only; the first of duplicates). */
export function parseNm(output: string): Map<string, bigint> {
  const symbols = new Map<string, bigint>();
  for (const line of output.split('\n')) {
    const match = /^([0-9a-f]+) [tTwW] (\S+)$/.exec(line);
    if (match?.[1] && match[2] && !symbols.has(match[2])) symbols.set(match[2], BigInt(`0x${match[1]}`));
  }
  return symbols;
}

/** `addr2line -a -f -i` output: the innermost location per address, relative to the tree. */
export const parseAddr2line = parseInnermost;

/** Whether vmlinux carries line tables: without them addr2line can only say `??`. */
async function hasLineInfo(vmlinux: string, prefix: string): Promise<boolean> {
  return (await binutils('readelf', ['-S', '--wide', vmlinux], { prefix })).includes('.debug_line');
}

/**
 * Adds `frames` with file:line to every report of the runs. Best effort: file:line
 * is a convenience on top of a finding, so a missing or failing nm/addr2line
 * (or an unreadable vmlinux) leaves the reports as they are, with a note on
 * each run that has reports, and never fails the run.
 */
export async function symbolizeRuns(runs: ScenarioRun[], vmlinux: string, toolPrefix = '', fromObjects?: ObjectLines): Promise<void> {
  const withReports = runs.filter((run) => run.reports.length > 0);
  if (withReports.length === 0) return;
  const reports = withReports.flatMap((run) => run.reports);
  try {
    if (await hasLineInfo(vmlinux, toolPrefix)) {
      await symbolizeReports(reports, vmlinux, toolPrefix);
    } else if (fromObjects) {
      const perReport = reports.map((report) => framesOf(report.text));
      const frames = [...new Map(perReport.flat().map((frame) => [frameKey(frame), frame])).values()];
      const lines = frames.length ? await fromObjects((buildDir) => frameLines(buildDir, vmlinux, frames, toolPrefix)) : new Map<string, string>();
      reports.forEach((report, index) => {
        report.frames = (perReport[index] ?? []).map((frame) => {
          const location = lines.get(frameKey(frame));
          return { function: frame.function, ...(location ? { location } : {}) };
        });
      });
    }
  } catch (error) {
    const note = `report frames not symbolized to file:line: ${describeError(error)}`;
    for (const run of withReports) run.notes.push(note);
  }
}

/**
 * Runs a lookup in the kernel's build directory while it holds that kernel's
 * sources and objects (harness/build/index.ts withKernelPlace).
 */
export type ObjectLines = (lookup: (buildDir: string) => Promise<Map<string, string>>) => Promise<Map<string, string>>;

async function symbolizeReports(reports: ResultReport[], vmlinux: string, prefix: string): Promise<void> {
  const symbols = parseNm(await binutils('nm', [vmlinux], { prefix }));
  const perReport = reports.map((report) => framesOf(report.text));
  const addresses = new Set<bigint>();
  for (const frames of perReport) {
    for (const frame of frames) {
      const start = symbols.get(frame.function);
      // The return address points after the call: step back one byte into it.
      if (start !== undefined) addresses.add(start + BigInt(Math.max(0, frame.offset - 1)));
    }
  }
  const hex = [...addresses].map((address) => `0x${address.toString(16)}`);
  const output = hex.length ? await binutils('addr2line', ['-e', vmlinux, '-a', '-f', '-i', ...hex], { prefix }) : '';
  const locations = parseAddr2line(output);
  reports.forEach((report, index) => {
    report.frames = (perReport[index] ?? []).map((frame) => {
      const start = symbols.get(frame.function);
      const location = start === undefined ? undefined : locations.get(start + BigInt(Math.max(0, frame.offset - 1)));
      return { function: frame.function, ...(location ? { location } : {}) };
    });
  });
}
