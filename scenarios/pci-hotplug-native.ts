import { eduDevice, rootPort } from '../harness/machine/topology.ts';
import type { Scenario } from '../harness/scenario/scenario.ts';

// QEMU 7.2's q35 uses ACPI hotplug for root ports unless told otherwise.
const nativeHotplug = 'ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off';
/** QEMU's edu, as PCI new_id takes it: vendor and device in hex. */
const eduIds = '1234 11e8';

/**
 * Native PCIe hot-remove (pciehp), the path real hardware without ACPI
 * hotplug takes. On 6.12 every native hotplug operation ends in an upstream
 * lockdep report (pciehp_configure_device() and pciehp_unconfigure_device()
 * take &ctrl->reset_lock again under pci_rescan_remove_lock), and lockdep
 * reports once per boot. So the removal is the first native operation of
 * its boot: the device is there from boot, and iommu_release_device() runs
 * with lock checking on; the upstream report comes after it, from
 * pciehp_unconfigure_device(), once the device is gone.
 *
 * The device is bound to vfio-pci but never opened: opening resets it through
 * its hotplug slot (pciehp_reset_slot() takes &ctrl->reset_lock under the
 * VFIO group's locks), and the native removal then closes that chain in
 * vfio_device_remove_group() with another upstream lockdep report (seen on
 * 6.12.117), before iommu_release_device() runs: lock checking would be off
 * where this scenario looks.
 */
export const pciHotplugNative: Scenario = {
  name: 'pci-hotplug-native',
  proves: 'edu present at boot behind a native-hotplug root port and bound to vfio-pci is removed by device_del through pciehp (the attention button\'s removal, its 5 s wait cut short) as the first native operation of its boot, with lockdep on: its group is released',
  // On smmuv3 (virt) every root port is native already: the q35 -global is not given there.
  iommus: ['intel', 'virtio', 'smmuv3', 'amd'],
  topology: {
    devices: [rootPort('rp-native', 4), eduDevice('edu-native', 'rp-native')],
    globals: [nativeHotplug],
  },
  freshBoot:
    'the -global turns every root port to native hotplug, and on 6.12 the first native hotplug operation prints a lockdep report that turns lock checking off for the rest of the boot',
  async run(guest) {
    await guest.mark('bind');
    const bdf = await guest.bdfOf('edu-native');
    // Before 7.2, virtio-iommu gives a device its group only when a driver binds to it
    // (7.2's iommu_init_device() runs dma_configure at device add, so the group is there already).
    await guest.bind(bdf, 'vfio-pci');
    await guest.mark('del');
    // The attention button's removal, without waiting out its 5 s (Guest.unplugNative says why it is the same path).
    await guest.unplugNative('edu-native', 60_000);
  },
};

/**
 * Native PCIe hot-add, in a boot of its own. The upstream report at the end of
 * pciehp_configure_device() turns lockdep off, so everything this scenario
 * claims happens inside configure, before it: vfio-pci is told the edu id
 * (new_id) beforehand, so the hot-added device is probed into its iommu group
 * and bound by vfio-pci in pci_bus_add_devices(), as a driver claims real
 * hot-added hardware (before 7.2 virtio-iommu gives a device its group only then). The
 * scenario then only reads sysfs and leaves the device in place: its native
 * removal is checked, with lockdep on, by pci-hotplug-native.
 */
export const pciHotplugNativeAdd: Scenario = {
  name: 'pci-hotplug-native-add',
  proves: 'edu hot-added through native PCIe hotplug (pciehp) on a fresh boot is probed into an iommu group and bound by vfio-pci inside pciehp_configure_device(), with lockdep on until 6.12\'s known upstream pciehp report at its end',
  iommus: ['intel', 'virtio', 'smmuv3', 'amd'],
  topology: { devices: [rootPort('rp-native-add', 4)], globals: [nativeHotplug] },
  freshBoot:
    'the -global turns every root port to native hotplug, and on 6.12 every native hot-add prints a lockdep report that turns lock checking off for the rest of the boot',
  async run(guest) {
    await guest.mark('add');
    await guest.write('/sys/bus/pci/drivers/vfio-pci/new_id', eduIds);
    await guest.hotplug('edu', 'edu-native-add', 'rp-native-add');
    const bdf = await guest.bdfOf('edu-native-add');
    const driver = await guest.driver(bdf);
    guest.check(driver === 'vfio-pci', `vfio-pci to claim the hot-added ${bdf} (it is ${driver ?? 'unbound'})`);
    guest.check((await guest.iommuGroup(bdf)) !== undefined, `the hot-added ${bdf} in an iommu group`);
  },
};
