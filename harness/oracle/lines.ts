// SPDX-License-Identifier: Apache-2.0
// Derived from google/syzkaller pkg/report (linux.go: consoleOutputRe, stripLinePrefix), Copyright syzkaller project authors,
// Apache License 2.0 (LICENSES/Apache-2.0.txt, NOTICE). Ported to TypeScript and modified for
// iommu-harness; the changes are this project's.
// Console and dmesg captures carry per-line prefixes that are not part of the kernel message:
// a syslog level (`<4>`), a timestamp (`[   12.345678]`) and, with CONFIG_PRINTK_CALLER, the task or
// CPU that printed it (`[T53]`, `[ C1]`). The caller id is what lets two reports printed at the same
// time by different tasks be told apart, so it is kept as the line's context.

export interface LogLine {
  /** The message with prefixes and a trailing CR removed. */
  text: string;
  /**
   * Who printed the line: '' when the line has no timestamp (shell output, QEMU, or a capture
   * without timestamps), 'console' for a timestamp without caller id, else the caller id ("T53", "C1").
   */
  context: string;
  /**
   * A ` ? func+0x..` frame: the unwinder found the address on the stack but cannot vouch for it,
   * so syzkaller leaves such frames out of the report text.
   */
  questionable: boolean;
  /**
   * Messages the kernel dropped just before this line ("** N printk messages dropped **"): the
   * console could not keep up and lost them, so what the oracle reads around here is incomplete.
   */
  dropped?: number;
  /** The printk timestamp, seconds since boot, when the line has one. */
  time?: number;
}

// syzkaller's consoleOutputRe, widened for util-linux dmesg which puts a space before the caller id.
const prefixRe =
  /^(?:\*\* (\d+) printk messages dropped \*\* )?(?:.* login: )?(?:<\d+>)?\[ *(\d+\.\d+)\](?: ?\[ *([CT]\d+)\])? /;
// Since 5.19 the drop notice is a line of its own (console_prepend_message), before the timestamp.
const droppedLineRe = /^\*\* (\d+) printk messages dropped \*\*\s*$/;
const levelOnlyRe = /^<\d+>/;
const questionableRe = /^(?:\[<[0-9a-f]+>\])? \? /;

export function splitLines(text: string): LogLine[] {
  const raw = text.split('\n');
  if (raw.length > 0 && raw[raw.length - 1] === '') raw.pop();
  return raw.map(parseLine);
}

function parseLine(raw: string): LogLine {
  const clean = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
  const m = prefixRe.exec(clean);
  if (!m) {
    const dropped = droppedLineRe.exec(clean)?.[1];
    const bare: LogLine = { text: clean.replace(levelOnlyRe, ''), context: '', questionable: false };
    if (dropped) bare.dropped = Number(dropped);
    return bare;
  }
  const body = clean.slice(m[0].length);
  const context = m[3] ?? 'console';
  const line: LogLine = { text: body, context, questionable: false, time: Number(m[2]) };
  if (m[1]) line.dropped = Number(m[1]);
  // <EOI> lines look like questionable frames but mark the end of an interrupt stack.
  if (!body.includes('<EOI>')) {
    if (questionableRe.test(body)) return { ...line, text: body.slice(body.indexOf(' ? ') + 2), questionable: true };
    // powerpc marks the same doubt with a suffix.
    if (body.endsWith(' (unreliable)')) return { ...line, text: body.slice(0, -13), questionable: true };
  }
  return line;
}
