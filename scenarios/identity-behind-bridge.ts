import { HarnessError } from '../harness/errors.ts';
import { rootPort } from '../harness/machine/topology.ts';
import type { Scenario } from '../harness/scenario/scenario.ts';

/**
 * A device behind a PCIe-to-PCI bridge issues DMA with the bridge's requester
 * ID (secondary bus, 00.0), not its own: every domain it is attached to must
 * program the context entry of that alias too. The identity (pass-through)
 * domain is reached here through /sys/kernel/iommu_groups/N/type, which the
 * other scenarios never write; virtio-rng's probe posts an entropy request at
 * once, so binding its driver is real DMA through the alias.
 */
export const identityBehindBridge: Scenario = {
  name: 'identity-behind-bridge',
  proves: 'virtio-rng behind a pcie-pci-bridge, its group switched to the identity domain through sysfs, does DMA without an IOMMU fault; switched back to DMA, it keeps its group, released once the bridge and the device are removed',
  // Only intel-iommu covers conventional PCI behind the bridge in QEMU 7.2 (see bridge-group).
  // On smmuv3 the one device behind the bridge DMAs with the bridge's alias stream ID (seen passing on 6.12).
  iommus: ['intel', 'smmuv3'],
  notOn: { virtio: "QEMU 7.2's virtio-iommu does not cover conventional PCI behind a pcie-pci-bridge", amd: "QEMU 7.2's amd-iommu cannot translate for a device cold-plugged off bus 0: behind the bridge, virtio-rng's first DMA never completes (hwrng stays blocked in the kernel, measured)" },
  topology: {
    devices: [
      rootPort('rp-pt', 21),
      { driver: 'pcie-pci-bridge', id: 'ppb-pt', props: { bus: 'rp-pt' } },
      // iommu_platform=on or virtio bypasses the vIOMMU; a conventional bus makes it transitional unless legacy is off.
      { driver: 'virtio-rng-pci', id: 'rng-pt', props: { bus: 'ppb-pt', addr: '1', iommu_platform: true, 'disable-legacy': 'on' } },
    ],
  },
  async run(guest) {
    await guest.mark('identity');
    const bdf = await guest.present('rng-pt');
    const group = await guest.iommuGroup(bdf);
    if (group === undefined) throw new HarnessError('guest', `${guest.step}: ${bdf} behind the bridge has no iommu group`);
    const type = `/sys/kernel/iommu_groups/${group}/type`;
    // The default domain changes only while no driver in the group uses the DMA API.
    await guest.unbind(bdf);
    const refused = await guest.writeRefused(type, 'identity');
    // Older kernels (6.1) cannot change the default domain of a group with more than one device (the bridge is one).
    const unsupported = refused?.find((line) => /Cannot change default domain: Group has more than one device/.test(line));
    if (unsupported) {
      guest.skip(['identity', 'dma', 'restore'], `the kernel cannot change the default domain of a group with more than one device ("${unsupported.replace(/^\[[^\]]*\] */, '')}")`);
      await guest.bind(bdf, 'virtio-pci');
    } else {
      if (refused) throw new HarnessError('guest', `${guest.step}: writing identity to ${type} failed: ${refused.join(' / ') || 'the kernel said nothing'}`);
      guest.check((await guest.read(type)) === 'identity', `group ${group} to take the identity domain`);
      await guest.mark('dma');
      await guest.bind(bdf, 'virtio-pci');
      // The fault interrupt lands a moment after the probe's request: let it print inside this step.
      await guest.run(['sleep', '1']);
      await guest.mark('restore');
      await guest.unbind(bdf);
      await guest.write(type, 'DMA');
      guest.check((await guest.read(type)) === 'DMA', `group ${group} to take a DMA domain again`);
      await guest.bind(bdf, 'virtio-pci');
      guest.check((await guest.iommuGroup(bdf)) === group, `group ${group} kept across both domain changes`);
    }
    await guest.mark('remove');
    const bridge = await guest.bdfOf('ppb-pt');
    await guest.remove(bdf);
    // The bridge is a member of the group too: the group goes with it.
    await guest.remove(bridge);
  },
};
