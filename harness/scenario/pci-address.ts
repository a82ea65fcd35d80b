// QEMU knows a device by its qdev id; the guest by its PCI address, which
// depends on how the guest numbered the buses. `query-pci` reports the
// addresses the guest programmed, so it ties the two together.

interface QueryPciDevice {
  bus: number;
  slot: number;
  function: number;
  qdev_id?: string;
  pci_bridge?: { devices?: QueryPciDevice[] };
}

interface QueryPciBus {
  bus: number;
  devices: QueryPciDevice[];
}

/** The guest's BDF of the device whose qdev id is `id`, from a query-pci reply. */
export function bdfOfQdevId(queryPci: QueryPciBus[], id: string): string | undefined {
  const visit = (devices: QueryPciDevice[]): string | undefined => {
    for (const device of devices) {
      if (device.qdev_id === id) {
        const hex = (value: number) => value.toString(16).padStart(2, '0');
        return `0000:${hex(device.bus)}:${hex(device.slot)}.${device.function}`;
      }
      const nested = device.pci_bridge?.devices ? visit(device.pci_bridge.devices) : undefined;
      if (nested) return nested;
    }
    return undefined;
  };
  for (const bus of queryPci) {
    const found = visit(bus.devices);
    if (found) return found;
  }
  return undefined;
}

export type { QueryPciBus };
