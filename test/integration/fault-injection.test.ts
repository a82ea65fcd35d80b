// Fault-injection patches beyond the two in pipeline.test.ts: each is a small,
// realistic bug in the VFIO or iommu core, and each must be caught with the
// right kind, title and step. Real kernels, real QEMU; every patch rebuilds
// incrementally in the shared build directory (about 30 s on 2 cores) and
// boots one machine (about 15 s under TCG).
import test from 'ava';
import { eduDevice, rootPort } from '../../harness/machine/topology.ts';
import { runHarness } from '../../harness/run.ts';
import type { Scenario } from '../../harness/scenario/scenario.ts';
import { assertOneGroupLeak, cells, only, patch, progress, runMatrix, runWithPatch, summary } from './helpers.ts';
import { scenarioByName } from '../../scenarios/index.ts';

const vfioBindUnbind = scenarioByName('vfio-bind-unbind')!;
const removeRescan = scenarioByName('remove-rescan')!;
const pciHotplug = scenarioByName('pci-hotplug')!;
const pciHotplugNative = scenarioByName('pci-hotplug-native')!;
/** Cases that need a kernel no other test in `npm test` builds: `npm run test:full`. */
const full = process.env.IOMMU_HARNESS_FULL ? test.serial : test.serial.skip;

/** The step in which each scenario's device leaves. */
const removalStep: Record<string, string> = { 'vfio-bind-unbind': 'vfio-bind-unbind/remove', 'pci-hotplug': 'pci-hotplug/del' };
/** Beyond intel-iommu and sysfs removal: the other vIOMMU and the hotplug path. */
const hotplugMatrix = { iommus: ['intel', 'virtio'] as const, scenarios: [vfioBindUnbind, pciHotplug] };

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

test.serial('the clean kernel passes vfio-bind-unbind and pci-hotplug on intel-iommu and virtio-iommu, every removed device\'s group released', async (t) => {
  t.timeout(30 * 60_000);
  const result = await runMatrix(t, [], [...hotplugMatrix.iommus], hotplugMatrix.scenarios);
  t.is(result.verdict, 'pass', summary(result));
  for (const { iommu, scenario } of cells([...hotplugMatrix.iommus], hotplugMatrix.scenarios)) {
    const run = only(result, iommu, scenario.name);
    t.is(run.verdict, 'pass', `${iommu}/${scenario.name}\n${summary(result)}`);
    t.deepEqual(run.leaks, [], `${iommu}/${scenario.name}`);
    t.true(run.groups.some((group) => group.released), `${iommu}/${scenario.name} saw no group released`);
  }
});

test.serial('a dropped group reference is reported as a leak on virtio-iommu too, and when the device leaves by hot unplug', async (t) => {
  t.timeout(30 * 60_000);
  // The kernel pipeline.test.ts builds for intel-iommu and vfio-bind-unbind: here it costs two boots.
  const result = await runMatrix(t, ['fault-group-ref-leak.patch'], [...hotplugMatrix.iommus], hotplugMatrix.scenarios);
  t.is(result.verdict, 'fail');
  for (const { iommu, scenario } of cells([...hotplugMatrix.iommus], hotplugMatrix.scenarios)) {
    const run = only(result, iommu, scenario.name);
    t.is(run.verdict, 'fail', `${iommu}/${scenario.name}\n${summary(result)}`);
    t.deepEqual(run.reports, [], `${iommu}/${scenario.name}: the kernel itself says nothing`);
    assertOneGroupLeak(t, run, removalStep[scenario.name]!);
  }
});

test.serial('a default domain left to iommu_group_release() is a WARNING there on virtio-iommu too, and on hot unplug', async (t) => {
  t.timeout(30 * 60_000);
  const result = await runMatrix(t, ['fault-default-domain-warn.diff'], [...hotplugMatrix.iommus], hotplugMatrix.scenarios);
  t.is(result.verdict, 'fail');
  for (const { iommu, scenario } of cells([...hotplugMatrix.iommus], hotplugMatrix.scenarios)) {
    const run = only(result, iommu, scenario.name);
    t.is(run.verdict, 'fail', `${iommu}/${scenario.name}\n${summary(result)}`);
    const warning = run.reports.find((report) => report.title === 'WARNING in iommu_group_release');
    t.truthy(warning, `${iommu}/${scenario.name}: ${summary(result)}`);
    t.is(warning?.kind, 'warning');
    t.is(warning?.step, removalStep[scenario.name]);
  }
});

