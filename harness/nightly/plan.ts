// A nightly plan: which kernels, kconfig profiles, vIOMMUs and scenarios make
// the matrix, how often each cell runs, and how long a run and the night may
// take. Pure: the text in, a checked plan or errors naming the field out.
import path from 'node:path';
import { z } from 'zod';
import { iommuModels, type IommuModel } from '../machine/topology.ts';

/** Names become file names and JUnit classname parts (`kernel.profile.iommu`): no dots, no slashes. */
const nameRe = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const name = z.string().regex(nameRe, 'letters, digits, "-" and "_" only (it is used in file names and JUnit class names)');

const kernelSchema = z.strictObject({
  /** Shown in the matrix; defaults to "default" for the Debian source, else the tree's folder name and the ref. */
  name: name.optional(),
  /** A git tree; absent: Debian's packaged 6.12 source. */
  src: z.string().min(1).optional(),
  ref: z.string().min(1).optional(),
  patches: z.array(z.string().min(1)).default([]),
});

const profileSchema = z.union([
  name,
  z.strictObject({ name, kconfigs: z.array(z.string().min(1)).min(1) }),
]);

export const planSchema = z.strictObject({
  /** Free text for the report header. */
  title: z.string().optional(),
  kernels: z.array(kernelSchema).min(1).default([{ patches: [] }]),
  profiles: z.array(profileSchema).min(1).default(['lockdep']),
  iommus: z.array(z.enum(iommuModels as unknown as [IommuModel, ...IommuModel[]])).min(1).default(['intel', 'virtio']),
  /** Scenario names, or "all". */
  scenarios: z.union([z.literal('all'), z.array(z.string().min(1)).min(1)]).default('all'),
  /** How many times each cell runs, each in a fresh boot; a cell fails when any cycle fails. */
  cycles: z.number().int().min(1).max(100).default(1),
  timeouts: z
    .strictObject({
      /** One run: boot and scenario (the kernel build is not counted). */
      runMinutes: z.number().positive().default(15),
      /** The whole night (this shard), builds included; runs not started by then are errors. */
      overallMinutes: z.number().positive().default(8 * 60),
    })
    .default({ runMinutes: 15, overallMinutes: 8 * 60 }),
  knownIssues: z.string().min(1).optional(),
  accel: z.enum(['auto', 'kvm', 'tcg']).default('auto'),
});

export type PlanInput = z.input<typeof planSchema>;

export interface PlanKernel {
  name: string;
  src?: string;
  ref?: string;
  patches: string[];
}

export interface PlanProfile {
  name: string;
  /** Fragment files, absolute. */
  kconfigs: string[];
}

/** A checked plan, paths absolute, names resolved. */
export interface Plan {
  title?: string;
  kernels: PlanKernel[];
  profiles: PlanProfile[];
  iommus: IommuModel[];
  scenarios: string[];
  cycles: number;
  timeouts: { runMinutes: number; overallMinutes: number };
  knownIssues?: string;
  accel: 'auto' | 'kvm' | 'tcg';
}

