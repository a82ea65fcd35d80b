import { eduDevice, rootPort } from '../harness/machine/topology.ts';
import type { Scenario } from '../harness/scenario/scenario.ts';
import { selftestSuites } from '../harness/selftest/suites.ts';

/**
 * The tree's own VFIO selftests (tools/testing/selftests/vfio, 6.18 and
 * later) against QEMU's edu bound to vfio-pci, each program case by case
 * across the IOMMU modes its fixtures name (VFIO type1 and type1v2, iommufd's
 * compat modes, iommufd). A program for a device QEMU does not emulate (IOAT,
 * DSA, SR-IOV) skips its cases with its own reason.
 */
export const selftestVfio: Scenario = {
  name: 'selftest-vfio',
  proves:
    "the tree's own VFIO selftests (tools/testing/selftests/vfio) pass case by case against QEMU's edu bound to vfio-pci in every IOMMU mode, and the kernel prints no report, leak or fault while they run; the edu is then unbound and removed and its group released",
  iommus: ['intel', 'virtio', 'amd'],
  notOn: { smmuv3: 'the selftests are not cross-built for arm64 yet (libcap for arm64 is not installed by the harness)' },
  topology: { devices: [rootPort('rp-stv', 12), eduDevice('edu-stv', 'rp-stv', { dma: true })] },
  freshBoot: "a long suite: a boot of its own runs beside the other scenarios, and lockdep's one report, if the suite spends it, is no other scenario's",
  kconfig: 'selftests.config',
  selftests: ['vfio'],
  onlyWhenNamed: 'it needs a kernel of its own (kconfigs/scenarios/selftests.config) and the selftests built from the tree',
  async run(guest) {
    // No program to run (the tree has none, or they do not build): nothing of the scenario runs, with the reason.
    const missing = selftestSuites.vfio.programs.map((program) => guest.selftestMissing('vfio', program));
    if (missing.every((why) => why !== undefined)) {
      guest.skip([...selftestSuites.vfio.programs], missing[0] as string);
      return;
    }
    if (guest.hasFeature('hugetlbfs')) {
      // vfio_dma_mapping_test's anonymous_hugetlb_2mb variants map one 2 MiB page each (the 1 GiB ones skip: no such page here).
      await guest.mark('hugepages');
      await guest.write('/proc/sys/vm/nr_hugepages', '16');
    }
    await guest.mark('bind');
    const bdf = await guest.present('edu-stv');
    await guest.bind(bdf, 'vfio-pci');
    for (const program of selftestSuites.vfio.programs) await guest.runKselftest('vfio', program, { env: { VFIO_SELFTESTS_BDF: bdf } });
    await guest.mark('unbind');
    await guest.unbind(bdf);
    await guest.mark('remove');
    await guest.remove(bdf);
  },
};
