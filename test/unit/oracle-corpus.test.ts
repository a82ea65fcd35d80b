// Conformance with google/syzkaller's parser on its own test corpus (kept outside the repo, in
// ../shared/corpus): per TYPE, the share of logs whose first report gets syzkaller's TITLE or an
// ALT, and silence on logs without a TITLE. The floors are the levels reached; raise them when
// agreement improves, never lower them.
import test from 'ava';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { parseKernelLog } from '../../harness/oracle/index.ts';
import { parseHeaderLog } from '../fixtures/oracle/header-log.ts';

const corpus = new URL('../../../shared/corpus/syzkaller-linux-reports/', import.meta.url);
/** The corpus as shipped in ../shared: fewer files means a partial copy, which would prove less. */
const minimumFiles = 373;
const present = existsSync(corpus);
// Absent, the test is skipped (and says so), never passed: agreement with syzkaller was not checked.
const corpusTest = present ? test : test.skip;
const title = `first-report titles agree with syzkaller per TYPE${present ? '' : ` (skipped: no corpus at ${corpus.pathname}; it lives in ../shared, outside the repo)`}`;

/** Minimum agreement, percent, per TYPE. */
const floors: Record<string, number> = {
  WARNING: 97,
  LOCKDEP: 100,
  REFCOUNT_WARNING: 100,
  'KASAN-READ': 100,
  'KASAN-WRITE': 100,
  'KASAN-USE-AFTER-FREE-READ': 100,
  'KASAN-USE-AFTER-FREE-WRITE': 100,
  'KASAN-INVALID-FREE': 100,
  'KASAN-NULL-POINTER-DEREFERENCE-READ': 100,
  LEAK: 100,
  HANG: 100,
  BUG: 100,
  'NULL-POINTER-DEREFERENCE': 100,
  MEMORY_SAFETY_BUG: 100,
  MEMORY_SAFETY_UBSAN: 100,
  ATOMIC_SLEEP: 100,
  DoS: 100,
  UBSAN: 100,
  KFENCE: 100,
  KMSAN: 100,
  KCSAN: 100,
  'NO-REPORT': 100,
  // Logs with a TITLE but no TYPE: two are out of scope (a Rust panic, an empty title).
  UNTYPED: 90,
  // syzkaller's own executor failures (SYZFAIL/SYZFATAL) are not kernel reports: not ported.
  SYZ_FAILURE: 0,
};

// Sanitizers beyond KASAN are grouped: a handful of logs each.
const group = (type: string): string => /^(KFENCE|KMSAN|KCSAN)-/.exec(type)?.[1] ?? type;

corpusTest(title, (t) => {
  const names = readdirSync(corpus);
  t.true(names.length >= minimumFiles, `${names.length} corpus files, expected at least ${minimumFiles}`);
  const stats = new Map<string, { files: number; agreed: number; misses: string[] }>();
  for (const name of names) {
    // Logs are bytes, not always UTF-8; latin1 keeps every byte as one character.
    const { headers, log } = parseHeaderLog(readFileSync(new URL(name, corpus), 'latin1'));
    const titles = [...(headers.get('TITLE') ?? []), ...(headers.get('ALT') ?? [])];
    const type = group(headers.get('TYPE')?.[0] ?? (titles.length > 0 ? 'UNTYPED' : 'NO-REPORT'));
    const first = parseKernelLog(log).reports[0];
    const agreed = titles.length === 0 ? first === undefined : first !== undefined && titles.includes(first.title);
    const s = stats.get(type) ?? { files: 0, agreed: 0, misses: [] };
    s.files++;
    if (agreed) s.agreed++;
    else s.misses.push(`${name}: want ${JSON.stringify(titles[0] ?? null)}, got ${JSON.stringify(first?.title ?? null)}`);
    stats.set(type, s);
  }
  const rows = [...stats].sort(([a], [b]) => a.localeCompare(b));
  t.log(`${'TYPE'.padEnd(36)} files agreed     %`);
  for (const [type, s] of rows) {
    t.log(`${type.padEnd(36)} ${String(s.files).padStart(5)} ${String(s.agreed).padStart(6)} ${((100 * s.agreed) / s.files).toFixed(1).padStart(5)}`);
  }
  for (const [type, s] of rows) {
    const pct = (100 * s.agreed) / s.files;
    const floor = floors[type];
    if (floor === undefined) {
      t.fail(`TYPE ${type} has no floor: add one at ${Math.floor(pct)}`);
      continue;
    }
    if (pct < floor) t.fail(`${type}: ${pct.toFixed(1)}% < floor ${floor}%\n  ${s.misses.join('\n  ')}`);
    else if (s.misses.length > 0) t.log(`${type} misses:\n  ${s.misses.join('\n  ')}`);
  }
  t.is([...stats.values()].reduce((sum, s) => sum + s.files, 0), names.length, 'every file was read');
});