export class PlanError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file}: ${problems.join('; ')}`);
    this.name = 'PlanError';
  }
}

export interface PlanContext {
  /** Where the plan file lives; relative paths in it are relative to this. */
  baseDir: string;
  /** Scenario names the harness knows. */
  scenarios: readonly string[];
  /** What "all" stands for: the scenarios a run without --scenario runs (default: every known one). Those that need a kernel of their own are named beside it. */
  defaultScenarios?: readonly string[];
  /** Built-in profile name to fragment file (kconfigs/profiles/NAME.config). */
  builtinProfiles: Record<string, string>;
}

/** `kernels[1].ref`, as a person would point at it. */
export function fieldPath(pathParts: readonly PropertyKey[]): string {
  let out = '';
  for (const part of pathParts) out += typeof part === 'number' ? `[${part}]` : `${out ? '.' : ''}${String(part)}`;
  return out || '(plan)';
}

export function parsePlan(text: string, file: string, context: PlanContext): Plan {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new PlanError(file, [`not JSON: ${(error as Error).message}`]);
  }
  const parsed = planSchema.safeParse(raw);
  if (!parsed.success) throw new PlanError(file, parsed.error.issues.map((issue) => `${fieldPath(issue.path)}: ${issue.message}`));
  const input = parsed.data;
  const problems: string[] = [];
  const resolve = (p: string) => path.resolve(context.baseDir, p);

  const kernels = input.kernels.map((kernel, index): PlanKernel => ({
    name: kernel.name ?? defaultKernelName(kernel.src, kernel.ref, index),
    // debian:RELEASE names Debian's packaged source; anything else is a folder relative to the plan.
    ...(kernel.src ? { src: kernel.src.startsWith('debian:') ? kernel.src : resolve(kernel.src) } : {}),
    ...(kernel.ref ? { ref: kernel.ref } : {}),
    patches: kernel.patches.map(resolve),
  }));
  input.kernels.forEach((kernel, index) => {
    if (kernel.ref && !kernel.src) problems.push(`kernels[${index}].ref: needs kernels[${index}].src (the default source has one commit)`);
    if (!kernel.name && !nameRe.test(kernels[index]!.name)) problems.push(`kernels[${index}].name: required (cannot derive one from src/ref)`);
  });
  duplicates(kernels.map((kernel) => kernel.name)).forEach((dup) => problems.push(`kernels: name "${dup}" appears twice`));

  const profiles = input.profiles.map((profile, index): PlanProfile => {
    if (typeof profile !== 'string') return { name: profile.name, kconfigs: profile.kconfigs.map(resolve) };
    const builtin = context.builtinProfiles[profile];
    if (!builtin) problems.push(`profiles[${index}]: unknown profile "${profile}" (built in: ${Object.keys(context.builtinProfiles).join(', ')})`);
    return { name: profile, kconfigs: builtin ? [builtin] : [] };
  });
  duplicates(profiles.map((profile) => profile.name)).forEach((dup) => problems.push(`profiles: "${dup}" appears twice`));

  // "all" alone, or inside the list beside scenarios that run only when named (the selftests).
  const all = [...(context.defaultScenarios ?? context.scenarios)];
  const scenarios = input.scenarios === 'all' ? all : input.scenarios.flatMap((scenario) => (scenario === 'all' ? all : [scenario]));
  if (input.scenarios !== 'all') {
    input.scenarios.forEach((scenario, index) => {
      if (scenario !== 'all' && !context.scenarios.includes(scenario)) problems.push(`scenarios[${index}]: unknown scenario "${scenario}" (known: ${context.scenarios.join(', ')})`);
    });
  }
  duplicates(scenarios).forEach((dup) => problems.push(`scenarios: "${dup}" appears twice`));
  duplicates(input.iommus).forEach((dup) => problems.push(`iommus: "${dup}" appears twice`));

  if (problems.length) throw new PlanError(file, problems);
  return {
    ...(input.title ? { title: input.title } : {}),
    kernels,
    profiles,
    iommus: input.iommus,
    scenarios,
    cycles: input.cycles,
    timeouts: input.timeouts,
    ...(input.knownIssues ? { knownIssues: resolve(input.knownIssues) } : {}),
    accel: input.accel,
  };
}

function defaultKernelName(src: string | undefined, ref: string | undefined, index: number): string {
  if (!src) return index === 0 ? 'default' : `default-${index}`;
  if (src.startsWith('debian:')) return src.replace(/[^A-Za-z0-9_-]+/g, '-');
  const base = [path.basename(path.resolve(src)), ref].filter(Boolean).join('-');
  return base.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '') || `kernel-${index}`;
}

function duplicates(values: readonly string[]): string[] {
  return [...new Set(values.filter((value, index) => values.indexOf(value) !== index))];
}
