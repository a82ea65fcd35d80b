import { eduDevice, rootPort } from '../harness/machine/topology.ts';
import type { Scenario } from '../harness/scenario/scenario.ts';

// QEMU 7.2's q35 uses ACPI hotplug for root ports unless told otherwise.
const nativeHotplug = 'ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off';

/**
 * Native PCIe hot-remove (pciehp), the path real hardware without ACPI
 * hotplug takes. On 6.12 every native hotplug operation ends in an upstream
 * lockdep report (pciehp_configure_device() and pciehp_unconfigure_device()
 * take &ctrl->reset_lock again under pci_rescan_remove_lock), and lockdep
 * reports once per boot. So the removal is the first native operation of
 * its boot: the device is there from boot, and iommu_release_device() runs
 * with lock checking on; the upstream report comes after it, from
 * pciehp_unconfigure_device(), once the device is gone.
 */
export const pciHotplugNative: Scenario = {
  name: 'pci-hotplug-native',
  proves: 'edu present at boot behind a native-hotplug root port, used through VFIO with DMA, then removed by device_del through pciehp (5 s attention delay) as the first native operation of its boot, lockdep on: its group is released',
  iommus: ['intel', 'virtio'],
  topology: {
    devices: [rootPort('rp-native', 4), eduDevice('edu-native', 'rp-native')],
    globals: [nativeHotplug],
  },
  freshBoot:
    'the -global turns every root port to native hotplug, and on 6.12 the first native hotplug operation prints a lockdep report that turns lock checking off for the rest of the boot',
  async run(guest) {
    await guest.mark('bind');
    const bdf = await guest.bdfOf('edu-native');
    await guest.bind(bdf, 'vfio-pci');
    await guest.vfioContainer(bdf, { dma: true });
    await guest.mark('del');
    // pciehp waits out the 5 s attention-button delay before it removes the device.
    await guest.unplug('edu-native', 60_000);
  },
};

/**
 * Native PCIe hot-add, in a boot of its own: the upstream report at the end of
 * pciehp_configure_device() turns lockdep off, so this scenario stops once
 * the device is in its group and usable. Its native removal is checked, with
 * lockdep on, by pci-hotplug-native.
 */
export const pciHotplugNativeAdd: Scenario = {
  name: 'pci-hotplug-native-add',
  proves: 'edu hot-added through native PCIe hotplug (pciehp) on a fresh boot is probed into an iommu group and usable through VFIO with DMA (6.12 prints its known upstream pciehp lockdep report here; the device is left in place)',
  iommus: ['intel', 'virtio'],
  topology: { devices: [rootPort('rp-native-add', 4)], globals: [nativeHotplug] },
  freshBoot:
    'the -global turns every root port to native hotplug, and on 6.12 every native hot-add prints a lockdep report that turns lock checking off for the rest of the boot',
  async run(guest) {
    await guest.mark('add');
    await guest.hotplug('edu', 'edu-native-add', 'rp-native-add');
    const bdf = await guest.bdfOf('edu-native-add');
    // virtio-iommu gives a device its group only when a driver binds to it.
    await guest.bind(bdf, 'vfio-pci');
    guest.check((await guest.iommuGroup(bdf)) !== undefined, `the hot-added ${bdf} in an iommu group`);
    await guest.vfioContainer(bdf, { dma: true });
  },
};
