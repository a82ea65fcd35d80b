// The smmuv3 machine (arm64 virt + SMMUv3) as data: its QEMU command line,
// its kernel's fragments, its guest's userland, where its scenarios run and
// its fault lines, all without QEMU or a toolchain.
import test from 'ava';
import { loadFragments } from '../../harness/build/index.ts';
import { ConfigSyntaxError, mergeFragments, parseConfig } from '../../harness/build/kconfig.ts';
import { parseElfNeeds, parseRecursiveDepends } from '../../harness/image/debian-userland.ts';
import { archOf, foreignArchAccel } from '../../harness/machine/arches.ts';
import { machineOf } from '../../harness/machine/machines.ts';
import { kernelCommandLine, qemuArgs, qemuBinaryFor } from '../../harness/machine/qemu-args.ts';
import { eduDevice, rootPort } from '../../harness/machine/topology.ts';
import { parseKernelLog } from '../../harness/oracle/index.ts';
import { planBoots } from '../../harness/scenario/runner.ts';
import { scenarios } from '../../scenarios/index.ts';

const spec = {
  accel: 'tcg' as const,
  kernel: '/k/Image',
  initrd: '/i/initramfs.cpio',
  topology: { devices: [rootPort('rp1', 1), eduDevice('edu1', 'rp1')], globals: ['ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off'] },
  consoleLog: '/run/console.log',
  qmpSocket: '/tmp/x/qmp.sock',
};
const valueAfter = (args: string[], flag: string) => args.filter((_, i) => args[i - 1] === flag);

test('smmuv3 boots virt with the SMMUv3 and GICv3 under qemu-system-aarch64, with no firmware and no q35 global', (t) => {
  const args = qemuArgs({ ...spec, iommu: 'smmuv3', tscKhz: 2_600_000 });
  t.is(qemuBinaryFor('smmuv3'), 'qemu-system-aarch64');
  t.deepEqual(valueAfter(args, '-machine'), ['virt,iommu=smmuv3,gic-version=3']);
  t.deepEqual(valueAfter(args, '-cpu'), ['max']);
  t.deepEqual(valueAfter(args, '-accel'), ['tcg,thread=single']);
  t.deepEqual(valueAfter(args, '-bios'), []);
  t.deepEqual(valueAfter(args, '-global'), []);
  // The SMMU is a machine property: no -device for it; the NIC and the topology as on q35.
  t.deepEqual(valueAfter(args, '-device'), ['virtio-net-pci,id=harness-nic,netdev=net0,romfile=', 'pcie-root-port,chassis=1,slot=1,bus=pcie.0,id=rp1', 'edu,bus=rp1,id=edu1']);
  t.deepEqual(valueAfter(args, '-netdev'), ['user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:0-:22']);
  const cmdline = valueAfter(args, '-append')[0] ?? '';
  t.regex(cmdline, /^console=ttyAMA0 panic=-1 dyndbg=/);
  // x86's words would reach /init as arguments on arm64.
  t.notRegex(cmdline, /no_timer_check|tsc_early_khz|ttyS0/);
});

test('the q35 rows are as before: x86 QEMU, qboot, ttyS0, no_timer_check, the native-hotplug global', (t) => {
  const args = qemuArgs({ ...spec, iommu: 'intel', tscKhz: 2_600_000 });
  t.is(qemuBinaryFor('intel'), 'qemu-system-x86_64');
  t.deepEqual(valueAfter(args, '-bios'), ['/usr/share/qemu/qboot.rom']);
  t.deepEqual(valueAfter(args, '-global'), ['ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off']);
  t.regex(kernelCommandLine('intel', [], 2_600_000), /^console=ttyS0 panic=-1 no_timer_check dyndbg=.* intel_iommu=on tsc_early_khz=2600000$/);
});

test("an arm64 guest runs under TCG whatever is asked; the host's own architecture is left to the KVM probe", (t) => {
  t.deepEqual(foreignArchAccel('arm64', 'x86_64'), { accel: 'tcg', reason: 'an arm64 guest on an x86_64 host: KVM cannot run it', automatic: false });
  t.is(foreignArchAccel('x86_64', 'x86_64'), undefined);
  t.is(machineOf('smmuv3').arch, 'arm64');
});

test("`# arch x86_64` options are asked of the x86 build only; arm64's fragments add the SMMUv3, the ECAM host, the GICv3 ITS and the PL011", async (t) => {
  const x86 = mergeFragments(await loadFragments([], 'x86_64'), { major: 6, minor: 12 }, 'x86_64');
  const arm64 = mergeFragments(await loadFragments([], 'arm64'), { major: 6, minor: 12 }, 'arm64');
  for (const option of ['CONFIG_UNWINDER_ORC', 'CONFIG_SERIAL_8250_CONSOLE', 'CONFIG_ACPI', 'CONFIG_KERNEL_LZ4', 'CONFIG_INTEL_IOMMU', 'CONFIG_AMD_IOMMU', 'CONFIG_VIRTIO_IOMMU']) {
    t.is(x86.get(option), 'y', option);
    t.false(arm64.has(option), option);
  }
  for (const option of ['CONFIG_ARM_SMMU_V3', 'CONFIG_PCI_HOST_GENERIC', 'CONFIG_ARM_GIC_V3_ITS', 'CONFIG_SERIAL_AMBA_PL011_CONSOLE', 'CONFIG_OF']) t.is(arm64.get(option), 'y', option);
  // What every verdict relies on is in both.
  for (const option of ['CONFIG_PROVE_LOCKING', 'CONFIG_DYNAMIC_DEBUG', 'CONFIG_VFIO_PCI', 'CONFIG_IOMMUFD', 'CONFIG_HOTPLUG_PCI_PCIE']) {
    t.is(x86.get(option), 'y', option);
    t.is(arm64.get(option), 'y', option);
  }
  t.false(archOf('x86_64').fragments.includes('arm64.config'));
});

