import { rootPort } from '../harness/machine/topology.ts';
import type { Scenario } from '../harness/scenario/scenario.ts';

/** Native PCIe hotplug (pciehp), the path real hardware without ACPI hotplug takes. */
export const pciHotplugNative: Scenario = {
  name: 'pci-hotplug-native',
  proves: 'edu hot-added and removed through native PCIe hotplug (pciehp, 5 s attention delay): its group is released',
  iommus: ['intel', 'virtio'],
  topology: {
    devices: [rootPort('rp-native', 4)],
    // QEMU 7.2's q35 uses ACPI hotplug for root ports unless told otherwise.
    globals: ['ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off'],
  },
  freshBoot:
    'the -global turns every root port to native hotplug, and on 6.12 each native unplug prints a lockdep report that turns lock checking off for the rest of the boot',
  async run(guest) {
    await guest.mark('add');
    await guest.hotplug('edu', 'edu-native', 'rp-native');
    const bdf = await guest.bdfOf('edu-native');
    await guest.bind(bdf, 'vfio-pci');
    await guest.mark('del');
    // pciehp waits out the 5 s attention-button delay before it removes the device.
    await guest.unplug('edu-native', 60_000);
    await guest.deviceGone(bdf);
  },
};
