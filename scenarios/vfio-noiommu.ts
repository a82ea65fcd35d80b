import { eduDevice, rootPort } from '../harness/machine/topology.ts';
import type { Scenario } from '../harness/scenario/scenario.ts';

/**
 * vfio no-iommu mode makes a fake group for a device with no IOMMU through
 * the external iommu_group_add_device()/iommu_group_remove_device() API.
 */
export const vfioNoiommu: Scenario = {
  name: 'vfio-noiommu',
  proves: 'with no IOMMU and vfio no-iommu mode, binding edu to vfio-pci creates a group through the external API, and unbinding releases it',
  iommus: ['none'],
  notOn: { smmuv3: 'no-iommu mode needs a machine without an IOMMU: the none machine (q35) runs it' },
  topology: { devices: [rootPort('rp-noiommu', 9), eduDevice('edu-noiommu', 'rp-noiommu')], cmdline: ['vfio.enable_unsafe_noiommu_mode=1'] },
  async run(guest) {
    await guest.mark('bind');
    const bdf = await guest.present('edu-noiommu');
    await guest.bind(bdf, 'vfio-pci');
    await guest.mark('open');
    await guest.vfioNoiommu(bdf);
    await guest.mark('unbind');
    await guest.unbind(bdf);
    await guest.mark('remove');
    await guest.remove(bdf);
  },
};
