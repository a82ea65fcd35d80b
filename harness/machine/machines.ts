// The machines the harness boots, one row each: what QEMU is told, what the
// guest's kernel command line adds, which driver sources only that machine
// runs, which vIOMMU ledger reads its trace, and what it cannot test. Adding a
// machine is adding a row (and a test), not a code path: qemu-args.ts,
// patch-coverage.ts, the verdict and `iommu-harness machines` read it. The
// architecture's own facts (make's ARCH and toolchain, the QEMU binary, the
// console, the guest's userland) are a row of arches.ts, named by `arch`.
import type { Arch } from './arches.ts';

/** The vIOMMU ledgers harness/oracle/viommu-ledger.ts can judge. */
export type LedgerKind = 'intel' | 'virtio';

export interface MachineKind {
  /** One line for `iommu-harness machines` and the README. */
  summary: string;
  /** The kernel and guest image it boots (arches.ts): machines of one architecture share them. */
  arch: Arch;
  /** `-machine` for this accelerator; the split irqchip is what interrupt remapping needs. */
  machineOption: string;
  /** `-bios`: the firmware that loads the kernel; absent where QEMU loads it itself (virt). */
  firmware?: string;
  /** The vIOMMU `-device`, before the PCI devices it translates for; none for no-IOMMU. */
  iommuDevice?: string;
  /** Kernel command-line words this machine needs. */
  cmdline: string[];
  /** The ledger that judges QEMU's trace of this vIOMMU; absent where QEMU's trace cannot be read into one. */
  ledger?: LedgerKind;
  /** Driver sources only this machine runs (a prefix ending in / is a folder). */
  driverPaths: string[];
  /**
   * Why endpoints a topology cold-plugs behind a root port go on the root bus instead (same
   * function numbers, the ports kept for hot-add); absent where they stay where the topology puts them.
   */
  endpointsOnRootBus?: string;
  /** What the machine cannot show, each with why: the README's machine table and `machines` print it. */
  cannot: string[];
  /**
   * Every PCIe hotplug here is native (virt has no ACPI hotplug): q35's switch
   * to native hotplug (an `ICH9-LPC.` -global of a scenario's topology) means
   * nothing here and is not given.
   */
  nativeHotplugOnly?: boolean;
}

/** From Debian's qemu-system-data (a dependency of qemu-system-x86). */
export const qbootFirmware = '/usr/share/qemu/qboot.rom';

