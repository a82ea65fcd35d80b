// The smmuv3 machine for real: Debian's 6.12 cross-built for arm64, booted on
// QEMU's virt with iommu=smmuv3 under TCG, the arm64 guest image (Debian's
// arm64 busybox and dropbear, the cross-compiled vfio-helper). `npm test` keeps
// one boot (the clean shared-boot scenarios: VFIO container and iommufd DMA
// through the SMMU, remove/rescan, multifunction, rebind); IOMMU_HARNESS_FULL=1
// adds the fault proofs (each an incremental arm64 build) and the scenarios
// that need boots of their own (native hot-add, hot-remove, unplug-while-open).
import { readFile } from 'node:fs/promises';
import test from 'ava';
import { profileFragment } from '../../harness/build/index.ts';
import { missingRequirements } from '../../harness/host/preflight.ts';
import { runHarness } from '../../harness/run.ts';
import type { Scenario } from '../../harness/scenario/scenario.ts';
import { scenarioByName, scenarios } from '../../scenarios/index.ts';
import { assertOneGroupLeak, only, patch, progress, summary } from './helpers.ts';

const missing = await missingRequirements(['arm64']);
/** Without the cross toolchain or qemu-system-aarch64 these tests cannot run: skipped, with what is missing. */
const withArm64 = missing.length === 0 ? test.serial : test.serial.skip;
if (missing.length > 0) console.warn(`smmuv3 tests skipped: missing ${missing.map((requirement) => `${requirement.name} (${requirement.package})`).join(', ')}`);
/** The fault proofs and the fresh-boot scenarios: `IOMMU_HARNESS_FULL=1` (each costs an arm64 build or boots of its own). */
const full = process.env.IOMMU_HARNESS_FULL && missing.length === 0 ? test.serial : test.serial.skip;

const named = (name: string) => scenarioByName(name) as Scenario;
const sharedBoot = ['vfio-bind-unbind', 'remove-rescan', 'multifunction', 'rebind-original-driver', 'identity-behind-bridge'].map(named);

async function runSmmuv3(t: import('ava').ExecutionContext, patches: string[], selected: readonly Scenario[]) {
  const result = await runHarness({ patches: patches.map(patch), kconfigs: [], iommus: ['smmuv3'], scenarios: selected, progress });
  t.log(summary(result));
  t.log(`build ${result.timings.buildSeconds.toFixed(0)} s, boots ${JSON.stringify(result.timings.bootSeconds)}, total ${result.timings.totalSeconds.toFixed(0)} s`);
  return result;
}

withArm64('smmuv3: the shared-boot scenarios pass on arm64 virt behind the SMMUv3, with DMA through it on the container and iommufd paths', async (t) => {
  t.timeout(60 * 60_000);
  const result = await runSmmuv3(t, [], sharedBoot);
  t.is(result.verdict, 'pass', summary(result));
  t.is(result.accelerator?.accel, 'tcg');
  for (const scenario of sharedBoot) {
    const run = only(result, 'smmuv3', scenario.name);
    t.is(run.verdict, 'pass', `${scenario.name}: ${summary(result)}`);
    t.deepEqual(run.leaks, []);
    t.deepEqual(run.failedChecks, []);
  }
  // What each did, as seen: the edu's group released on removal; remove-rescan's and
  // multifunction's device back in a new group after rescan (left in place, so not released).
  const groups = (name: string) => only(result, 'smmuv3', name).groups.map((group) => ({ devices: group.devices.length, released: group.released }));
  t.deepEqual(groups('vfio-bind-unbind'), [{ devices: 1, released: true }]);
  t.deepEqual(groups('remove-rescan'), [{ devices: 1, released: true }, { devices: 1, released: false }]);
  t.deepEqual(groups('multifunction'), [{ devices: 2, released: true }, { devices: 2, released: false }]);
  t.deepEqual(groups('rebind-original-driver'), [{ devices: 1, released: true }]);
  // The bridge and the virtio-rng behind it: one group (the device's DMA carries the bridge's alias), gone with both.
  t.deepEqual(groups('identity-behind-bridge'), [{ devices: 2, released: true }]);
  // The SMMUv3 probed, and the root ports got ACS, so each endpoint has a group of its own.
  const boot = only(result, 'smmuv3', 'boot');
  t.deepEqual(boot.reports, []);
  const console = await readFile(boot.logs.console, 'utf8');
  t.regex(console, /arm-smmu-v3 9050000\.smmuv3: ias \d+-bit, oas \d+-bit/);
  t.regex(console, /Kernel command line: console=ttyAMA0 /);
  t.notRegex(console, /arm-smmu-v3 .*: event 0x/);
  t.true((result.timings.bootSeconds.smmuv3 ?? Infinity) < 8, `boot to SSH in ${result.timings.bootSeconds.smmuv3} s`);
});

full('smmuv3: a group reference never put is a leak of the removed edu\'s group; the same kernel without the patch passes above', async (t) => {
  t.timeout(60 * 60_000);
  const vfio = named('vfio-bind-unbind');
  const result = await runSmmuv3(t, ['fault-group-ref-leak.patch'], [vfio]);
  t.is(result.verdict, 'fail');
  assertOneGroupLeak(t, only(result, 'smmuv3', vfio.name), 'vfio-bind-unbind/remove');
});

