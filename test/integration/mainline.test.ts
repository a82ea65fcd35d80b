// Linux 7.2, the mainline the IOMMU developers patch, judged as well as 6.12:
// Debian unstable's linux-source-7.2 (`--src debian:7.2`, downloaded into the
// cache with the harness's own apt state), every fault-injection patch caught
// with the right kind on the vIOMMUs it applies to. `npm test` builds and boots
// one 7.2 kernel (the wrong-IOVA patch on intel-iommu: the mainline source,
// its build, a boot, and 7.2's DMAR fault line with its PCI segment, in one
// boot); the rest is `npm run test:full`. A patch that does not apply to 7.2
// has its 7.2 variant under test/fixtures/patches/7.2/.
import { existsSync } from 'node:fs';
import test, { type ExecutionContext } from 'ava';
import { missingRequirements, describeMissing } from '../../harness/host/preflight.ts';
import type { IommuModel } from '../../harness/machine/topology.ts';
import type { HarnessResult, ScenarioRun } from '../../harness/report/result.ts';
import { runHarness } from '../../harness/run.ts';
import type { Scenario } from '../../harness/scenario/scenario.ts';
import { debianMirror, hostAptSources } from '../../harness/source/debian-download.ts';
import { eduDevice, rootPort } from '../../harness/machine/topology.ts';
import { scenarioByName } from '../../scenarios/index.ts';
import { assertOneGroupLeak, only, patch, progress, summary } from './helpers.ts';

const src = 'debian:7.2';

/** Why this machine cannot fetch Debian unstable's source, or undefined. */
async function cannotFetch(): Promise<string | undefined> {
  const missing = await missingRequirements(['debian-source', 'debian-download']);
  if (missing.length > 0) return describeMissing(missing);
  if (!debianMirror(await hostAptSources())) return "no Debian mirror in the host's apt sources";
  return undefined;
}
const blocked = await cannotFetch();
const skipNote = blocked ? ` (skipped: ${blocked})` : '';
const mainline = blocked ? test.serial.skip : test.serial;
const full = !blocked && process.env.IOMMU_HARNESS_FULL ? test.serial : test.serial.skip;
const fullNote = `${skipNote}${process.env.IOMMU_HARNESS_FULL ? '' : ' (IOMMU_HARNESS_FULL=1)'}`;

/** The 7.2 variant of a fault patch where 7.2 needs one, else the patch itself. */
function patch72(name: string): string {
  const variant = patch(`7.2/${name}`);
  return existsSync(variant) ? variant : patch(name);
}

const scenario = (name: string): Scenario => {
  const found = scenarioByName(name);
  if (!found) throw new Error(`no scenario ${name}`);
  return found;
};

async function run72(t: ExecutionContext, patches: string[], iommus: IommuModel[], scenarios: Scenario[]): Promise<HarnessResult> {
  const result = await runHarness({ src, patches: patches.map(patch72), kconfigs: [], iommus, scenarios, progress });
  t.log(summary(result));
  t.log(`kernel ${result.kernel.release} (${result.kernel.source} ${result.kernel.packageVersion ?? '?'}), build ${result.timings.buildSeconds.toFixed(0)} s, boots ${JSON.stringify(result.timings.bootSeconds)}, total ${result.timings.totalSeconds.toFixed(0)} s`);
  return result;
}

const found = (run: ScenarioRun, kind: string) => run.reports.filter((report) => report.kind === kind && !report.known);

mainline(`7.2 from Debian unstable: a VFIO mapping at the wrong IOVA is an intel-iommu DMA fault of the edu device, read from 7.2's segment-prefixed DMAR line${skipNote}`, async (t) => {
  t.timeout(60 * 60_000);
  const result = await run72(t, ['fault-wrong-iova-map.patch'], ['intel'], [scenario('vfio-bind-unbind')]);
  t.regex(result.kernel.release, /^7\.2\.\d+/);
  t.is(result.kernel.source, 'debian:linux-source-7.2');
  t.regex(result.kernel.packageVersion ?? '', /^7\.2\.\d+-\d+/);
  t.like(result.kernel.preemption, { model: 'lazy', option: 'CONFIG_PREEMPT_LAZY' });
  t.is(result.verdict, 'fail');
  const run = only(result, 'intel', 'vfio-bind-unbind');
  // edu reads the source buffer at the IOVA the patch left unmapped, then writes it back: one fault each way.
  t.deepEqual(
    found(run, 'iommu-fault').map((fault) => [fault.title, fault.device, fault.address, fault.step]),
    [
      ['DMAR: DMA Read fault: PTE Read access is not set', '01:00.0', '0x100000', 'vfio-bind-unbind/container'],
      ['DMAR: DMA Write fault: PTE Write access is not set', '01:00.0', '0x100000', 'vfio-bind-unbind/container'],
    ],
    summary(result),
  );
  // 7.2's own words, segment first; 6.12 printed [01:00.0].
  t.regex(found(run, 'iommu-fault')[0]?.text ?? '', /Request device \[0000:01:00\.0\] fault addr 0x100000 \[fault reason 0x06\]/);
  // The helper's byte compare failed too, and nothing else was found.
  t.true(run.failedChecks.some((check) => /dma data mismatch/.test(check)), run.failedChecks.join('\n'));
  t.deepEqual(run.leaks, []);
  t.deepEqual(run.reports.filter((report) => report.kind !== 'iommu-fault' && !report.known), []);
});

