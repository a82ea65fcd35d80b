// Fault-injection patches beyond the two in pipeline.test.ts: each is a small,
// realistic bug in the VFIO or iommu core, and each must be caught with the
// right kind, title and step. Real kernels, real QEMU; every patch rebuilds
// incrementally in the shared build directory (about 30 s on 2 cores) and
// boots one machine (about 15 s under TCG).
import test from 'ava';
import { runHarness } from '../../harness/run.ts';
import { assertOneGroupLeak, only, patch, progress, runWithPatch, summary } from './helpers.ts';
import { scenarioByName } from '../../scenarios/index.ts';

const vfioBindUnbind = scenarioByName('vfio-bind-unbind')!;
const removeRescan = scenarioByName('remove-rescan')!;



test.serial('an iommu_group reference vfio_device_remove_group() never puts is reported as a leak of that device\'s group', async (t) => {
  t.timeout(30 * 60_000);
  const { result, run } = await runWithPatch(t, 'fault-vfio-group-release-leak.patch', vfioBindUnbind);
  t.is(result.verdict, 'fail');
  // A leak and nothing else: the kernel itself says nothing about it.
  t.deepEqual(run.reports, [], summary(result));
  assertOneGroupLeak(t, run, 'vfio-bind-unbind/remove');
  // The device the scenario bound and removed: edu, behind its own root port.
  t.deepEqual(run.leaks[0]?.devices.map((device) => /^0000:[0-9a-f]{2}:00\.0$/.test(device)), [true]);
});

test.serial('a registration put twice on iommufd cdev close is reported as a refcount underflow when the device is unbound', async (t) => {
  t.timeout(30 * 60_000);
  const { result, run } = await runWithPatch(t, 'fault-vfio-double-put.patch', vfioBindUnbind);
  t.is(result.verdict, 'fail');
  const refcount = run.reports.find((report) => report.kind === 'refcount');
  t.truthy(refcount, summary(result));
  t.is(refcount!.title, 'WARNING: refcount bug in vfio_unregister_group_dev');
  t.is(refcount!.location, 'lib/refcount.c:28');
  t.regex(refcount!.text, /refcount_t: underflow; use-after-free\./);
  t.is(refcount!.step, 'vfio-bind-unbind/unbind');
  // The underflow is the finding, not a leak: the group is still released.
  t.deepEqual(run.leaks, []);
  t.is(run.error, undefined);
});

test.serial('iommu_probe_device_lock taken under group->mutex on removal is reported by lockdep as a possible deadlock', async (t) => {
  t.timeout(30 * 60_000);
  const { result, run } = await runWithPatch(t, 'fault-remove-lock-inversion.patch', removeRescan);
  t.is(result.verdict, 'fail');
  const lockdep = run.reports.find((report) => report.kind === 'lockdep');
  t.truthy(lockdep, summary(result));
  t.is(lockdep!.title, 'possible deadlock in __iommu_group_remove_device');
  t.regex(lockdep!.text, /WARNING: possible circular locking dependency detected/);
  t.regex(lockdep!.text, /iommu_probe_device_lock/);
  t.regex(lockdep!.text, /&group->mutex/);
  t.is(lockdep!.step, 'remove-rescan/remove');
  // Lockdep only reports the potential; the scenario itself ran to the end.
  t.is(run.error, undefined);
});

test.serial('an extra put in iommu_group_remove_device() is reported as a refcount underflow when a no-iommu vfio device is unbound', async (t) => {
  t.timeout(30 * 60_000);
  const vfioNoiommu = scenarioByName('vfio-noiommu');
  if (!vfioNoiommu) {
    t.fail('the vfio-noiommu scenario is missing from scenarios/index.ts');
    return;
  }
  const result = await runHarness({
    patches: [patch('fault-external-remove-extra-put.patch')],
    kconfigs: [],
    iommus: ['none'],
    scenarios: [vfioNoiommu],
    progress,
  });
  t.log(summary(result));
  t.is(result.verdict, 'fail');
  const run = only(result, 'none', 'vfio-noiommu');
  const refcount = run.reports.find((report) => report.kind === 'refcount');
  t.truthy(refcount, summary(result));
  t.is(refcount!.title, 'WARNING: refcount bug in vfio_device_remove_group');
  t.regex(refcount!.text, /refcount_t: underflow; use-after-free\./);
  t.is(refcount!.step, 'vfio-noiommu/unbind');
  t.is(run.error, undefined);
});
