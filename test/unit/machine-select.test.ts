// Without --iommu the patch picks the machines: one driver's change runs on
// that driver's machine, anything shared on every machine.
import test from 'ava';
import { iommuModels } from '../../harness/machine/machines.ts';
import { selectMachines } from '../../harness/machine/select.ts';

test('a patch only to drivers/iommu/amd/ selects amd, and says why', (t) => {
  const selection = selectMachines(['drivers/iommu/amd/iommu.c', 'drivers/iommu/amd/init.c']);
  t.deepEqual(selection.machines, ['amd']);
  t.regex(selection.reason, /only amd's driver/);
});

test('a patch to intel and virtio drivers selects both, in table order', (t) => {
  t.deepEqual(selectMachines(['drivers/iommu/virtio-iommu.c', 'drivers/iommu/intel/iommu.c']).machines, ['intel', 'virtio']);
});

test('a core, VFIO or header change selects every machine, naming the file', (t) => {
  for (const file of ['drivers/iommu/iommu.c', 'drivers/vfio/vfio_main.c', 'include/linux/iommu.h']) {
    const selection = selectMachines(['drivers/iommu/amd/iommu.c', file]);
    t.deepEqual(selection.machines, [...iommuModels], file);
    t.regex(selection.reason, new RegExp(`${file.replaceAll('.', '\\.')} outside any one driver`));
  }
});

test('documentation does not narrow the choice, and no patch is every machine', (t) => {
  t.deepEqual(selectMachines(['drivers/iommu/amd/iommu.c', 'Documentation/arch/x86/iommu.rst']).machines, ['amd']);
  t.deepEqual(selectMachines(['Documentation/arch/x86/iommu.rst']).machines, [...iommuModels]);
  t.deepEqual(selectMachines([]).machines, [...iommuModels]);
});
