import { eduDevice, rootPort } from '../harness/machine/topology.ts';
import type { Scenario } from '../harness/scenario/scenario.ts';

/** sysfs remove runs the same release path as a hot unplug; rescan probes the device anew. */
export const removeRescan: Scenario = {
  name: 'remove-rescan',
  proves: 'edu removed through sysfs releases its group; rescan brings it back into a fresh group that vfio-pci can use',
  iommus: ['intel', 'virtio', 'smmuv3', 'amd'],
  topology: { devices: [rootPort('rp-rescan', 3), eduDevice('edu-rescan', 'rp-rescan')] },
  async run(guest) {
    await guest.mark('bind');
    const bdf = await guest.present('edu-rescan');
    await guest.bind(bdf, 'vfio-pci');
    await guest.mark('remove');
    await guest.remove(bdf);
    await guest.mark('rescan');
    await guest.rescan();
    const again = await guest.bdfOf('edu-rescan');
    await guest.bind(again, 'vfio-pci');
    await guest.vfioContainer(again);
    await guest.unbind(again);
  },
};
