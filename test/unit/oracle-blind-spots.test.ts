// Checks the kernel runs once per boot: after they fire, the rest of the boot cannot show what
// they watch, and the oracle must say so (a blind spot) rather than let silence read as health.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { oneShotMessage, parseKernelLog } from '../../harness/oracle/index.ts';
import { parseHeaderLog } from '../fixtures/oracle/header-log.ts';

const capture = (name: string) => parseHeaderLog(readFileSync(new URL(`../fixtures/oracle/reports/${name}`, import.meta.url), 'utf8')).log;

// The shape print_lockdep_off() gives (kernel/locking/lockdep.c), followed by the dump_stack() of
// the caller that ran out: here alloc_list_entry(), out of MAX_LOCKDEP_ENTRIES.
const exhausted = (table: string) =>
  [
    '[    5.100000] iommu-harness: step vfio-bind-unbind/bind',
    `[    5.200000] BUG: ${table} too low!`,
    '[    5.200001] turning off the locking correctness validator.',
    '[    5.200002] CPU: 0 UID: 0 PID: 68 Comm: sh Not tainted 6.12.117+ #6',
    '[    5.200003] Call Trace:',
    '[    5.200004]  <TASK>',
    '[    5.200005]  dump_stack_lvl+0x5d/0x80',
    '[    5.200006]  add_lock_to_list+0x2c/0x120',
    '[    5.200007]  __lock_acquire+0x1234/0x2000',
    '[    5.200008]  lock_acquire+0xc1/0x2c0',
    '[    5.200009]  </TASK>',
    '[    6.000000] iommu-harness: step vfio-bind-unbind/unbind',
    '',
  ].join('\n');

test('a lockdep table that ran out is a lockdep report that turns lock checking off, not a plain BUG', (t) => {
  for (const table of ['MAX_LOCKDEP_ENTRIES', 'MAX_LOCKDEP_CHAINS', 'MAX_LOCKDEP_CHAIN_HLOCKS', 'MAX_LOCKDEP_KEYS', 'MAX_STACK_TRACE_ENTRIES', 'MAX_LOCK_DEPTH']) {
    const parsed = parseKernelLog(exhausted(table));
    t.is(parsed.reports[0]?.title, `BUG: ${table} too low!`);
    t.is(parsed.reports[0]?.kind, 'lockdep', table);
    t.is(parsed.lockdepOff?.title, `BUG: ${table} too low!`);
    const spot = parsed.blindSpots.find((candidate) => candidate.check === 'lockdep');
    t.is(spot?.step, 'vfio-bind-unbind/bind');
    t.regex(spot?.reason ?? '', new RegExp(`lock checking was off after BUG: ${table} too low!`));
  }
});

test('"turning off the locking correctness validator" alone is enough to know lockdep is off', (t) => {
  // A dmesg read at the default console level can lack the KERN_DEBUG "BUG:" line that came first.
  const parsed = parseKernelLog(
    ['[    5.100000] iommu-harness: step a/one', '[    5.200001] turning off the locking correctness validator.', '[    6.000000] iommu-harness: step a/two', ''].join('\n'),
  );
  t.is(parsed.lockdepOff?.step, 'a/one');
  t.deepEqual(
    parsed.blindSpots.map((spot) => spot.check),
    ['lockdep'],
  );
});

test('the first refcount_t warning of a type blinds the rest of the boot to that type, and only to it', (t) => {
  const log = capture('real-refcount-vfio-double-put.log');
  const parsed = parseKernelLog(log);
  const report = parsed.reports.find((candidate) => candidate.kind === 'refcount');
  t.is(oneShotMessage(report!), 'refcount_t: underflow; use-after-free.');
  const spots = parsed.blindSpots.filter((spot) => spot.check === 'refcount');
  t.is(spots.length, 1);
  t.is(spots[0]?.message, 'refcount_t: underflow; use-after-free.');
  t.is(spots[0]?.step, 'vfio-bind-unbind/unbind');
  t.regex(spots[0]?.reason ?? '', /once per refcount type/);
  t.is(oneShotMessage({ kind: 'warning', lines: ['refcount_t: underflow; use-after-free.'] }), undefined, 'a WARNING of another kind is not one-shot');
  t.is(parseKernelLog(capture('warn-iommu-group-release.log')).blindSpots.filter((spot) => spot.check === 'refcount').length, 0);
});
