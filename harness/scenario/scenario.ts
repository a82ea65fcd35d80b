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
  run(guest: Guest): Promise<void>;
}
