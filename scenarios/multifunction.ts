import { rootPort } from '../harness/machine/topology.ts';
import type { Scenario } from '../harness/scenario/scenario.ts';

const fn = (id: string, addr: string) => ({ driver: 'edu', id, props: { bus: 'rp-mf', addr, multifunction: true }, dma: true });

/** The functions of one device without ACS are one group; it goes with the last function. */
export const multifunction: Scenario = {
  name: 'multifunction',
  proves: 'a two-function edu device is one group, usable through VFIO with both functions bound, released with its last function and whole again after rescan',
  iommus: ['intel', 'virtio', 'smmuv3', 'amd'],
  // multifunction=on on every function, or the groups change after a rescan.
  topology: { devices: [rootPort('rp-mf', 6), fn('edu-f0', '0.0'), fn('edu-f1', '0.1')] },
  async run(guest) {
    await guest.mark('bind');
    const f0 = await guest.present('edu-f0');
    const f1 = await guest.present('edu-f1');
    await guest.bind(f0, 'vfio-pci');
    await guest.bind(f1, 'vfio-pci');
    const group = await guest.iommuGroup(f0);
    guest.check(group !== undefined && group === (await guest.iommuGroup(f1)), 'both functions in one group');
    await guest.vfioContainer(f0, { dma: true });
    await guest.mark('remove-f1');
    await guest.unbind(f1);
    await guest.remove(f1);
    if (group !== undefined) guest.check(await guest.groupExists(group), `group ${group} to outlive function 1`);
    await guest.mark('remove-f0');
    await guest.unbind(f0);
    await guest.remove(f0);
    await guest.mark('rescan');
    await guest.rescan();
    const again = [await guest.bdfOf('edu-f0'), await guest.bdfOf('edu-f1')];
    await guest.bind(again[0]!, 'vfio-pci');
    await guest.bind(again[1]!, 'vfio-pci');
    const regrouped = await guest.iommuGroup(again[0]!);
    guest.check(regrouped !== undefined && regrouped === (await guest.iommuGroup(again[1]!)), 'both functions in one group after rescan');
    await guest.unbind(again[0]!);
    await guest.unbind(again[1]!);
  },
};
