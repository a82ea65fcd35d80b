// The scenario library, in the order they run when they share a boot.
import type { Scenario } from '../harness/scenario/scenario.ts';
import { pciHotplug } from './pci-hotplug.ts';
import { removeRescan } from './remove-rescan.ts';
import { vfioBindUnbind } from './vfio-bind-unbind.ts';

export const scenarios: readonly Scenario[] = [vfioBindUnbind, pciHotplug, removeRescan];

export function scenarioByName(name: string): Scenario | undefined {
  return scenarios.find((scenario) => scenario.name === name);
}
