// Whether the code a patch changes was built into the kernel under test and is
// run by a selected machine. A patch to drivers/iommu/amd/ on a kernel built
// for intel and virtio compiles nothing of it, and a PASS would claim it was
// tested. Pure: the build side (built-files.ts) hands over what kbuild
// compiled, read from its .cmd files, which name each object's source and
// every header it included.
import { machines, type IommuModel } from '../machine/machines.ts';

/**
 * The IOMMU drivers and the machine that runs each: a file under `paths` is
 * run only on that machine. `machine` is a machine the harness has, or, for a
 * driver no machine runs yet, the one that would. A file under no row (the
 * IOMMU core, VFIO, PCI) runs on every machine that boots the kernel.
 */
export interface DriverRow {
  driver: string;
  paths: string[];
  machine: string;
  /** The harness can boot this machine today. */
  available: boolean;
}

/** Drivers whose machine the harness does not have, and the machine that would run them. */
const driversWithoutMachine: readonly DriverRow[] = [
  { driver: 'Arm SMMUv3', paths: ['drivers/iommu/arm/arm-smmu-v3/'], machine: 'smmuv3 (arm64 virt + SMMUv3)', available: false },
  { driver: 'Arm SMMU (v1/v2)', paths: ['drivers/iommu/arm/arm-smmu/'], machine: 'arm-smmu (which QEMU does not emulate)', available: false },
];

export const driverRows: readonly DriverRow[] = [
  ...Object.entries(machines)
    .filter(([, machine]) => machine.driverPaths.length > 0)
    .map(([name, machine]) => ({ driver: machine.summary, paths: [...machine.driverPaths], machine: name, available: true })),
  ...driversWithoutMachine.filter((row) => !row.paths.some((prefix) => Object.values(machines).some((machine) => (machine.driverPaths as readonly string[]).includes(prefix)))),
];

/** Files the compiler reads: anything else (Documentation/, tools/, a Kconfig) is not code in the image. */
const codeFile = /\.(?:c|h|S|rs)$/;
/** Files the build reads to decide what to compile: changing one changes the build, not one object. */
const buildFile = /(?:^|\/)(?:Kconfig[^/]*|Makefile|Kbuild)$/;

export interface FileCoverage {
  file: string;
  kind: 'code' | 'build' | 'other';
  /** Compiled into the kernel (a .c's object exists; a header was included by a compiled object). */
  built: boolean;
  /** The selected machines that run it: empty when not built or only an unselected machine runs it. */
  machines: string[];
  /** Why it is not covered, for the table and the JSON; absent when it is. */
  note?: string;
}

export interface PatchCoverage {
  files: FileCoverage[];
  /** At least one changed code file was built and is run by a selected machine. */
  exercised: boolean;
  /** Why the run cannot speak for the patch, when nothing of it was exercised. */
  inconclusive?: string;
}

export function driverOf(file: string): DriverRow | undefined {
  return driverRows.find((row) => row.paths.some((prefix) => (prefix.endsWith('/') ? file.startsWith(prefix) : file === prefix)));
}

export function coverFile(file: string, built: ReadonlySet<string>, selected: readonly IommuModel[]): FileCoverage {
  if (buildFile.test(file)) return { file, kind: 'build', built: true, machines: [...selected] };
  if (!codeFile.test(file)) return { file, kind: 'other', built: false, machines: [], note: 'not kernel code (no object is built from it)' };
  const driver = driverOf(file);
  if (!built.has(file)) {
    const where = !driver
      ? ''
      : !driver.available
        ? `; the ${driver.machine} machine would build it, which the harness does not have yet`
        : selected.some((machine) => machine === driver.machine)
          ? ` although the ${driver.machine} machine booted: check --kconfig`
          : `; the ${driver.machine} machine would build it and it was not selected (--iommu ${driver.machine})`;
    return { file, kind: 'code', built: false, machines: [], note: `not compiled into this kernel${where}` };
  }
  if (!driver) return { file, kind: 'code', built: true, machines: [...selected] };
  const machines = selected.filter((machine) => machine === driver.machine);
  if (machines.length > 0) return { file, kind: 'code', built: true, machines };
  return {
    file,
    kind: 'code',
    built: true,
    machines: [],
    note: driver.available ? `built, but only the ${driver.machine} machine runs it and it was not selected (--iommu ${driver.machine})` : `built, but only the ${driver.machine} machine would run it, which the harness does not have yet`,
  };
}

/**
 * The patch's files held against the build. Undefined when nothing is under
 * test beyond the tree itself (no patch, no uncommitted change).
 */
export function patchCoverage(changed: readonly string[], built: ReadonlySet<string>, selected: readonly IommuModel[]): PatchCoverage | undefined {
  if (changed.length === 0) return undefined;
  const files = changed.map((file) => coverFile(file, built, selected));
  const exercised = files.some((entry) => entry.kind === 'code' && entry.machines.length > 0);
  if (exercised) return { files, exercised };
  const code = files.filter((entry) => entry.kind === 'code');
  const inconclusive =
    code.length === 0
      ? `the patch changes no kernel code (${files.map((entry) => entry.file).join(', ')}): the run says nothing about it`
      : `none of the patch's code ran: ${code.map((entry) => `${entry.file} (${entry.note})`).join('; ')}`;
  return { files, exercised, inconclusive };
}

/** The lines the table and `check` print for files outside the test. */
export function coverageNotes(coverage: PatchCoverage | undefined): string[] {
  return (coverage?.files ?? []).filter((entry) => entry.note).map((entry) => `${entry.file}: ${entry.note}`);
}