export const machines = {
  intel: {
    summary: 'q35 + QEMU intel-iommu (VT-d) with interrupt remapping',
    arch: 'x86_64',
    machineOption: 'q35,kernel-irqchip=split',
    firmware: qbootFirmware,
    iommuDevice: 'intel-iommu,intremap=on',
    cmdline: ['intel_iommu=on'],
    ledger: 'intel',
    driverPaths: ['drivers/iommu/intel/'],
    cannot: [],
  },
  virtio: {
    summary: 'q35 + virtio-iommu (ACPI VIOT)',
    arch: 'x86_64',
    machineOption: 'q35',
    firmware: qbootFirmware,
    iommuDevice: 'virtio-iommu-pci',
    // virtio-iommu has no interrupt remapping, which VFIO refuses without these.
    cmdline: ['vfio_iommu_type1.allow_unsafe_interrupts=1', 'iommufd.allow_unsafe_interrupts=1'],
    ledger: 'virtio',
    driverPaths: ['drivers/iommu/virtio-iommu.c'],
    cannot: ['conventional PCI behind a pcie-pci-bridge: QEMU 7.2 does not translate for it (vfio-pci probe fails with EINVAL), so bridge-group runs on intel only'],
  },
  none: {
    summary: 'q35 without an IOMMU: VFIO no-iommu mode (the external iommu_group_add_device() path)',
    arch: 'x86_64',
    machineOption: 'q35',
    firmware: qbootFirmware,
    cmdline: [],
    driverPaths: [],
    cannot: ['translation of any kind: there is none'],
  },
  amd: {
    summary: 'q35 + QEMU amd-iommu (AMD-Vi) with interrupt remapping',
    arch: 'x86_64',
    machineOption: 'q35,kernel-irqchip=split',
    firmware: qbootFirmware,
    iommuDevice: 'amd-iommu,intremap=on',
    cmdline: [],
    endpointsOnRootBus: "QEMU 7.2's amd-iommu fixes a cold-plugged device's ID while bus numbers are still 0: behind a root port its DMA reads back wrong with no fault",
    driverPaths: ['drivers/iommu/amd/'],
    cannot: [
      "DMA from a device cold-plugged off bus 0 (behind a root port or a pcie-pci-bridge): QEMU 7.2 fixes its device ID while bus numbers are still 0, so its DMA never completes or reads back wrong, with no fault (measured: virtio-rng behind a root port left hwrng blocked in the kernel); endpoints a scenario DMAs through sit on bus 0 instead, hot-added devices DMA fine behind their root port, and the pcie-pci-bridge scenarios do not run here",
      "I/O page faults in the guest's log: QEMU 7.2's amd-iommu does not report them, so a wrong translation shows only as the vfio-helper's data mismatch (a finding)",
      'a vIOMMU ledger: no trace of QEMU 7.2 amd-iommu is read into one yet',
    ],
  },
  smmuv3: {
    summary: 'arm64 virt + QEMU SMMUv3 (device tree), GICv3 with its ITS',
    arch: 'arm64',
    // The SMMU is a property of virt, not a -device. gic-version=3: VFIO needs
    // isolated MSIs, which only the GICv3 ITS gives (virt picks GICv2 at 8 vCPUs or fewer).
    machineOption: 'virt,iommu=smmuv3,gic-version=3',
    // ACS on QEMU's root ports (1b36:000c: source validation, request and
    // completion redirect, upstream forwarding), as Linux enables it itself
    // when it knows of an IOMMU. On a device-tree machine 6.12 learns of the
    // SMMU only after the root ports were enumerated (of_iommu_configure()
    // requests ACS; 7.2 enables it later, in pci_dma_configure()), so each
    // root port shared its endpoint's group: VFIO then took the port's DMA
    // domain too, and the port's MSIs to the ITS faulted in the SMMU (seen:
    // `event 0x10` from 00:02.0 at 0xfffff040, then `pciehp: Timeout on
    // hotplug command`). 6.1 has no config_acs and ignores the word.
    cmdline: ['pci=config_acs=111x1@pci:1b36:000c'],
    nativeHotplugOnly: true,
    // io-pgtable-arm.c: the SMMUv3's page tables (the SMMUv1/v2 driver, which QEMU does not emulate, shares them).
    driverPaths: ['drivers/iommu/arm/arm-smmu-v3/', 'drivers/iommu/io-pgtable-arm.c'],
    cannot: [
      'ACPI hotplug: virt has none, so every hot-add and hot-remove is native (pciehp, with its 5 s attention delay and the upstream pciehp lockdep reports of 6.12 and 7.2); pci-hotplug (the ACPI path) does not run here',
      'KVM on an x86 host: the arm64 guest always runs under TCG',
      "a vIOMMU ledger: QEMU 7.2's smmuv3 trace has the guest's CFGI_STE commands per stream ID (smmuv3_cmdq_cfgi_ste, smmuv3_config_cache_inv) and its TLB invalidations per ASID, but not what the guest wrote into a departed device's STE: QEMU reads an STE only when a translation looks it up (smmuv3_get_ste), so an STE left valid after a release cannot be told from a cleared one, and none is read into a ledger",
      "two devices behind one pcie-pci-bridge (bridge-group): they share the bridge's alias stream ID and arm-smmu-v3 takes one device per stream, so the second one's probe fails with EINVAL; one device behind a bridge (identity-behind-bridge) works",
    ],
  },
} as const satisfies Record<string, MachineKind>;

export type IommuModel = keyof typeof machines;
export const iommuModels = Object.keys(machines) as IommuModel[];

export function machineOf(model: IommuModel): MachineKind {
  return machines[model];
}
