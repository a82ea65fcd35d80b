// The scenario library, in the order they run when they share a boot.
import { HarnessError } from '../harness/errors.ts';
import type { Scenario } from '../harness/scenario/scenario.ts';
import { bridgeGroup } from './bridge-group.ts';
import { identityBehindBridge } from './identity-behind-bridge.ts';
import { multifunction } from './multifunction.ts';
import { pciHotplugNative, pciHotplugNativeAdd } from './pci-hotplug-native.ts';
import { pciHotplug } from './pci-hotplug.ts';
import { kunitIommu } from './kunit-iommu.ts';
import { rebindOriginalDriver } from './rebind-original-driver.ts';
import { selftestIommufd } from './selftest-iommufd.ts';
import { selftestVfio } from './selftest-vfio.ts';
import { removeRescan } from './remove-rescan.ts';
import { unplugWhileOpen } from './unplug-while-open.ts';
import { vfioBindUnbind } from './vfio-bind-unbind.ts';
import { vfioNoiommu } from './vfio-noiommu.ts';

/** The scenarios a run without --scenario runs: they share the default kernel. */
export const scenarios: readonly Scenario[] = [
  vfioBindUnbind,
  pciHotplug,
  removeRescan,
  bridgeGroup,
  multifunction,
  unplugWhileOpen,
  rebindOriginalDriver,
  vfioNoiommu,
  identityBehindBridge,
  pciHotplugNative,
  pciHotplugNativeAdd,
];

/** The kernel's own test suites: each needs a kernel of its own (onlyWhenNamed), so they run only when named. */
export const namedOnlyScenarios: readonly Scenario[] = [selftestIommufd, selftestVfio, kunitIommu];

/** Every scenario the harness knows, in the order they run when they share a boot. */
export const everyScenario: readonly Scenario[] = [...scenarios, ...namedOnlyScenarios];

export function scenarioByName(name: string): Scenario | undefined {
  return everyScenario.find((scenario) => scenario.name === name);
}

/** The scenarios named on a command line (the default selection when none is), or a usage error naming the unknown one. */
export function selectScenarios(names: string[]): readonly Scenario[] {
  const selected = names.map((name) => {
    const scenario = scenarioByName(name);
    if (!scenario) throw new HarnessError('usage', `unknown scenario "${name}"; \`iommu-harness scenarios\` lists them`);
    return scenario;
  });
  return selected.length ? selected : scenarios;
}
