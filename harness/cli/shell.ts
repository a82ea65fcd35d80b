// `iommu-harness shell`: the kernel a run would build, booted on one machine
// with a scenario's topology, and a person's shell in it over the same pinned
// SSH the scenarios use; the vfio-helper is on its PATH. QEMU ends when the
// shell does, on every exit path (the reaper, the parent-death signal).
import { createServer } from 'node:net';
import path from 'node:path';
import { cacheLayout, ensureDir } from '../cache.ts';
import { HarnessError } from '../errors.ts';
import type { Progress } from '../log.ts';
import { chooseAccel } from '../machine/accel.ts';
import { foreignArchAccel } from '../machine/arches.ts';
import { Machine } from '../machine/machine.ts';
import { machineOf } from '../machine/machines.ts';
import { mergeTopologies, type IommuModel, type Topology } from '../machine/topology.ts';
import { newRunDir, prepareKernel } from '../run.ts';
import type { Scenario } from '../scenario/scenario.ts';

export interface ShellRequest {
  src?: string;
  ref?: string;
  patches: string[];
  kconfigs: string[];
  iommu: IommuModel;
  /** Their devices are there at boot, as in a run of them; none: the machine alone. */
  scenarios: readonly Scenario[];
  accel: 'auto' | 'kvm' | 'tcg';
  gdb: boolean;
  progress: Progress;
}

/** A free TCP port on 127.0.0.1 for QEMU's gdbstub (taken back at once; QEMU binds it a moment later). */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** The topology the chosen scenarios boot with on this machine, as a run would merge it. */
export function shellTopology(iommu: IommuModel, scenarios: readonly Scenario[]): Topology {
  const refused = scenarios.filter((scenario) => !scenario.iommus.includes(iommu));
  if (refused.length) {
    const why = refused.map((scenario) => `${scenario.name} runs on ${scenario.iommus.join(', ')}${scenario.notOn?.[iommu] ? ` (not on ${iommu}: ${scenario.notOn[iommu]})` : ''}`);
    throw new HarnessError('usage', `--scenario ${refused.map((scenario) => scenario.name).join(', ')} does not run on ${iommu}: ${why.join('; ')}`);
  }
  return mergeTopologies(scenarios.map((scenario) => scenario.topology));
}

/** Boots, hands the terminal to the guest's shell, stops QEMU; the shell's exit code. */
export async function runShell(request: ShellRequest, io = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const { progress } = request;
  const topology = shellTopology(request.iommu, request.scenarios);
  const layout = cacheLayout();
  const arch = machineOf(request.iommu).arch;
  const prepared = await prepareKernel({ ...(request.src ? { src: request.src } : {}), ...(request.ref ? { ref: request.ref } : {}), patches: request.patches, kconfigs: request.kconfigs, arch }, progress, layout);
  const accel = foreignArchAccel(arch) ?? (await chooseAccel(request.accel, process.env, { kernel: prepared.kernel.artifacts.bzImage, layout }));
  progress.step(`accelerator: ${accel.accel} (${accel.reason})`);
  const runDir = await ensureDir(path.join(newRunDir(layout), request.iommu));
  const gdbPort = request.gdb ? await freeLoopbackPort() : undefined;
  const machine = await Machine.boot({
    iommu: request.iommu,
    accel: accel.accel,
    accelAutomatic: accel.automatic,
    bzImage: prepared.kernel.artifacts.bzImage,
    initrd: prepared.image.path,
    topology,
    runDir,
    privateKey: prepared.keys.clientPrivateKey,
    hostKeyBlob: prepared.keys.hostKeyBlob,
    bootTimeoutMs: accel.accel === 'kvm' ? 60_000 : 180_000,
    progress,
    ...(gdbPort !== undefined ? { gdbPort } : {}),
  });
  try {
    progress.step(`${request.iommu}: a shell in the guest (kernel ${prepared.kernel.artifacts.release}); the console is ${machine.consoleLog}; exit to stop the machine`);
    if (gdbPort !== undefined) {
      progress.step(`gdb: gdb ${prepared.kernel.artifacts.vmlinux} -ex 'target remote 127.0.0.1:${gdbPort}'`);
      // The standard kernel has symbols but no DWARF (a cold build minutes shorter); source-level gdb is a kernel of its own.
      if (!request.kconfigs.some((fragment) => path.basename(fragment) === 'gdb.config')) {
        progress.step('gdb: this vmlinux has symbols but no DWARF; for source lines, types and locals add --kconfig kconfigs/gdb.config (a kernel of its own: one cold build)');
      }
    }
    return await machine.shell.interactive(io).catch((error: unknown) => {
      // The console is where a lost guest says why.
      if (error instanceof HarnessError && !error.logPath) throw new HarnessError(error.kind, error.message, { logPath: machine.consoleLog, cause: error });
      throw error;
    });
  } finally {
    await machine.stop();
  }
}