full(`7.2: the same wrong IOVA is a virtio-iommu page fault of the same device${fullNote}`, async (t) => {
  t.timeout(60 * 60_000);
  const result = await run72(t, ['fault-wrong-iova-map.patch'], ['virtio'], [scenario('vfio-bind-unbind')]);
  const run = only(result, 'virtio', 'vfio-bind-unbind');
  const [fault] = found(run, 'iommu-fault');
  t.like(fault, { device: '01:00.0', address: '0x100000', step: 'vfio-bind-unbind/container' }, summary(result));
  t.regex(fault?.text ?? '', /page fault from EP 256 at 0x100000/);
  t.true(run.failedChecks.some((check) => /dma data mismatch/.test(check)), run.failedChecks.join('\n'));
});

full(`7.2: an iommu_group reference vfio_device_remove_group() never puts is a leak of that group, on both vIOMMUs${fullNote}`, async (t) => {
  t.timeout(60 * 60_000);
  const result = await run72(t, ['fault-vfio-group-release-leak.patch'], ['intel', 'virtio'], [scenario('vfio-bind-unbind')]);
  t.is(result.verdict, 'fail');
  for (const iommu of ['intel', 'virtio']) {
    const run = only(result, iommu, 'vfio-bind-unbind');
    t.deepEqual(run.reports.filter((report) => !report.known), [], `${iommu}: the kernel itself says nothing`);
    assertOneGroupLeak(t, run, 'vfio-bind-unbind/remove');
  }
});

full(`7.2: a dropped group reference is a leak on both vIOMMUs, by sysfs removal and by hot unplug${fullNote}`, async (t) => {
  t.timeout(60 * 60_000);
  const result = await run72(t, ['fault-group-ref-leak.patch'], ['intel', 'virtio'], [scenario('vfio-bind-unbind'), scenario('pci-hotplug')]);
  t.is(result.verdict, 'fail');
  for (const iommu of ['intel', 'virtio']) {
    for (const [name, step] of [
      ['vfio-bind-unbind', 'vfio-bind-unbind/remove'],
      ['pci-hotplug', 'pci-hotplug/del'],
    ] as const) {
      const run = only(result, iommu, name);
      t.deepEqual(run.reports.filter((report) => !report.known), [], `${iommu}/${name}`);
      assertOneGroupLeak(t, run, step);
    }
  }
});