test("the annotations don't change x86's request: the same options, in the same order, as the fragments with them removed", async (t) => {
  const fragments = await loadFragments([], 'x86_64');
  const stripped = fragments.map((fragment) => ({ ...fragment, text: fragment.text.replace(/\s+# arch x86_64$/gm, '') }));
  t.deepEqual([...mergeFragments(fragments, { major: 6, minor: 12 })], [...mergeFragments(stripped, { major: 6, minor: 12 })]);
});

test('a release and an architecture annotate one line together; a malformed annotation is a syntax error', (t) => {
  const fragment = { name: 'f.config', text: 'CONFIG_A=y  # since 6.2, arch x86_64\nCONFIG_B=y  # arch arm64 x86_64\n' };
  t.deepEqual([...mergeFragments([fragment], { major: 6, minor: 1 }, 'x86_64')], [['CONFIG_B', 'y']]);
  t.deepEqual([...mergeFragments([fragment], { major: 6, minor: 12 }, 'arm64')], [['CONFIG_B', 'y']]);
  t.deepEqual([...mergeFragments([fragment], { major: 6, minor: 12 }, 'x86_64')], [['CONFIG_A', 'y'], ['CONFIG_B', 'y']]);
  t.throws(() => mergeFragments([{ name: 'g.config', text: 'CONFIG_C=y  # arch arm64, since six\n' }]), { instanceOf: ConfigSyntaxError });
  t.is(parseConfig('CONFIG_D=m  # arch arm64\n').get('CONFIG_D'), 'm');
});

test("the arm64 userland: apt-cache's recursive dependencies without virtual packages; the loader and NEEDED libraries from readelf", (t) => {
  const depends = ['dropbear-bin', '  Depends: libc6', '  Depends: <debconf-2.0>', 'libc6', '  Depends: libgcc-s1', '<debconf-2.0>', 'libgcc-s1', 'libc6'].join('\n');
  t.deepEqual(parseRecursiveDepends(depends), ['dropbear-bin', 'libc6', 'libgcc-s1']);
  const readelf = [
    '      [Requesting program interpreter: /lib/ld-linux-aarch64.so.1]',
    ' 0x0000000000000001 (NEEDED)             Shared library: [libtomcrypt.so.1]',
    ' 0x0000000000000001 (NEEDED)             Shared library: [libc.so.6]',
  ].join('\n');
  t.deepEqual(parseElfNeeds(readelf), { interpreter: '/lib/ld-linux-aarch64.so.1', needed: ['libtomcrypt.so.1', 'libc.so.6'] });
});

test("on smmuv3 every hotplug is native: unplug-while-open gets its own boot there (pciehp's lockdep report), the shared boot keeps the others", (t) => {
  const plans = planBoots(['smmuv3'], scenarios);
  t.deepEqual(
    plans.map((plan) => [plan.id, plan.scenarios.map((scenario) => scenario.name)]),
    [
      ['smmuv3', ['vfio-bind-unbind', 'remove-rescan', 'multifunction', 'rebind-original-driver', 'identity-behind-bridge']],
      ['smmuv3-2', ['unplug-while-open']],
      ['smmuv3-3', ['pci-hotplug-native']],
      ['smmuv3-4', ['pci-hotplug-native-add']],
    ],
  );
  // On q35 it still shares its boot.
  t.true(planBoots(['intel'], scenarios)[0]?.scenarios.some((scenario) => scenario.name === 'unplug-while-open'));
  // Every scenario that does not run on smmuv3 says why.
  for (const scenario of scenarios.filter((each) => !each.iommus.includes('smmuv3'))) t.truthy(scenario.notOn?.smmuv3, scenario.name);
});

test('an SMMUv3 fault is one iommu-fault report naming the device: 6.12 prints the raw event record, 7.2 also decodes it', (t) => {
  const raw = [
    '[   12.000000] arm-smmu-v3 9050000.smmuv3: event 0x10 received:',
    '[   12.000001] arm-smmu-v3 9050000.smmuv3: \t0x0000000800000010',
    '[   12.000002] arm-smmu-v3 9050000.smmuv3: \t0x0000020800000000',
    '[   12.000003] arm-smmu-v3 9050000.smmuv3: \t0x0000000000100000',
    '[   12.000004] arm-smmu-v3 9050000.smmuv3: \t0x0000000000000000',
  ];
  const old = parseKernelLog(`${raw.join('\n')}\n`).reports.filter((report) => report.kind === 'iommu-fault');
  t.deepEqual(old.map(({ title, device, address }) => ({ title, device, address })), [{ title: 'arm-smmu-v3: F_TRANSLATION', device: '00:01.0', address: '0x100000' }]);
  // The report is the record's five lines, not the line after it.
  t.is(old[0]?.lines.length, 5);
  const decoded = [
    ...raw,
    '[   12.000005] arm-smmu-v3 9050000.smmuv3: event: F_TRANSLATION client: 0000:00:01.0 sid: 0x8 ssid: 0x0 iova: 0x100000 ipa: 0x0',
    '[   12.000006] arm-smmu-v3 9050000.smmuv3: unpriv data read s1 "Input address caused fault" stag: 0x0',
  ];
  const newer = parseKernelLog(`${decoded.join('\n')}\n`).reports.filter((report) => report.kind === 'iommu-fault');
  t.deepEqual(newer.map(({ title, device, address }) => ({ title, device, address })), [{ title: 'arm-smmu-v3: F_TRANSLATION', device: '00:01.0', address: '0x100000' }]);
});
