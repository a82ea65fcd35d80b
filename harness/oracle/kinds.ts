// SPDX-License-Identifier: Apache-2.0
// Derived from google/syzkaller pkg/report (crash: TitleToType), Copyright syzkaller project authors,
// Apache License 2.0 (LICENSES/Apache-2.0.txt, NOTICE). Ported to TypeScript and modified for
// iommu-harness; the changes are this project's.
// Which kind of finding a title is, in the spirit of syzkaller's crash.TitleToType: the title is
// the one stable thing every format produces, so the kind is read from it, first match wins.
import type { ReportKind } from './types.ts';

const kindNames: Record<ReportKind, true> = {
  warning: true, lockdep: true, bug: true, refcount: true, kasan: true, kmemleak: true, hang: true, panic: true, oops: true,
  ubsan: true, 'rcu-stall': true, gpf: true, 'null-deref': true, kfence: true, kmsan: true, kcsan: true, 'iommu-fault': true,
  'viommu-state': true, selftest: true,
};
/** Every kind, for checking user input (the known-issues file). */
export const reportKinds = Object.keys(kindNames) as ReportKind[];

const kindByTitle: Array<[RegExp, ReportKind]> = [
  // Made by the harness from a suite's `not ok` line (harness/selftest/cases.ts), never read from the kernel.
  [/^selftest failure in /, 'selftest'],
  [/^(DMAR|virtio-iommu): .*fault/, 'iommu-fault'],
  [/^WARNING: refcount bug/, 'refcount'],
  [
    /^(possible deadlock|inconsistent lock state|(WARNING|BUG): (locking bug|bad unlock balance|held lock freed|still has locks held|lock held when returning|nested lock)|(WARNING|INFO): suspicious RCU usage|INFO: trying to register non-static key)/,
    'lockdep',
  ],
  // lockdep ran out of a table sized at build time (print_lockdep_off() in kernel/locking/lockdep.c):
  // no bug in the code, but lock checking is off from here on, which is what the verdicts must know.
  [/^BUG: MAX_[A-Z_]+ too low!/, 'lockdep'],
  [/^KASAN: /, 'kasan'],
  [/^KFENCE: /, 'kfence'],
  [/^KMSAN: /, 'kmsan'],
  [/^KCSAN: /, 'kcsan'],
  [/^memory leak in /, 'kmemleak'],
  [/^INFO: rcu detected stall/, 'rcu-stall'],
  [/^(INFO: task hung|INFO: task can't die|BUG: soft lockup|BUG: workqueue lockup|BUG: spinlock lockup)/, 'hang'],
  [/^BUG: unable to handle kernel NULL pointer dereference/, 'null-deref'],
  [/^general protection fault/, 'gpf'],
  [/^UBSAN: /, 'ubsan'],
  [/^(kernel panic|kernel stack overflow)/, 'panic'],
  [/^(Internal error|Unhandled fault|Alignment trap|invalid opcode|divide error|stack segment fault|PANIC: double fault)/, 'oops'],
  [/^WARNING/, 'warning'],
];

export function kindOfTitle(title: string): ReportKind {
  for (const [re, kind] of kindByTitle) if (re.test(title)) return kind;
  return 'bug';
}
