// The machines the harness boots, one row each: what QEMU is told, what the
// guest's kernel command line adds, which driver sources only that machine
// runs, which vIOMMU ledger reads its trace, and what it cannot test. Adding a
// machine is adding a row (and a test), not a code path: qemu-args.ts,
// patch-coverage.ts, the verdict and `iommu-harness machines` read it.

/** The vIOMMU ledgers harness/oracle/viommu-ledger.ts can judge. */
export type LedgerKind = 'intel' | 'virtio';

export interface MachineKind {
  /** One line for `iommu-harness machines` and the README. */
  summary: string;
  arch: 'x86_64';
  /** `-machine` for this accelerator; the split irqchip is what interrupt remapping needs. */
  machineOption: string;
  /** The vIOMMU `-device`, before the PCI devices it translates for; none for no-IOMMU. */
  iommuDevice?: string;
  /** Kernel command-line words this machine needs. */
  cmdline: string[];
  /** The ledger that judges QEMU's trace of this vIOMMU; absent where QEMU's trace cannot be read into one. */
  ledger?: LedgerKind;
  /** Driver sources only this machine runs (a prefix ending in / is a folder). */
  driverPaths: string[];
  /** What the machine cannot show, each with why: the README's machine table and `machines` print it. */
  cannot: string[];
}

export const machines = {
  intel: {
    summary: 'q35 + QEMU intel-iommu (VT-d) with interrupt remapping',
    arch: 'x86_64',
    machineOption: 'q35,kernel-irqchip=split',
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
    cmdline: [],
    driverPaths: [],
    cannot: ['translation of any kind: there is none'],
  },
  amd: {
    summary: 'q35 + QEMU amd-iommu (AMD-Vi) with interrupt remapping',
    arch: 'x86_64',
    machineOption: 'q35,kernel-irqchip=split',
    iommuDevice: 'amd-iommu,intremap=on',
    cmdline: [],
    driverPaths: ['drivers/iommu/amd/'],
    cannot: [
      "DMA from an endpoint cold-plugged behind a root port: QEMU 7.2 fixes a device's ID while bus numbers are still 0, so its DMA reads back wrong with no fault; endpoints sit on bus 0 here",
      "I/O page faults in the guest's log: QEMU 7.2's amd-iommu does not report them, so a wrong translation shows only as the vfio-helper's data mismatch (a finding)",
      'a vIOMMU ledger: no trace of QEMU 7.2 amd-iommu is read into one yet',
    ],
  },
} as const satisfies Record<string, MachineKind>;

export type IommuModel = keyof typeof machines;
export const iommuModels = Object.keys(machines) as IommuModel[];

export function machineOf(model: IommuModel): MachineKind {
  return machines[model];
}
