import { HarnessError } from '../harness/errors.ts';
import { missingFeatureReason } from '../harness/scenario/features.ts';
import type { Scenario } from '../harness/scenario/scenario.ts';

/**
 * Huge pages reserved for iommufd's hugepage variants (mock_domain's two
 * 2 MiB pages, dirty tracking's 128 MiB `domain_dirty128M_huge`): they assert
 * rather than skip when MAP_HUGETLB fails. 96 x 2 MiB of the guest's 1 GiB.
 */
export const reservedHugepages = 96;

/**
 * The tree's own iommufd selftests against CONFIG_IOMMUFD_TEST's mock IOMMU
 * (tools/testing/selftests/iommu): every case of `iommufd`, then the fault
 * injection sweeps of `iommufd_fail_nth`, each case under a step mark of its
 * own so a kernel report while it ran is placed in it.
 */
export const selftestIommufd: Scenario = {
  name: 'selftest-iommufd',
  proves:
    "the tree's own iommufd selftests (tools/testing/selftests/iommu: iommufd, iommufd_fail_nth) pass case by case against CONFIG_IOMMUFD_TEST's mock IOMMU with reserved huge pages, and the kernel prints no report (lockdep, WARN, leaked object, kmemleak, fault) while they run",
  iommus: ['intel', 'virtio', 'amd', 'none'],
  notOn: { smmuv3: 'the selftests are not cross-built for arm64 yet (libcap for arm64 is not installed by the harness)' },
  topology: { devices: [] },
  freshBoot: 'a long suite: a boot of its own runs beside the other scenarios, and lockdep\'s one report, if the suite spends it, is no other scenario\'s',
  kconfig: 'selftests.config',
  selftests: ['iommu'],
  onlyWhenNamed: 'it needs a kernel of its own (CONFIG_IOMMUFD_TEST, fault injection, hugetlbfs: kconfigs/scenarios/selftests.config)',
  async run(guest) {
    if (!guest.hasFeature('iommufd-test')) {
      guest.skip(['iommufd', 'iommufd_fail_nth'], missingFeatureReason('iommufd-test'));
      return;
    }
    if (guest.hasFeature('hugetlbfs')) {
      await guest.mark('hugepages');
      await guest.write('/proc/sys/vm/nr_hugepages', String(reservedHugepages));
      const got = Number(await guest.read('/proc/sys/vm/nr_hugepages'));
      if (got < reservedHugepages) throw new HarnessError('guest', `selftest-iommufd/hugepages: only ${got} of ${reservedHugepages} huge pages could be reserved: the hugepage variants would fail for want of memory, not for the kernel`);
    }
    await guest.runKselftest('iommu', 'iommufd');
    // It fails each allocation of each ioctl in turn (failslab through /proc/self/task/N/fail-nth).
    await guest.runKselftest('iommu', 'iommufd_fail_nth', { injectsFaults: true });
  },
};