full('smmuv3: a container mapping 2 MiB off the IOVA asked for is an SMMUv3 translation fault naming the edu device', async (t) => {
  t.timeout(60 * 60_000);
  const vfio = named('vfio-bind-unbind');
  const result = await runSmmuv3(t, ['fault-wrong-iova-map.patch'], [vfio]);
  t.is(result.verdict, 'fail');
  const run = only(result, 'smmuv3', vfio.name);
  const fault = run.reports.find((report) => report.kind === 'iommu-fault');
  t.truthy(fault, summary(result));
  t.is(fault!.title, 'arm-smmu-v3: F_TRANSLATION');
  t.is(fault!.device, '01:00.0');
  t.is(fault!.address, '0x100000');
  t.is(fault!.step, 'vfio-bind-unbind/container');
});

full("smmuv3: the VFIO group reference vfio_device_remove_group() never puts is a leak; iommu_probe_device_lock under group->mutex on removal is lockdep's", async (t) => {
  t.timeout(60 * 60_000);
  const vfio = named('vfio-bind-unbind');
  const leak = await runSmmuv3(t, ['fault-vfio-group-release-leak.patch'], [vfio]);
  t.is(leak.verdict, 'fail');
  assertOneGroupLeak(t, only(leak, 'smmuv3', vfio.name), 'vfio-bind-unbind/remove');
  t.deepEqual(only(leak, 'smmuv3', vfio.name).reports, []);
  const rescan = named('remove-rescan');
  const inversion = await runSmmuv3(t, ['fault-remove-lock-inversion.patch'], [rescan]);
  t.is(inversion.verdict, 'fail');
  const lockdep = only(inversion, 'smmuv3', rescan.name).reports.find((report) => report.kind === 'lockdep');
  t.is(lockdep?.title, 'possible deadlock in __iommu_group_remove_device', summary(inversion));
  t.is(lockdep?.step, 'remove-rescan/remove');
});

full("smmuv3: a group reference the SMMUv3 driver's device_group op never puts (driver-only code) is a leak there, and the clean kernel passes above", async (t) => {
  t.timeout(60 * 60_000);
  const selected = ['vfio-bind-unbind', 'remove-rescan'].map(named);
  const result = await runSmmuv3(t, ['fault-smmuv3-device-group-ref.patch'], selected);
  t.is(result.verdict, 'fail');
  assertOneGroupLeak(t, only(result, 'smmuv3', 'vfio-bind-unbind'), 'vfio-bind-unbind/remove');
  assertOneGroupLeak(t, only(result, 'smmuv3', 'remove-rescan'), 'remove-rescan/remove');
  for (const run of result.runs) t.deepEqual(run.reports, [], run.scenario);
});

full('smmuv3 on Debian\'s 7.2: the shared-boot scenarios pass, and a wrong IOVA is the same fault, read from 7.2\'s decoded event line', async (t) => {
  t.timeout(60 * 60_000);
  const clean = await runHarness({ src: 'debian:7.2', patches: [], kconfigs: [], iommus: ['smmuv3'], scenarios: sharedBoot, progress });
  t.log(summary(clean));
  t.is(clean.verdict, 'pass', summary(clean));
  const vfio = named('vfio-bind-unbind');
  const faulty = await runHarness({ src: 'debian:7.2', patches: [patch('fault-wrong-iova-map.patch')], kconfigs: [], iommus: ['smmuv3'], scenarios: [vfio], progress });
  t.log(summary(faulty));
  const fault = only(faulty, 'smmuv3', vfio.name).reports.find((report) => report.kind === 'iommu-fault');
  t.deepEqual(fault && { title: fault.title, device: fault.device, address: fault.address, step: fault.step }, { title: 'arm-smmu-v3: F_TRANSLATION', device: '01:00.0', address: '0x100000', step: 'vfio-bind-unbind/container' });
  t.regex(fault?.text ?? '', /event: F_TRANSLATION client: 0000:01:00\.0 sid: 0x100/);
});

full('smmuv3 with the leakcheck profile: kmemleak finds nothing on the clean kernel and the leaked sysfs link name of the removed edu with the patch', async (t) => {
  t.timeout(60 * 60_000);
  const vfio = named('vfio-bind-unbind');
  const leakcheck = [await profileFragment('leakcheck')];
  const clean = await runHarness({ patches: [], kconfigs: leakcheck, iommus: ['smmuv3'], scenarios: [vfio], progress });
  t.log(summary(clean));
  t.is(clean.verdict, 'pass', summary(clean));
  t.deepEqual(only(clean, 'smmuv3', 'kmemleak').reports, []);
  const leaky = await runHarness({ patches: [patch('fault-group-device-name-leak.diff')], kconfigs: leakcheck, iommus: ['smmuv3'], scenarios: [vfio], progress });
  t.log(summary(leaky));
  t.is(leaky.verdict, 'fail');
  const [leak] = only(leaky, 'smmuv3', 'kmemleak').reports;
  t.is(leak?.title, 'memory leak in __iommu_probe_device');
  t.regex(leak?.text ?? '', /0000:01:00\.0/);
});

full('smmuv3: every scenario that applies runs, the native hotplug ones each in a boot of its own', async (t) => {
  t.timeout(60 * 60_000);
  const applicable = scenarios.filter((scenario) => scenario.iommus.includes('smmuv3'));
  const result = await runSmmuv3(t, [], applicable);
  for (const scenario of applicable) {
    const run = only(result, 'smmuv3', scenario.name);
    t.log(`${scenario.name}: ${run.verdict}${run.inconclusive.length ? ` (${run.inconclusive.join('; ')})` : ''}`);
    t.deepEqual(run.leaks, [], scenario.name);
    t.deepEqual(run.failedChecks, [], scenario.name);
    t.is(run.error, undefined, scenario.name);
  }
  t.not(result.verdict, 'fail', summary(result));
  t.not(result.verdict, 'error', summary(result));
});
