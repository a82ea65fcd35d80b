// Real upstream bugs, not fault injections of our own: each patch in
// test/fixtures/patches/upstream/ reverts (or re-creates, where the code has
// moved) a fix from Linux's history, named by the fix's commit id and subject,
// and the harness must catch it with the kind the fix's message describes.
// Each case is an incremental rebuild of the shared build directory (1.5 to
// 3 minutes on a loaded 2-core machine) and one TCG boot: `npm run test:full`.
import test from 'ava';
import type { ReportKind } from '../../harness/oracle/types.ts';
import type { HarnessResult } from '../../harness/report/result.ts';
import { scenarioByName } from '../../scenarios/index.ts';
import { only, runMatrix, runWithPatch, summary } from './helpers.ts';

const full = process.env.IOMMU_HARNESS_FULL ? test.serial : test.serial.skip;
const vfioBindUnbind = scenarioByName('vfio-bind-unbind')!;
const identityBehindBridge = scenarioByName('identity-behind-bridge')!;
const unplugWhileOpen = scenarioByName('unplug-while-open')!;

/** The report of `kind` the boot (before the first scenario) printed, if any. */
function bootReport(result: HarnessResult, kind: ReportKind) {
  return only(result, 'intel', 'boot').reports.find((report) => report.kind === kind);
}

full('c7d624520c1b reverted: dmar_global_lock taken under &domain->mutex is a lockdep report at boot', async (t) => {
  t.timeout(30 * 60_000);
  const { result, run } = await runWithPatch(t, 'upstream/c7d624520c1b-iommu-vt-d-remove-unnecessary-locking-in-intel_irq_remapping_alloc.patch', vfioBindUnbind);
  t.is(result.verdict, 'fail');
  const lockdep = bootReport(result, 'lockdep');
  t.truthy(lockdep, summary(result));
  t.is(lockdep!.title, 'possible deadlock in __irq_domain_alloc_irqs');
  // The two locks and the two paths the fix's message names.
  t.regex(lockdep!.text, /WARNING: possible circular locking dependency detected/);
  t.regex(lockdep!.text, /dmar_global_lock/);
  t.regex(lockdep!.text, /&domain->mutex/);
  t.regex(lockdep!.text, /intel_irq_remapping_alloc/);
  t.regex(lockdep!.text, /dmar_alloc_hwirq/);
  // Lock checking is off for the rest of the boot: the scenario is blind, not passed.
  t.is(run.verdict, 'inconclusive');
});

full('b150654f74bf half reverted: dmar_global_lock held across iommu_device_register() is a lockdep report with cpu_hotplug_lock at boot', async (t) => {
  t.timeout(30 * 60_000);
  const { result, run } = await runWithPatch(t, 'upstream/b150654f74bf-iommu-vt-d-fix-suspicious-rcu-usage.patch', vfioBindUnbind);
  t.is(result.verdict, 'fail');
  const lockdep = bootReport(result, 'lockdep');
  t.truthy(lockdep, summary(result));
  t.is(lockdep!.title, 'possible deadlock in __cpuhp_state_add_instance');
  // The two locks the fix's message names, and the cpuhp callback that takes the one under the other.
  t.regex(lockdep!.text, /cpu_hotplug_lock/);
  t.regex(lockdep!.text, /dmar_global_lock/);
  t.regex(lockdep!.text, /enable_drhd_fault_handling/);
  t.regex(lockdep!.text, /iommu_device_register/);
  t.is(run.verdict, 'inconclusive');
});

full('d5692d4af08c re-created: the DRHD device scopes walked without dmar_global_lock are a suspicious RCU usage at boot', async (t) => {
  t.timeout(30 * 60_000);
  const { result, run } = await runWithPatch(t, 'upstream/d5692d4af08c-iommu-vt-d-fix-suspicious-rcu-usage-in-probe_acpi_namespace_devices.patch', vfioBindUnbind);
  t.is(result.verdict, 'fail');
  const rcu = bootReport(result, 'lockdep');
  t.truthy(rcu, summary(result));
  t.is(rcu!.title, 'WARNING: suspicious RCU usage in intel_iommu_init');
  t.regex(rcu!.text, /suspicious rcu_dereference_check\(\) usage!/);
  t.regex(rcu!.text, /drivers\/iommu\/intel\/iommu\.c:\d+/);
  t.is(run.verdict, 'inconclusive');
});

full('the clean kernel passes identity-behind-bridge: DMA through the bridge alias works in the identity domain', async (t) => {
  t.timeout(30 * 60_000);
  const result = await runMatrix(t, [], ['intel'], [identityBehindBridge]);
  const run = only(result, 'intel', 'identity-behind-bridge');
  t.is(run.verdict, 'pass', summary(result));
  t.deepEqual(run.reports, []);
  t.true(run.groups.some((group) => group.released), 'the group of the bridge and virtio-rng was released');
});

full('64f792981e35 reverted: the identity domain without a context entry for the bridge alias is an IOMMU fault of that alias', async (t) => {
  t.timeout(30 * 60_000);
  const { result, run } = await runWithPatch(t, 'upstream/64f792981e35-iommu-vt-d-remove-device-comparison-in-context_setup_pass_through_cb.patch', identityBehindBridge);
  t.is(result.verdict, 'fail');
  const fault = run.reports.find((report) => report.kind === 'iommu-fault');
  t.truthy(fault, summary(result));
  t.is(fault!.step, 'identity-behind-bridge/dma');
  t.regex(fault!.title, /Present bit in context entry is clear/);
  // The requester is the bridge's alias (its secondary bus, 00.0), not virtio-rng's own address.
  t.regex(fault!.device ?? '', /^[0-9a-f]{2}:00\.0$/);
  t.notRegex(fault!.text, /Request device \[[0-9a-f]{2}:01\.0\]/);
  t.is(only(result, 'intel', 'boot').verdict, 'pass');
});

full('890ed578df82 re-created: a release-time reset that waits for the device lock deadlocks with the removal waiting for the fd: a hang in unplug-while-open', async (t) => {
  t.timeout(30 * 60_000);
  const { result, run } = await runWithPatch(t, 'upstream/890ed578df82-vfio-pci-use-pci-try-reset-interface.patch', unplugWhileOpen);
  t.is(result.verdict, 'fail');
  const hang = run.reports.find((report) => report.kind === 'hang');
  t.truthy(hang, summary(result));
  t.is(hang!.title, 'INFO: task hung in vfio_pci_core_disable');
  t.is(hang!.step, 'unplug-while-open/unplug');
  // The user's close waits for the device lock the removal holds while it waits for the close.
  t.regex(hang!.text, /pci_dev_lock/);
  t.regex(hang!.text, /vfio_device_fops_release/);
  // The removal never completes: QEMU's DEVICE_DELETED does not come, and the step says so.
  t.regex(run.error ?? '', /DEVICE_DELETED/);
});
