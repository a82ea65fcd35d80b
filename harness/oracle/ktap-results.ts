// TAP and KTAP results as the kernel's own test suites print them: kselftest
// programs (`TAP version 13`, `ok N name # SKIP reason`, `# ` diagnostics,
// tools/testing/selftests/kselftest.h) and KUnit on the console (`KTAP version
// 1`, suites as indented subtests, parameterised tests one level deeper,
// Documentation/dev-tools/ktap.rst). Pure: text in, cases out.

/** One test case's result, as the suite printed it. */
export interface TapCase {
  /** The test's name, its parents' names before it joined with `.` (KUnit: `suite.test`, a parameter `suite.test.param`). */
  name: string;
  result: 'ok' | 'not ok' | 'skip';
  /** The directive's text: a skip's reason, an XFAIL's, a `not ok`'s `# error ...`. */
  reason?: string;
  /** The `#` lines printed while the case ran (an assertion's file:line and values), without the `# `. */
  diagnostics: string[];
  /** Seconds from the line before the case's output to its result line, where the lines carry printk timestamps. */
  seconds?: number;
}

export interface TapResults {
  cases: TapCase[];
  /** The plan the top level printed (`1..N`), when it did. */
  planned?: number;
  /** Tests the plan announced that printed no result line (a crash or timeout cut the output), by number. */
  missing: number[];
}

