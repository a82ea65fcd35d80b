// The night's matrix: kernel x profile x vIOMMU x scenario cells, each run
// `cycles` times, and the deterministic slice of it a shard runs.
import type { IommuModel } from '../machine/topology.ts';
import type { Plan } from './plan.ts';

/** One line of the matrix, one JUnit testcase. */
export interface MatrixCell {
  /** `kernel.profile.iommu.scenario`. */
  id: string;
  kernel: string;
  profile: string;
  iommu: IommuModel;
  scenario: string;
}

/** One boot: a cell's cycle. The unit of sharding and of resuming. */
export interface MatrixUnit extends MatrixCell {
  /** `kernel.profile.iommu.scenario.cN`. */
  unit: string;
  cycle: number;
}

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

export const cellId = (cell: Omit<MatrixCell, 'id'>): string => `${cell.kernel}.${cell.profile}.${cell.iommu}.${cell.scenario}`;

/**
 * Every cell in plan order (kernels, then profiles, vIOMMUs, scenarios), so
 * runs of one kernel and profile are next to each other: a profile switch is a
 * rebuild. A scenario is left out on a vIOMMU it does not apply to.
 */
export function expandMatrix(plan: Pick<Plan, 'kernels' | 'profiles' | 'iommus' | 'scenarios' | 'cycles'>, scenarioIommus: Record<string, readonly IommuModel[]>): MatrixUnit[] {
  const units: MatrixUnit[] = [];
  for (const kernel of plan.kernels) {
    for (const profile of plan.profiles) {
      for (const iommu of plan.iommus) {
        for (const scenario of plan.scenarios) {
          if (!(scenarioIommus[scenario] ?? []).includes(iommu)) continue;
          const cell = { kernel: kernel.name, profile: profile.name, iommu, scenario };
          const id = cellId(cell);
          for (let cycle = 1; cycle <= plan.cycles; cycle++) units.push({ ...cell, id, unit: `${id}.c${cycle}`, cycle });
        }
      }
    }
  }
  return units;
}

export function cellsOf(units: readonly MatrixUnit[]): MatrixCell[] {
  const cells = new Map<string, MatrixCell>();
  for (const { id, kernel, profile, iommu, scenario } of units) if (!cells.has(id)) cells.set(id, { id, kernel, profile, iommu, scenario });
  return [...cells.values()];
}

export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || count < 1 || index < 1 || index > count) throw new Error(`--shard: expected I/N with 1 <= I <= N, got "${text}"`);
  return { index, count };
}

/**
 * Shard I of N: the I-th of N contiguous, near-equal slices of the matrix in
 * plan order. Contiguous rather than round-robin so a shard builds as few
 * kernel x profile combinations as it can; the same plan always slices the
 * same way, and the N slices cover the matrix exactly once.
 */
export function selectShard<T>(units: readonly T[], shard: Shard): T[] {
  const start = Math.floor(((shard.index - 1) * units.length) / shard.count);
  const end = Math.floor((shard.index * units.length) / shard.count);
  return units.slice(start, end);
}
