import { rootPort } from '../harness/machine/topology.ts';
import type { Scenario } from '../harness/scenario/scenario.ts';

/** QEMU's ACPI hotplug, the path a real hot unplug takes through iommu_release_device(). */
export const pciHotplug: Scenario = {
  name: 'pci-hotplug',
  proves: 'edu hot-added on a root port over QMP, bound to vfio-pci with DMA through the vIOMMU, then device_del: DEVICE_DELETED arrives and its group is released',
  iommus: ['intel', 'virtio', 'amd'],
  notOn: { smmuv3: 'virt has no ACPI hotplug: its hot-add and hot-remove are native, run by pci-hotplug-native-add and pci-hotplug-native' },
  topology: { devices: [rootPort('rp-hotplug', 2)] },
  async run(guest) {
    await guest.mark('add');
    await guest.hotplug('edu', 'edu-hotplug', 'rp-hotplug');
    const bdf = await guest.bdfOf('edu-hotplug');
    // Before 7.2, virtio-iommu gives a device its group only when a driver binds to it
    // (7.2's iommu_init_device() runs dma_configure at device add, so the group is there already).
    await guest.bind(bdf, 'vfio-pci');
    await guest.vfioContainer(bdf, { dma: true });
    await guest.mark('del');
    await guest.unplug('edu-hotplug');
  },
};
