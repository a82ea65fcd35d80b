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
}

// syzkaller's consoleOutputRe, widened for util-linux dmesg which puts a space before the caller id.
const prefixRe =
  /^(?:\*\* \d+ printk messages dropped \*\* )?(?:.* login: )?(?:<\d+>)?\[ *\d+\.\d+\](?: ?\[ *([CT]\d+)\])? /;
const levelOnlyRe = /^<\d+>/;
const questionableRe = /^(?:\[<[0-9a-f]+>\])? \? /;

export function splitLines(text: string): LogLine[] {
  const raw = text.split('\n');
  if (raw.length > 0 && raw[raw.length - 1] === '') raw.pop();
  return raw.map(parseLine);
}

function parseLine(line: string): LogLine {
  const clean = line.endsWith('\r') ? line.slice(0, -1) : line;
  const m = prefixRe.exec(clean);
  if (!m) {
    return { text: clean.replace(levelOnlyRe, ''), context: '', questionable: false };
  }
  const body = clean.slice(m[0].length);
  const context = m[1] ?? 'console';
  // <EOI> lines look like questionable frames but mark the end of an interrupt stack.
  if (!body.includes('<EOI>')) {
    if (questionableRe.test(body)) return { text: body.slice(body.indexOf(' ? ') + 2), context, questionable: true };
    // powerpc marks the same doubt with a suffix.
    if (body.endsWith(' (unreliable)')) return { text: body.slice(0, -13), context, questionable: true };
  }
  return { text: body, context, questionable: false };
}
