// What a scenario asks of the machine, as data: the devices present at boot
// and additions to the kernel command line.

/**
 * The machine's IOMMU, a row of harness/machine/machines.ts: QEMU's
 * intel-iommu, virtio-iommu, amd-iommu, or none at all (for vfio no-iommu
 * mode, which takes the external iommu_group_add_device() path).
 */
export { iommuModels, type IommuModel } from './machines.ts';

/** One `-device` at boot. `props` become `key=value` pairs after the driver. */
export interface BootDevice {
  driver: string;
  id: string;
  props?: Record<string, string | number | boolean>;
  /**
   * The scenario runs DMA through this cold-plugged device: a machine whose vIOMMU cannot
   * translate for it where the topology puts it may move it (machines.ts `endpointsOnRootBus`).
   */
  dma?: boolean;
}

export interface Topology {
  devices: BootDevice[];
  /** Extra kernel command-line words. */
  cmdline?: string[];
  /** QEMU -global options, e.g. for native PCIe hotplug. */
  globals?: string[];
}

/** A root port for hotplug or a device of its own; each root port subtree is its own iommu group (ACS). */
export function rootPort(id: string, chassis: number): BootDevice {
  return { driver: 'pcie-root-port', id, props: { chassis, slot: chassis, bus: 'pcie.0' } };
}

export function eduDevice(id: string, bus: string, options: { dma?: boolean } = {}): BootDevice {
  return { driver: 'edu', id, props: { bus }, ...(options.dma ? { dma: true } : {}) };
}

/** Merges the topologies of scenarios that share one boot; device ids must be unique. */
export function mergeTopologies(topologies: Topology[]): Topology {
  const devices: BootDevice[] = [];
  const seen = new Set<string>();
  for (const device of topologies.flatMap((topology) => topology.devices)) {
    if (seen.has(device.id)) continue;
    seen.add(device.id);
    devices.push(device);
  }
  return {
    devices,
    cmdline: [...new Set(topologies.flatMap((topology) => topology.cmdline ?? []))],
    globals: [...new Set(topologies.flatMap((topology) => topology.globals ?? []))],
  };
}
