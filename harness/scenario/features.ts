// Kernel features a scenario step may need, read from the built kernel's
// .config. A kernel too old for a feature (6.1 has neither iommufd nor VFIO's
// device cdev) gets the step skipped with the reason, never failed or passed
// as if it had run.
import { parseConfig } from '../build/kconfig.ts';

export const kernelFeatures = {
  iommufd: { option: 'CONFIG_IOMMUFD', what: 'iommufd (/dev/iommu)', since: '6.2' },
  'vfio-cdev': { option: 'CONFIG_VFIO_DEVICE_CDEV', what: "VFIO's device cdev (/dev/vfio/devices)", since: '6.6' },
  'iommufd-test': { option: 'CONFIG_IOMMUFD_TEST', what: "iommufd's mock IOMMU for its selftests", since: '6.2' },
  'iommu-pt-kunit': { option: 'CONFIG_IOMMU_PT_KUNIT_TEST', what: 'the generic page-table KUnit tests', since: '6.19' },
  hugetlbfs: { option: 'CONFIG_HUGETLBFS', what: 'hugetlbfs (reserved huge pages)', since: '2.6' },
} as const;

export type KernelFeature = keyof typeof kernelFeatures;

export const allFeatures: ReadonlySet<KernelFeature> = new Set(Object.keys(kernelFeatures) as KernelFeature[]);

/** The features a kernel with this .config has. */
export function featuresOf(config: string): Set<KernelFeature> {
  const options = parseConfig(config);
  return new Set((Object.keys(kernelFeatures) as KernelFeature[]).filter((feature) => options.get(kernelFeatures[feature].option) === 'y'));
}

/** Why a step needing `feature` could not run on this kernel. */
export function missingFeatureReason(feature: KernelFeature): string {
  const { option, what, since } = kernelFeatures[feature];
  return `the kernel has no ${what}: ${option} is not set (the option arrived in ${since})`;
}