// `[   12.345678] ` printk timestamps, and the `[T1] ` / `[C0] ` caller ids some configs add.
const timestampRe = /^\[\s*(\d+\.\d+)\](?:\[\s*[TC]\d+\])?\s?/;
const resultRe = /^(not ok|ok)\s+(\d+)(?:\s+-)?(?:\s+([^#]*?))?\s*(?:#\s*(.*))?$/;
const planRe = /^1\.\.(\d+)/;
const versionRe = /^(?:K?TAP version \d+)\s*$/;
const subtestRe = /^#\s*Subtest:\s*(.+?)\s*$/;

interface Line {
  indent: number;
  text: string;
  time?: number;
}

function splitLine(raw: string): Line | undefined {
  let line = raw.replace(/\r$/, '');
  let time: number | undefined;
  const stamp = timestampRe.exec(line);
  if (stamp) {
    time = Number(stamp[1]);
    line = line.slice(stamp[0].length);
  }
  const indent = /^ */.exec(line)?.[0].length ?? 0;
  const text = line.slice(indent);
  return text === '' ? undefined : { indent, text, ...(time !== undefined ? { time } : {}) };
}

/** A directive's verdict: `# SKIP reason` is a skip; `# XFAIL` and `# TODO` keep the line's own result. */
function directiveOf(result: 'ok' | 'not ok', directive: string | undefined): Pick<TapCase, 'result' | 'reason'> {
  if (directive === undefined) return { result };
  const skip = /^SKIP\b\s*(.*)$/i.exec(directive);
  if (skip) return { result: 'skip', reason: skip[1]?.trim() || 'skipped (no reason given)' };
  return { result, ...(directive.trim() ? { reason: directive.trim() } : {}) };
}

/**
 * The cases of one TAP/KTAP document. A subtest (`# Subtest: NAME`, its lines
 * indented 4 more than its own result line) is a parent: its leaves are the
 * cases (KUnit's suite line, a parameterised test's line). A parent that
 * printed no leaf is a case itself (a suite that failed in its init, a test
 * skipped before its parameters ran), and so is a parent that failed while
 * every leaf passed (its exit).
 */
export function parseTap(text: string): TapResults {
  const lines = text.split('\n').map(splitLine).filter((line): line is Line => line !== undefined);
  const cases: TapCase[] = [];
  let planned: number | undefined;
  const seen = new Set<number>();
  /** Open subtests, outermost first: `indent` is where their own lines are. */
  const open: { name: string; indent: number; leaves: number; failed: boolean }[] = [];
  /** Diagnostics printed at each indentation since its last result line. */
  const notes = new Map<number, string[]>();
  let topIndent: number | undefined;
  let lastTime: number | undefined;

  for (const line of lines) {
    const { indent, text: body } = line;
    const subtest = subtestRe.exec(body);
    const plan = planRe.exec(body);
    const result = resultRe.exec(body);
    if (versionRe.test(body)) {
      topIndent ??= indent;
    } else if (subtest) {
      while (open.length && (open.at(-1) as { indent: number }).indent >= indent) open.pop();
      open.push({ name: subtest[1] as string, indent, leaves: 0, failed: false });
      notes.set(indent, []);
    } else if (plan) {
      topIndent ??= indent;
      if (indent === topIndent) planned ??= Number(plan[1]);
    } else if (result) {
      topIndent ??= indent;
      // A subtest left open deeper than this line lost its closing line (a crash): it ends here.
      while (open.length && (open.at(-1) as { indent: number }).indent > indent + 4) open.pop();
      const number = Number(result[2]);
      const name = (result[3] ?? '').trim() || `test ${number}`;
      const status = directiveOf(result[1] as 'ok' | 'not ok', result[4]);
      const child = open.at(-1)?.indent === indent + 4 ? open.pop() : undefined;
      const parents = open.filter((entry) => entry.indent <= indent).map((entry) => entry.name);
      const seconds = line.time !== undefined && lastTime !== undefined ? Math.round(Math.max(0, line.time - lastTime) * 1000) / 1000 : undefined;
      // KUnit prints a parameterised test's diagnostics at the test's indentation, one level above its parameters' results.
      const insideSubtest = open.at(-1)?.indent === indent;
      const own = [...(insideSubtest ? (notes.get(indent - 4) ?? []) : []), ...(notes.get(indent) ?? []), ...(child ? (notes.get(indent + 4) ?? []) : [])];
      if (insideSubtest && notes.has(indent - 4)) notes.set(indent - 4, []);
      const isCase = !child || child.leaves === 0 || (status.result === 'not ok' && !child.failed);
      if (isCase) {
        cases.push({ name: [...parents, name].join('.'), ...status, diagnostics: own, ...(seconds !== undefined ? { seconds } : {}) });
        for (const entry of open) {
          entry.leaves++;
          if (status.result === 'not ok') entry.failed = true;
        }
      } else if (child.failed) {
        for (const entry of open) entry.failed = true;
      }
      notes.set(indent, []);
      if (child) notes.delete(indent + 4);
      if (indent === topIndent) seen.add(number);
    } else {
      // `# ` diagnostics, and the unprefixed lines of a failed KUnit expectation (`Expected x == y, but`).
      const list = notes.get(indent) ?? notes.get(indent - 4) ?? [];
      list.push(body.replace(/^#\s?/, ''));
      if (!notes.has(indent) && notes.has(indent - 4)) notes.set(indent - 4, list);
      else notes.set(indent, list);
      continue;
    }
    if (line.time !== undefined) lastTime = line.time;
  }
  const missing = planned === undefined ? [] : Array.from({ length: planned }, (_, index) => index + 1).filter((number) => !seen.has(number));
  return { cases, ...(planned !== undefined ? { planned } : {}), missing };
}

/**
 * The KTAP document KUnit printed on a console: from the first top-level
 * `KTAP version` line (or `TAP version`, older kernels) to the end, with the
 * lines of other printers (a boot message, a kernel report interleaved) left
 * out. Empty when KUnit printed nothing.
 */
export function kunitConsoleKtap(console: string): string {
  const lines = console.split('\n');
  const start = lines.findIndex((raw) => {
    const line = splitLine(raw);
    return line !== undefined && line.indent === 0 && /^K?TAP version \d+\s*$/.test(line.text);
  });
  if (start < 0) return '';
  const out: string[] = [];
  for (const raw of lines.slice(start)) {
    const line = splitLine(raw);
    if (!line) continue;
    // KUnit's lines: versions, plans, results, `#` diagnostics, and the `Expected ...` lines of a failed expectation (indented).
    if (versionRe.test(line.text) || planRe.test(line.text) || resultRe.test(line.text) || line.text.startsWith('#') || line.indent >= 4) out.push(raw);
  }
  return out.join('\n');
}
