// A kselftest program run in the guest case by case: its own listing (`-l`)
// names the cases, and each runs alone (`-r fixture.variant.test`) after a
// step mark of its own in the kernel log, so a kernel report printed while it
// ran is placed in it. The guest's loop stops starting cases once the time
// budget is spent, and says which it did not reach. Pure, apart from the
// script the guest runs.
import type { ResultCase, ResultReport, ResultSuite } from '../report/result.ts';
import { parseTap } from '../oracle/ktap-results.ts';

/**
 * The cases `PROGRAM -l` lists (kselftest_harness.h, test_harness_list_tests()):
 * per fixture, rows of `%-20s %-25s %s` (fixture on its first row, then a
 * variant and a test per row, zipped); the cases are every variant x every test.
 */
export function parseKselftestList(listing: string): string[] {
  const cases: string[] = [];
  let fixture: string | undefined;
  let variants: string[] = [];
  let tests: string[] = [];
  const flush = () => {
    if (fixture === undefined) return;
    for (const variant of variants.length ? variants : ['']) for (const test of tests) cases.push(`${fixture}${variant ? `.${variant}` : ''}.${test}`);
  };
  for (const raw of listing.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || /^# FIXTURE\s/.test(line)) continue;
    if (/^-{10,}$/.test(line.trim())) {
      flush();
      fixture = undefined;
      variants = [];
      tests = [];
      continue;
    }
    let rest: string;
    if (line[0] !== ' ') {
      // A fixture's first row. Its name pads to 20 columns, or pushes the next column out by one space.
      const name = /^\S+/.exec(line)?.[0] as string;
      if (fixture !== undefined) flush();
      fixture = name;
      variants = [];
      tests = [];
      rest = line.slice(Math.max(21, name.length + 1));
    } else {
      rest = line.slice(21);
    }
    // The variant column is 25 wide: an empty variant is 25 spaces, then the test.
    if (rest.startsWith(' ')) {
      const test = rest.trim();
      if (test) tests.push(test);
    } else {
      const [variant, ...others] = rest.trim().split(/\s+/);
      if (variant) variants.push(variant);
      if (others.length) tests.push(others.join(' '));
    }
  }
  flush();
  return cases;
}

/**
 * The guest's loop: `$1` the program, `$2` the step-mark prefix, `$3` the
 * seconds from now after which no case starts (0: no budget), `$4` seconds a case may run
 * before it is killed (the suite's own per-test alarm comes first), then the
 * case names. Its lines: `@@ih start UPTIME CASE`, the case's TAP, `@@ih end
 * UPTIME EXIT CASE`, or `@@ih notreached CASE`.
 */
export const caseLoopScript = [
  'prog=$1; prefix=$2; budget=$3; limit=$4; shift 4',
  'read up _ < /proc/uptime; deadline=0; [ "$budget" = 0 ] || deadline=$(( ${up%.*} + budget ))',
  'for c in "$@"; do',
  '  read now _ < /proc/uptime',
  '  if [ "$deadline" != 0 ] && [ "${now%.*}" -ge "$deadline" ]; then echo "@@ih notreached $c"; continue; fi',
  '  printf "%s\\n" "iommu-harness: step $prefix/$c" > /dev/kmsg',
  '  echo "@@ih start $now $c"',
  '  timeout -s KILL "$limit" "$prog" -r "$c" < /dev/null 2>&1',
  '  rc=$?',
  '  read end _ < /proc/uptime',
  '  echo "@@ih end $end $rc $c"',
  'done',
].join('\n');

export interface SuiteRun {
  cases: ResultCase[];
  suite: ResultSuite;
  /** The `not ok` cases' reports, kind `selftest`, each in its case's step. */
  reports: ResultReport[];
}

