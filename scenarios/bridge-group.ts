import { eduDevice, rootPort } from '../harness/machine/topology.ts';
import type { Scenario } from '../harness/scenario/scenario.ts';

/**
 * Devices behind a PCIe-to-PCI bridge cannot be isolated from each other, so
 * they share one group: removing one member must not release it.
 */
export const bridgeGroup: Scenario = {
  name: 'bridge-group',
  proves: 'two edu devices behind a pcie-pci-bridge share one group, which outlives each member and is released with the last one',
  // QEMU 7.2's virtio-iommu (its ACPI VIOT) does not cover conventional PCI
  // behind a pcie-pci-bridge: vfio-pci's probe fails with EINVAL for lack of a group.
  iommus: ['intel'],
  notOn: { virtio: "QEMU 7.2's virtio-iommu (ACPI VIOT) does not cover conventional PCI behind a pcie-pci-bridge", smmuv3: "the devices behind a pcie-pci-bridge share its alias stream ID and arm-smmu-v3 takes one device per stream: the second edu's vfio-pci probe fails with EINVAL (seen on 6.12: 'stream 512 already in tree from dev 0000:02:01.0')", amd: "QEMU 7.2's amd-iommu cannot translate for a device cold-plugged off bus 0: behind the bridge, virtio-rng's first DMA never completes (hwrng stays blocked in the kernel, measured)" },
  topology: {
    devices: [
      rootPort('rp-bridge', 5),
      { driver: 'pcie-pci-bridge', id: 'ppb', props: { bus: 'rp-bridge' } },
      { ...eduDevice('edu-b1', 'ppb'), props: { bus: 'ppb', addr: '1' } },
      { ...eduDevice('edu-b2', 'ppb'), props: { bus: 'ppb', addr: '2' } },
    ],
  },
  async run(guest) {
    await guest.mark('bind');
    const first = await guest.present('edu-b1');
    const second = await guest.present('edu-b2');
    const bridge = await guest.bdfOf('ppb');
    await guest.bind(first, 'vfio-pci');
    await guest.bind(second, 'vfio-pci');
    const group = await guest.iommuGroup(first);
    guest.check(group !== undefined && group === (await guest.iommuGroup(second)), 'both devices behind the bridge in one group');
    await guest.vfioContainer(first);
    await guest.mark('remove-first');
    await guest.unbind(first);
    await guest.remove(first);
    if (group !== undefined) guest.check(await guest.groupExists(group), `group ${group} to outlive its first member`);
    await guest.mark('remove-second');
    await guest.unbind(second);
    await guest.remove(second);
    await guest.mark('remove-bridge');
    // The bridge itself is a member of the group, so the group goes only with it.
    await guest.remove(bridge);
  },
};