test.serial('native hot-remove runs with lockdep on: a lock inversion on the removal path fails pci-hotplug-native, which the clean kernel passes', async (t) => {
  t.timeout(30 * 60_000);
  const iommus = ['intel', 'virtio'] as const;
  const clean = await runMatrix(t, [], [...iommus], [pciHotplugNative]);
  // The same kernel the remove-rescan case above builds: two more boots.
  const faulty = await runMatrix(t, ['fault-remove-lock-inversion.patch'], [...iommus], [pciHotplugNative]);
  t.is(faulty.verdict, 'fail');
  for (const iommu of iommus) {
    const cleanRun = only(clean, iommu, 'pci-hotplug-native');
    t.is(cleanRun.verdict, 'pass', `${iommu}: ${summary(clean)}`);
    t.true(cleanRun.groups.some((group) => group.released), `${iommu}: the removed device's group was released`);
    // 6.12's own pciehp report comes after the device is gone, and is known.
    t.true(cleanRun.reports.length > 0 && cleanRun.reports.every((report) => report.known !== undefined), summary(clean));

    const run = only(faulty, iommu, 'pci-hotplug-native');
    t.is(run.verdict, 'fail', `${iommu}: ${summary(faulty)}`);
    const lockdep = run.reports.find((report) => report.kind === 'lockdep' && !report.known);
    t.truthy(lockdep, `${iommu}: ${summary(faulty)}`);
    t.is(lockdep?.title, 'possible deadlock in __iommu_group_remove_device');
    t.regex(lockdep?.text ?? '', /iommu_probe_device_lock/);
    t.is(lockdep?.step, 'pci-hotplug-native/del');
    // Reached through pciehp, not through sysfs or ACPI.
    t.regex(lockdep?.text ?? '', /pciehp_unconfigure_device/);
  }
});

/**
 * vfio-pci's removal waits for an open VFIO fd interruptibly; a rescan queued
 * behind it waits on pci_rescan_remove_lock uninterruptibly: a real blocked
 * task, made without a fault patch. The step gives up after its timeout.
 */
const hungRescan: Scenario = {
  name: 'hung-rescan',
  proves: 'a rescan stuck behind a removal that an open VFIO fd blocks is reported as a hang in the step that blocked',
  iommus: ['intel'],
  topology: { devices: [rootPort('rp-hung', 11), eduDevice('edu-hung', 'rp-hung')] },
  async run(guest) {
    await guest.mark('open');
    const bdf = await guest.bdfOf('edu-hung');
    await guest.bind(bdf, 'vfio-pci');
    // Longer than the step timeout (60 s): the step blocks, not just waits.
    const hold = await guest.vfioHold(bdf, 100_000);
    hold.done.catch(() => undefined);
    await guest.mark('remove-and-rescan');
    guest.run(['sh', '-c', 'echo 1 > "$1"', 'sh', `/sys/bus/pci/devices/${bdf}/remove`], 180_000).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    await guest.rescan();
  },
};

test.serial('a step that blocks fails with the hang report in that step, and the scenarios after it are not blamed', async (t) => {
  t.timeout(30 * 60_000);
  const result = await runMatrix(t, [], ['intel'], [hungRescan, vfioBindUnbind]);
  const hung = only(result, 'intel', 'hung-rescan');
  t.is(hung.verdict, 'fail', summary(result));
  t.regex(hung.error ?? '', /remove-and-rescan: .*timed out/);
  const hangs = hung.reports.filter((report) => report.kind === 'hang');
  t.true(hangs.length > 0, summary(result));
  t.is(hangs[0]!.title, 'INFO: task hung in rescan_store');
  t.true(hangs.every((report) => report.step === 'hung-rescan/remove-and-rescan'));
  // The blocked task is still there: the rest of the boot is not run rather than blamed.
  const after = only(result, 'intel', 'vfio-bind-unbind');
  t.is(after.verdict, 'error');
  t.regex(after.error ?? '', /not run: hung-rescan\/remove-and-rescan left .* blocked/);
  t.deepEqual(after.reports, []);
});

