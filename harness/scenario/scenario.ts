// What a scenario is: the machine it needs, where it applies, and the steps
// it drives through the typed guest API.
import type { IommuModel, Topology } from '../machine/topology.ts';
import type { Guest } from './guest.ts';
import type { SelftestDir } from '../selftest/suites.ts';

export interface Scenario {
  /** Stable name, used on the command line and in results. */
  name: string;
  /** One line: what a pass proves. */
  proves: string;
  iommus: readonly IommuModel[];
  /** Devices and bridges at boot; device ids must not clash with other scenarios'. */
  topology: Topology;
  /**
   * Why this scenario needs a boot of its own, when it does: it spends a
   * one-shot check (lockdep reports once per boot) or changes the machine
   * for everyone (a -global). Scenarios without it share a boot.
   */
  freshBoot?: string;
  /** A fresh boot on some machines only, each with why (virt's hotplug is native only: pciehp's upstream lockdep report). */
  freshBootOn?: Partial<Record<IommuModel, string>>;
  /**
   * Machines the scenario does not run on, each with why (`iommu-harness
   * scenarios` prints them): a machine that lacks what it needs, or where
   * QEMU cannot do it.
   */
  notOn?: Partial<Record<IommuModel, string>>;
  /**
   * A fragment of kconfigs/scenarios/ the scenario's kernel needs beyond the profile (the selftests'
   * CONFIG_IOMMUFD_TEST, KUnit): a run that selects the scenario builds its kernel with it.
   */
  kconfig?: string;
  /** tools/testing/selftests folders whose programs the run builds from the tree and the guest carries. */
  selftests?: readonly SelftestDir[];
  /**
   * Why the scenario runs only when named (`--scenario NAME`, a nightly plan): it needs a kernel of
   * its own (kconfig), so a run of the default selection keeps the default kernel.
   */
  onlyWhenNamed?: string;
  /** How much longer than usual the boot may take to reach SSH: the kernel runs this scenario's tests while it boots (KUnit). */
  extraBootMs?: number;
  run(guest: Guest): Promise<void>;
}
