// "Fixed" is a claim that tonight could have seen last night's failure and did not: a cell that
// ran blind to it (lockdep off, the refcount type spent) proves nothing, whatever its verdict.
import test from 'ava';
import { night, run } from './nightly-fixtures.ts';

const lockdepOff = "lock checking was off after WARNING in vfio_unregister_group_dev, from vfio-bind-unbind/unbind on: a lock inversion in this scenario's steps would not be reported";
const inversion = { kind: 'lockdep' as const, title: 'possible deadlock in iommu_group_release', text: 'WARNING: possible circular locking dependency detected' };

test('a lock inversion last night is not fixed by a cell that failed on another report with lockdep off', (t) => {
  const yesterday = night([run({ scenario: 'vfio-bind-unbind', reports: [inversion] })], undefined, '2026-11-24');
  const blind = night([run({ scenario: 'vfio-bind-unbind', reports: [{ title: 'WARNING in vfio_unregister_group_dev' }], inconclusive: [lockdepOff] })], yesterday);
  t.is(blind.cells[0]?.verdict, 'fail');
  t.deepEqual(blind.diff.fixed, []);
  t.is(blind.summary.fixed, 0);
  t.deepEqual(blind.diff.unseen?.map((entry) => entry.signature), ['default.lockdep.intel.vfio-bind-unbind | report: possible deadlock in iommu_group_release']);
  t.regex(blind.diff.unseen?.[0]?.reason ?? '', /\(fail\) was blind to it: lock checking was off/);

  // Lockdep off does not hide a leak or a WARNING: those are fixed.
  const leaked = night([run({ scenario: 'vfio-bind-unbind', leaks: [{ group: 4, devices: ['0000:01:00.0'] }], reports: [{ title: 'WARNING in a' }] })], undefined, '2026-11-24');
  const seeing = night([run({ scenario: 'vfio-bind-unbind', reports: [{ title: 'WARNING in vfio_unregister_group_dev' }], inconclusive: [lockdepOff] })], leaked);
  t.deepEqual(seeing.diff.fixed.map((finding) => finding.signature).sort(), [
    'default.lockdep.intel.vfio-bind-unbind | leak: 0000:01:00.0',
    'default.lockdep.intel.vfio-bind-unbind | report: WARNING in a',
  ]);
  t.is(seeing.diff.unseen, undefined);
});

test('a refcount warning is not fixed by a boot that spent its type on a known one first; the cell is inconclusive', (t) => {
  const refcount = (title: string, known?: string) => ({
    kind: 'refcount' as const,
    title,
    text: '------------[ cut here ]------------\nrefcount_t: underflow; use-after-free.\nWARNING: CPU: 0 PID: 68 at lib/refcount.c:28 refcount_warn_saturate+0x99/0xda',
    ...(known ? { known } : {}),
  });
  const yesterday = night([run({ scenario: 'vfio-bind-unbind', reports: [refcount('WARNING: refcount bug in vfio_unregister_group_dev')] })], undefined, '2026-11-24');
  const spent = night([run({ scenario: 'vfio-bind-unbind', reports: [refcount('WARNING: refcount bug in pci_dev_put', 'triaged upstream')] })], yesterday);
  t.is(spent.cells[0]?.verdict, 'pass');
  t.deepEqual(spent.diff.fixed, []);
  t.is(spent.cells[0]?.status, 'inconclusive');
  t.regex(spent.diff.unseen?.[0]?.reason ?? '', /"refcount_t: underflow; use-after-free\." was printed already/);
  const clean = night([run({ scenario: 'vfio-bind-unbind' })], yesterday);
  t.is(clean.diff.fixed.length, 1);
  t.is(clean.cells[0]?.status, 'fixed');
});