/** The same blocked rescan, left running in the background: the step itself returns at once. */
const hungInBackground: Scenario = {
  ...hungRescan,
  name: 'hung-in-background',
  proves: 'a task the last step leaves blocked is reported as a hang of that step, though the step returned',
  async run(guest) {
    await guest.mark('open');
    const bdf = await guest.bdfOf('edu-hung');
    await guest.bind(bdf, 'vfio-pci');
    const hold = await guest.vfioHold(bdf, 90_000);
    hold.done.catch(() => undefined);
    await guest.mark('remove-and-rescan');
    guest.run(['sh', '-c', 'echo 1 > "$1"', 'sh', `/sys/bus/pci/devices/${bdf}/remove`], 180_000).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    guest.run(['sh', '-c', 'echo 1 > /sys/bus/pci/rescan'], 180_000).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  },
};

test.serial('a task the last step left blocked is that step\'s hang, not the next scenario\'s', async (t) => {
  t.timeout(30 * 60_000);
  const result = await runMatrix(t, [], ['intel'], [hungInBackground, vfioBindUnbind]);
  const hung = only(result, 'intel', 'hung-in-background');
  t.is(hung.verdict, 'fail', summary(result));
  const hangs = hung.reports.filter((report) => report.kind === 'hang');
  t.true(hangs.length > 0, summary(result));
  t.is(hangs[0]!.title, 'INFO: task hung in rescan_store');
  t.true(hangs.every((report) => report.step === 'hung-in-background/remove-and-rescan'));
  const after = only(result, 'intel', 'vfio-bind-unbind');
  t.regex(after.error ?? '', /not run: hung-in-background\/remove-and-rescan left .* blocked/);
  t.deepEqual(after.reports, []);
});

full('a VFIO mapping at the wrong IOVA is reported as an IOMMU fault of the edu device on intel-iommu and virtio-iommu', async (t) => {
  t.timeout(40 * 60_000);
  const result = await runMatrix(t, ['fault-wrong-iova-map.patch'], ['intel', 'virtio'], [vfioBindUnbind]);
  t.is(result.verdict, 'fail');
  for (const iommu of ['intel', 'virtio'] as const) {
    const run = only(result, iommu, 'vfio-bind-unbind');
    t.is(run.verdict, 'fail', `${iommu}: ${summary(result)}`);
    const fault = run.reports.find((report) => report.kind === 'iommu-fault');
    t.truthy(fault, `${iommu}: ${summary(result)}`);
    t.is(fault?.step, 'vfio-bind-unbind/container');
    // The edu device behind its root port, at the IOVA the helper gave it (which the patch left unmapped).
    t.is(fault?.device, '01:00.0', iommu);
    t.is(fault?.address, '0x100000', iommu);
    // The helper's byte compare failed too: the kernel's wrong DMA is a failed check (a finding), not a harness error.
    t.true(run.failedChecks.some((check) => /dma data mismatch/.test(check)), `${iommu}: ${run.failedChecks.join('; ')}`);
    t.is(run.error, undefined, iommu);
  }
  // Each vIOMMU in its own words: intel names the requester, virtio-iommu its endpoint id (bus << 8 | devfn).
  const faultText = (iommu: string) => only(result, iommu, 'vfio-bind-unbind').reports.find((report) => report.kind === 'iommu-fault')?.text ?? '';
  t.regex(faultText('intel'), /Request device \[01:00\.0\] fault addr 0x100000/);
  t.regex(faultText('virtio'), /page fault from EP 256 at 0x100000/);
});
