// What a scenario is: the machine it needs, where it applies, and the steps
// it drives through the typed guest API.
import type { IommuModel, Topology } from '../machine/topology.ts';
import type { Guest } from './guest.ts';

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
  run(guest: Guest): Promise<void>;
}
