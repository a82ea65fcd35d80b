import { eduDevice, rootPort } from '../harness/machine/topology.ts';
import type { Scenario } from '../harness/scenario/scenario.ts';

/**
 * The reviewers' check from the iommu_init/deinit_device() series: a device
 * used through VFIO and then removed must take its group with it.
 */
export const vfioBindUnbind: Scenario = {
  name: 'vfio-bind-unbind',
  proves: "edu bound to vfio-pci, opened via the container and (where the kernel has VFIO's cdev) the iommufd path with DMA mapped, unbound and removed: its group is released",
  iommus: ['intel', 'virtio', 'smmuv3', 'amd'],
  topology: { devices: [rootPort('rp-vfio', 1), eduDevice('edu-vfio', 'rp-vfio', { dma: true })] },
  async run(guest) {
    await guest.mark('bind');
    const bdf = await guest.present('edu-vfio');
    await guest.bind(bdf, 'vfio-pci');
    await guest.mark('container');
    await guest.vfioContainer(bdf, { dma: true });
    await guest.stepNeeding('iommufd', 'vfio-cdev', () => guest.vfioIommufd(bdf, { dma: true }));
    await guest.mark('unbind');
    await guest.unbind(bdf);
    await guest.mark('remove');
    await guest.remove(bdf);
  },
};
