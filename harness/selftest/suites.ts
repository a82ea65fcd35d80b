// The kernel's own test programs the harness builds from the tree under test
// and runs in the guest, one row per tools/testing/selftests folder. Pure data.

export type SelftestDir = 'iommu' | 'vfio';

export interface SelftestSuite {
  /** The folder under tools/testing/selftests. */
  dir: SelftestDir;
  /** The programs its Makefile builds (TEST_GEN_PROGS) that the harness runs, in the order it runs them. */
  programs: readonly string[];
  /** The release the folder arrived in, to say why a tree without it has no such suite. */
  since: string;
}

export const selftestSuites = {
  // iommufd's mock IOMMU on a fake bus (CONFIG_IOMMUFD_TEST): no device needed.
  iommu: { dir: 'iommu', programs: ['iommufd', 'iommufd_fail_nth'], since: '6.2' },
  // Against a real device bound to vfio-pci (QEMU's edu), in each IOMMU mode the library knows.
  vfio: {
    dir: 'vfio',
    programs: ['vfio_pci_device_test', 'vfio_iommufd_setup_test', 'vfio_dma_mapping_test', 'vfio_dma_mapping_mmio_test', 'vfio_pci_device_init_perf_test', 'vfio_pci_driver_test', 'vfio_pci_sriov_uapi_test'],
    since: '6.18',
  },
} as const satisfies Record<SelftestDir, SelftestSuite>;

/** Where a suite's programs are in the guest image. */
export function guestSelftestDir(dir: SelftestDir): string {
  return `/usr/libexec/iommu-harness/selftests/${dir}`;
}

/** The config fragment the selftest and KUnit scenarios build their kernel with (on top of the profile). */
export const selftestFragment = 'selftests.config';
