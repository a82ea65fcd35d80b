import { rootPort } from '../harness/machine/topology.ts';
import type { Scenario } from '../harness/scenario/scenario.ts';

/** A device with a real driver, lent to VFIO and given back: its group must survive the round trip. */
export const rebindOriginalDriver: Scenario = {
  name: 'rebind-original-driver',
  proves: 'virtio-rng moved from virtio-pci to vfio-pci, used through VFIO, and rebound to virtio-pci keeps its group; removal then releases it',
  iommus: ['intel', 'virtio', 'smmuv3', 'amd'],
  topology: {
    devices: [
      rootPort('rp-rebind', 8),
      // iommu_platform=on: otherwise a virtio device bypasses the vIOMMU.
      // DMA: virtio-rng's probe posts an entropy request through the vIOMMU at once.
      { driver: 'virtio-rng-pci', id: 'rng', props: { bus: 'rp-rebind', iommu_platform: true, 'disable-legacy': 'on' }, dma: true },
    ],
  },
  async run(guest) {
    await guest.mark('to-vfio');
    const bdf = await guest.present('rng');
    const original = await guest.driver(bdf);
    guest.check(original === 'virtio-pci', `virtio-rng bound to virtio-pci at boot (it is ${original ?? 'unbound'})`);
    const group = await guest.iommuGroup(bdf);
    await guest.unbind(bdf);
    await guest.bind(bdf, 'vfio-pci');
    await guest.vfioContainer(bdf);
    await guest.mark('to-virtio');
    await guest.unbind(bdf);
    await guest.bind(bdf, 'virtio-pci');
    guest.check((await guest.iommuGroup(bdf)) === group, `group ${group} kept across the rebind`);
    await guest.mark('remove');
    await guest.remove(bdf);
  },
};