/** The output of caseLoopScript for one program, judged: every listed case has a row, whether it ran or not. */
export function parseCaseLoop(output: string, options: { suite: string; stepPrefix: string; cases: string[]; budgetSeconds?: number }): SuiteRun {
  const rows = new Map<string, ResultCase>();
  const reports: ResultReport[] = [];
  const lines = output.split('\n');
  let first: number | undefined;
  let last: number | undefined;
  for (let index = 0; index < lines.length; index++) {
    const line = (lines[index] as string).replace(/\r$/, '');
    const notReached = /^@@ih notreached (\S+)$/.exec(line);
    if (notReached) {
      const name = notReached[1] as string;
      rows.set(name, { suite: options.suite, name, result: 'skip', reason: `not reached: the time budget of ${options.budgetSeconds ?? 0} s ran out before it started` });
      continue;
    }
    const start = /^@@ih start (\d+(?:\.\d+)?) (\S+)$/.exec(line);
    if (!start) continue;
    const name = start[2] as string;
    const started = Number(start[1]);
    first ??= started;
    const body: string[] = [];
    let end: RegExpExecArray | null = null;
    for (index++; index < lines.length; index++) {
      const next = (lines[index] as string).replace(/\r$/, '');
      end = /^@@ih end (\d+(?:\.\d+)?) (\d+) (\S+)$/.exec(next);
      if (end) break;
      body.push(next);
    }
    const step = `${options.stepPrefix}/${name}`;
    if (!end) {
      // The loop's output stopped inside the case: the guest command ended (a timeout) or the guest was lost.
      rows.set(name, { suite: options.suite, name, result: 'not ok', reason: 'the case never finished: its output stops here', step });
      reports.push(caseReport(options.suite, name, step, 'the case never finished (the guest command ended while it ran)', body));
      break;
    }
    const ended = Number(end[1]);
    last = ended;
    const exit = Number(end[2]);
    const seconds = Math.round((ended - started) * 100) / 100;
    const tap = parseTap(body.join('\n'));
    const own = tap.cases.find((candidate) => candidate.name === name) ?? (tap.cases.length === 1 ? tap.cases[0] : undefined);
    let row: ResultCase;
    if (own && own.result === 'skip') {
      row = { suite: options.suite, name, result: 'skip', reason: own.reason ?? 'skipped', seconds, step };
    } else if (own && own.result === 'ok' && exit === 0) {
      row = { suite: options.suite, name, result: 'ok', seconds, step };
    } else {
      // No result line (the program died, or `timeout` killed it: exit 137) or `not ok`: a failure either way.
      const why = own ? (own.reason ?? (own.result === 'ok' ? `said ok but exited ${exit}` : 'not ok')) : exit === 137 ? `killed after its time limit, no result printed` : `no result printed (exit ${exit})`;
      row = { suite: options.suite, name, result: 'not ok', reason: why, seconds, step };
      reports.push(caseReport(options.suite, name, step, why, body));
    }
    rows.set(name, row);
  }
  // A listed case the loop never printed (the guest command ended first) is not reached either: never dropped.
  const cases = options.cases.map((name) => rows.get(name) ?? { suite: options.suite, name, result: 'skip' as const, reason: 'not reached: the suite stopped before it started' });
  for (const [name, row] of rows) if (!options.cases.includes(name)) cases.push(row);
  const seconds = first !== undefined && last !== undefined ? Math.round((last - first) * 100) / 100 : 0;
  const notReached = cases.filter((row) => row.result === 'skip' && row.reason?.startsWith('not reached')).length;
  return {
    cases,
    suite: { name: options.suite, seconds, planned: options.cases.length, notReached, ...(options.budgetSeconds ? { budgetSeconds: options.budgetSeconds } : {}) },
    reports,
  };
}

/** A failed case as a finding: kind `selftest`, its title naming the suite and the case, its text the case's own output. */
export function caseReport(suite: string, name: string, step: string | undefined, why: string, output: string[]): ResultReport {
  // The harness's own lines (`# RUN`, `# OK`, the plan) say nothing a reader needs; the assertions do.
  const text = output.filter((line) => !/^(TAP version|1\.\.\d+$|# Starting \d+ tests|# (PASSED|FAILED): |# Totals: )/.test(line));
  return { kind: 'selftest', title: `selftest failure in ${suite}: ${name}`, text: [`${suite}: ${name}: ${why}`, ...text].join('\n'), corrupted: false, ...(step ? { step } : {}) };
}
