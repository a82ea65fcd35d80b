// Which machines a run boots when `--iommu` is not given: the patch decides.
// A change only to one driver (drivers/iommu/amd/) is run on the machine that
// runs that driver; a change to the core, VFIO, PCI or a shared header can
// show anywhere, so it gets every machine. Pure.
import { iommuModels, machines, type IommuModel } from './machines.ts';

export interface MachineSelection {
  machines: IommuModel[];
  /** One line for the output: why these. */
  reason: string;
}

/** Files no object is built from: they say nothing about where a change shows. */
const notCode = (file: string) => !/\.(?:c|h|S|rs)$/.test(file) && !/(?:^|\/)(?:Kconfig[^/]*|Makefile|Kbuild)$/.test(file);

function machineRunning(file: string): IommuModel | undefined {
  return iommuModels.find((model) => (machines[model].driverPaths as readonly string[]).some((prefix) => (prefix.endsWith('/') ? file.startsWith(prefix) : file === prefix)));
}

export function selectMachines(changedFiles: readonly string[]): MachineSelection {
  const every = { machines: [...iommuModels], reason: '' };
  const code = changedFiles.filter((file) => !notCode(file));
  if (changedFiles.length === 0) return { ...every, reason: 'no patch: every machine' };
  if (code.length === 0) return { ...every, reason: 'the patches change no kernel code: every machine' };
  const shared = code.filter((file) => machineRunning(file) === undefined);
  if (shared.length > 0) return { ...every, reason: `${shared[0]}${shared.length > 1 ? ` and ${shared.length - 1} more file(s)` : ''} outside any one driver: every machine` };
  const chosen = iommuModels.filter((model) => code.some((file) => machineRunning(file) === model));
  return { machines: chosen, reason: `the patches change only ${chosen.map((model) => `${model}'s driver`).join(' and ')}: ${chosen.join(', ')}` };
}