full(`7.2: a registration put twice on iommufd cdev close is a refcount underflow at unbind, on both vIOMMUs${fullNote}`, async (t) => {
  t.timeout(60 * 60_000);
  const result = await run72(t, ['fault-vfio-double-put.patch'], ['intel', 'virtio'], [scenario('vfio-bind-unbind')]);
  t.is(result.verdict, 'fail');
  for (const iommu of ['intel', 'virtio']) {
    const run = only(result, iommu, 'vfio-bind-unbind');
    const [refcount] = found(run, 'refcount');
    t.like(refcount, { title: 'WARNING: refcount bug in vfio_unregister_group_dev', step: 'vfio-bind-unbind/unbind' }, `${iommu}: ${summary(result)}`);
    t.regex(refcount?.text ?? '', /refcount_t: underflow; use-after-free\./);
    // 7.2's WARNING header: FILE:LINE at FUNC, CPU#N: COMM/PID.
    t.regex(refcount?.text ?? '', /WARNING: lib\/refcount\.c:\d+ at refcount_warn_saturate\+0x[0-9a-f]+\/0x[0-9a-f]+, CPU#\d+: /);
    t.deepEqual(run.leaks, [], iommu);
  }
});

full(`7.2: iommu_probe_device_lock under group->mutex on removal is a lockdep deadlock in the remove step, on both vIOMMUs${fullNote}`, async (t) => {
  t.timeout(60 * 60_000);
  const result = await run72(t, ['fault-remove-lock-inversion.patch'], ['intel', 'virtio'], [scenario('remove-rescan')]);
  t.is(result.verdict, 'fail');
  for (const iommu of ['intel', 'virtio']) {
    const run = only(result, iommu, 'remove-rescan');
    const [lockdep] = found(run, 'lockdep');
    t.like(lockdep, { title: 'possible deadlock in __iommu_group_remove_device', step: 'remove-rescan/remove' }, `${iommu}: ${summary(result)}`);
    t.regex(lockdep?.text ?? '', /iommu_probe_device_lock/);
    t.regex(lockdep?.text ?? '', /&group->mutex/);
  }
});

full(`7.2: a default domain left to iommu_group_release() is a WARNING there, on both vIOMMUs and on hot unplug${fullNote}`, async (t) => {
  t.timeout(60 * 60_000);
  const result = await run72(t, ['fault-default-domain-warn.diff'], ['intel', 'virtio'], [scenario('vfio-bind-unbind'), scenario('pci-hotplug')]);
  t.is(result.verdict, 'fail');
  for (const iommu of ['intel', 'virtio']) {
    for (const [name, step] of [
      ['vfio-bind-unbind', 'vfio-bind-unbind/remove'],
      ['pci-hotplug', 'pci-hotplug/del'],
    ] as const) {
      const run = only(result, iommu, name);
      const warning = found(run, 'warning').find((report) => report.title === 'WARNING in iommu_group_release');
      t.truthy(warning, `${iommu}/${name}: ${summary(result)}`);
      t.is(warning?.step, step);
      t.regex(warning?.location ?? '', /^drivers\/iommu\/iommu\.c:\d+$/);
    }
  }
});

full(`7.2: an extra put in iommu_group_remove_device() is a refcount underflow when a no-iommu vfio device is unbound${fullNote}`, async (t) => {
  t.timeout(60 * 60_000);
  const result = await run72(t, ['fault-external-remove-extra-put.patch'], ['none'], [scenario('vfio-noiommu')]);
  const run = only(result, 'none', 'vfio-noiommu');
  const [refcount] = found(run, 'refcount');
  t.like(refcount, { title: 'WARNING: refcount bug in vfio_device_remove_group', step: 'vfio-noiommu/unbind' }, summary(result));
});

full(`7.2: an endpoint viommu_release_device() never detaches (the 7.2 variant of the patch) is a viommu-state finding in the removal step${fullNote}`, async (t) => {
  t.timeout(60 * 60_000);
  const result = await run72(t, ['fault-viommu-no-detach.patch'], ['virtio'], [scenario('vfio-bind-unbind'), scenario('remove-rescan')]);
  t.is(result.verdict, 'fail');
  for (const [name, step] of [
    ['vfio-bind-unbind', 'vfio-bind-unbind/remove'],
    ['remove-rescan', 'remove-rescan/remove'],
  ] as const) {
    const run = only(result, 'virtio', name);
    const findings = found(run, 'viommu-state');
    t.is(findings.length, 1, `${name}: ${summary(result)}`);
    t.regex(findings[0]?.title ?? '', /^virtio-iommu endpoint 0000:[0-9a-f]{2}:00\.0 still attached after its device left$/);
    t.is(findings[0]?.step, step);
    t.deepEqual(run.leaks, []);
  }
});

full(`7.2: an intel-iommu removal without its context-cache invalidation is a viommu-state finding in the removal step${fullNote}`, async (t) => {
  t.timeout(60 * 60_000);
  const result = await run72(t, ['fault-vtd-removal-no-flush.patch'], ['intel'], [scenario('vfio-bind-unbind'), scenario('remove-rescan')]);
  t.is(result.verdict, 'fail');
  for (const [name, step] of [
    ['vfio-bind-unbind', 'vfio-bind-unbind/remove'],
    ['remove-rescan', 'remove-rescan/remove'],
  ] as const) {
    const run = only(result, 'intel', name);
    t.deepEqual(
      found(run, 'viommu-state').map((report) => [report.title.replace(/[0-9a-f]{2}:00\.0/, 'BDF'), report.step]),
      [['intel-iommu context cache not invalidated for 0000:BDF on removal', step]],
      `${name}: ${summary(result)}`,
    );
  }
});

/**
 * Closing the device's cdev with a leaked short-term iommufd reference blocks for 60 s in
 * iommufd_object_dec_wait(): longer than vfio-bind-unbind's step allows, so this scenario gives
 * the helper 200 s, and the kernel's timeout line lands in the step.
 */
const iommufdWait: Scenario = {
  name: 'iommufd-wait',
  proves: 'an iommufd device object whose short-term reference leaked times out on unbind, and that is reported',
  iommus: ['intel'],
  topology: { devices: [rootPort('rp-ifd', 1), eduDevice('edu-ifd', 'rp-ifd')] },
  async run(guest) {
    await guest.mark('bind');
    const bdf = await guest.present('edu-ifd');
    await guest.bind(bdf, 'vfio-pci');
    await guest.mark('iommufd');
    await guest.run(['vfio-helper', 'iommufd', bdf, '--dma'], 200_000);
  },
};

full(`7.2: a leaked short-term iommufd reference (7.2-only patch) is reported as a leaked object reference when the device is closed${fullNote}`, async (t) => {
  t.timeout(60 * 60_000);
  const result = await run72(t, ['fault-iommufd-device-wait-leak.patch'], ['intel'], [iommufdWait]);
  t.is(result.verdict, 'fail');
  const run = only(result, 'intel', 'iommufd-wait');
  t.deepEqual(
    run.reports.filter((report) => !report.known).map((report) => [report.kind, report.title, report.step]),
    [
      // The close blocks (re-reported every 10 s: one hang), times out, and iommufd_object_destroy_user() WARNs.
      ['hang', 'INFO: task hung in iommufd_object_remove', 'iommufd-wait/iommufd'],
      ['bug', 'iommufd: leaked object reference: timed out waiting for an iommufd object to become free', 'iommufd-wait/iommufd'],
      ['warning', 'WARNING in iommufd_object_destroy_user', 'iommufd-wait/iommufd'],
    ],
    summary(result),
  );
});
