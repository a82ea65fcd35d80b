// The QEMU command line, pure, so every choice in it is tested without QEMU.
import path from 'node:path';
import { viommuTraceEvents, viommuTraceFile } from '../oracle/viommu-trace.ts';
import { archOf } from './arches.ts';
import { machineOf } from './machines.ts';
import type { BootDevice, IommuModel, Topology } from './topology.ts';

export type Accel = 'kvm' | 'tcg';

export interface MachineSpec {
  iommu: IommuModel;
  accel: Accel;
  kernel: string;
  initrd: string;
  topology: Topology;
  consoleLog: string;
  qmpSocket: string;
  memoryMb?: number;
  cpus?: number;
  /** The host's TSC frequency, given to a TCG guest so it need not measure it (see hostTscKhz). */
  tscKhz?: number;
  /** QEMU's gdbstub on this 127.0.0.1 port (`iommu-harness shell --gdb`); absent: no gdbstub. */
  gdbPort?: number;
}

/**
 * The host's TSC frequency in kHz, from /proc/cpuinfo, when it is the TSC's:
 * a constant TSC whose frequency the host kernel was told (tsc_known_freq) or
 * got from its hypervisor, where "cpu MHz" is that frequency. Under TCG the
 * guest's TSC is the host's; left to calibrate it against the emulated PIT on a
 * loaded host, the guest measured 578 MHz for 2596 and its clock ran 4.5 times
 * too fast (a 2 s wait then looks like a 10 s hang). Undefined when unsure
 * (a bare-metal host with frequency scaling, where "cpu MHz" is the core's).
 */
export function hostTscKhz(cpuinfo: string): number | undefined {
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1]?.trim().split(/\s+/) ?? [];
  if (!flags.includes('constant_tsc') || !(flags.includes('tsc_known_freq') || flags.includes('hypervisor'))) return undefined;
  const mhz = Number(/^cpu MHz\s*:\s*([\d.]+)$/m.exec(cpuinfo)?.[1]);
  return Number.isFinite(mhz) && mhz > 0 ? Math.round(mhz * 1000) : undefined;
}

/** From Debian's qemu-system-data (a dependency of qemu-system-x86); the q35 rows of machines.ts name it. */
export { qbootFirmware } from './machines.ts';

/** The QEMU binary that runs a machine: its architecture's (arches.ts). */
export function qemuBinaryFor(iommu: IommuModel): string {
  return archOf(machineOf(iommu).arch).qemuBinary;
}

/** Kernel command line for a harness guest. */
export function kernelCommandLine(iommu: IommuModel, extra: string[] = [], tscKhz?: number): string {
  const arch = archOf(machineOf(iommu).arch);
  const words = [
    `console=${arch.console}`,
    // A panic ends QEMU at once (with -no-reboot) instead of hanging the run.
    'panic=-1',
    // x86's no_timer_check (see arches.ts).
    ...arch.cmdline,
    // iommu_group_alloc/release report with pr_debug; enabling the whole of
    // iommu.c floods the console with map/unmap lines.
    'dyndbg="func iommu_group_alloc +p; func iommu_group_release +p"',
    // pr_debug is KERN_DEBUG: without this it reaches dmesg but not the console.
    'ignore_loglevel',
    'printk.devkmsg=on',
    ...machineOf(iommu).cmdline,
    // The TSC is x86's: another architecture's guest has none to be told about.
    ...(tscKhz && arch.kernelArch === 'x86_64' ? [`tsc_early_khz=${tscKhz}`] : []),
    ...extra,
  ];
  return words.join(' ');
}

/**
 * A value inside a QEMU option string (`-chardev file,path=...`, `-trace
 * file=...`, `-device ...,id=...`). QEMU splits those at every comma and
 * reads `,,` as one literal comma; unescaped, a `,` in a path ($HOME, the
 * cache, a nightly --out) makes QEMU refuse to start, and a crafted one adds
 * options of its own (`/tmp/a,server=on,b`). Plain arguments (`-kernel`,
 * `-initrd`, `-bios`, `-append`, `-pidfile`) are taken whole and must not be
 * escaped: QEMU would look for a file with a doubled comma.
 */
export function qemuOptValue(value: string | number): string {
  return String(value).replaceAll(',', ',,');
}

function deviceArg(driver: string, props: Record<string, string | number | boolean>): string {
  const pairs = Object.entries(props).map(([key, value]) => `${key}=${typeof value === 'boolean' ? (value ? 'on' : 'off') : qemuOptValue(value)}`);
  return [driver, ...pairs].join(',');
}

/** The NIC the harness reaches the guest through; named so QEMU can be asked about its queues. */
export const harnessNicId = 'harness-nic';

export function qemuArgs(spec: MachineSpec): string[] {
  const machine = machineOf(spec.iommu);
  const args = [
    '-machine',
    machine.machineOption,
    // TCG runs both vCPUs on one thread: with a thread per vCPU (QEMU's
    // default), QEMU 7.2 now and then leaves a halted vCPU asleep through its
    // own timer interrupt; the guest then reports a hung task and an RCU stall
    // ("timer wakeup didn't happen"), or loses its network, about once in 600
    // PCI rescans here. A false finding costs more than the parallel vCPUs gain.
    '-accel',
    spec.accel === 'tcg' ? 'tcg,thread=single' : 'kvm',
    '-cpu',
    spec.accel === 'kvm' ? 'host' : 'max',
    '-smp',
    String(spec.cpus ?? 2),
    '-m',
    String(spec.memoryMb ?? 1024),
    '-nodefaults',
    '-display',
    'none',
    '-no-reboot',
    // q35: qboot instead of SeaBIOS: it loads the kernel and QEMU's ACPI tables and
    // nothing else (no option ROMs, no boot menu, no device scan), which saves
    // most of the time between QEMU's start and the kernel's first line.
    // Linux assigns PCI resources itself, hotplug bridge windows included.
    // virt has no firmware: QEMU loads the Image and its device tree itself.
    ...(machine.firmware ? ['-bios', machine.firmware] : []),
    '-kernel',
    spec.kernel,
    '-initrd',
    spec.initrd,
    '-append',
    kernelCommandLine(spec.iommu, spec.topology.cmdline, spec.accel === 'tcg' ? spec.tscKhz : undefined),
    // The console goes to a file from the first byte, whatever happens to the harness.
    '-chardev',
    `file,id=console,path=${qemuOptValue(spec.consoleLog)}`,
    '-serial',
    'chardev:console',
    '-qmp',
    `unix:${qemuOptValue(spec.qmpSocket)},server=on,wait=off`,
    // restrict=on: the guest reaches nothing but the forwarded port. Port 0
    // lets the host pick a free one; the harness reads it back over QMP.
    '-netdev',
    'user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:0-:22',
  ];
  // The gdbstub listens on the loopback address only, as the SSH forward does.
  if (spec.gdbPort !== undefined) args.push('-gdb', `tcp:127.0.0.1:${spec.gdbPort}`);
  // The vIOMMU comes before the PCI devices it translates for.
  if (machine.iommuDevice) args.push('-device', machine.iommuDevice);
  if (machine.ledger) args.push(...viommuTraceArgs(machine.ledger, viommuTracePath(spec.consoleLog)));
  // romfile= : no iPXE option ROM; the guest never boots from the network.
  args.push('-device', `virtio-net-pci,id=${harnessNicId},netdev=net0,romfile=`);
  for (const global of spec.topology.globals ?? []) {
    if (!(machine.nativeHotplugOnly && global.startsWith('ICH9-LPC.'))) args.push('-global', global);
  }
  const devices = machine.endpointsOnRootBus ? endpointsOnRootBus(spec.topology.devices) : spec.topology.devices;
  for (const device of devices) args.push('-device', deviceArg(device.driver, { ...device.props, id: device.id }));
  return args;
}

/** The first pcie.0 slot endpoints moved off their root ports take: clear of q35's own devices. */
const rootBusSlotBase = 0x10;

/**
 * The topology with every endpoint that is cold-plugged behind a root port
 * and used for DMA moved onto pcie.0 (slot 0x10 + the port's chassis,
 * functions kept), for a machine whose vIOMMU cannot translate for
 * cold-plugged devices off bus 0 (QEMU 7.2's amd-iommu: see its row). Root
 * ports stay, for hot-add; an endpoint without DMA stays behind its port, so
 * its hot-removal (which pcie.0 cannot do) is still tested there.
 */
export function endpointsOnRootBus(devices: readonly BootDevice[]): BootDevice[] {
  const ports = new Map(devices.filter((device) => device.driver === 'pcie-root-port').map((port) => [port.id, Number(port.props?.chassis ?? 0)]));
  return devices.map((device) => {
    const port = typeof device.props?.bus === 'string' ? ports.get(device.props.bus) : undefined;
    if (port === undefined || !device.dma) return device;
    const fn = /^(?:0x)?0*\.(\d)$/.exec(String(device.props?.addr ?? '0.0'))?.[1] ?? '0';
    return { ...device, props: { ...device.props, bus: 'pcie.0', addr: `${(rootBusSlotBase + port).toString(16)}.${fn}` } };
  });
}

/** Where a boot's vIOMMU trace goes: beside its console log, so a saved run folder holds both. */
export function viommuTracePath(consoleLog: string): string {
  return path.join(path.dirname(consoleLog), viommuTraceFile);
}

/**
 * The vIOMMU's own trace events, for the ledger (harness/oracle/viommu-ledger.ts).
 * Debian's QEMU has the `log` trace backend, for which `file=` is the log file;
 * one -trace per event, since a repeated key in one -trace keeps only the last.
 */
function viommuTraceArgs(iommu: keyof typeof viommuTraceEvents, file: string): string[] {
  return [...viommuTraceEvents[iommu].flatMap((event) => ['-trace', `enable=${event}`]), '-trace', `file=${qemuOptValue(file)}`];
}

/** The host port QEMU picked for the guest's SSH, from `info usernet`. */
export function parseForwardedPort(infoUsernet: string): number | undefined {
  for (const line of infoUsernet.split('\n')) {
    const match = /HOST_FORWARD\]?\s+\d+\s+127\.0\.0\.1\s+(\d+)\s+10\.0\.2\.15\s+22\b/.exec(line);
    if (match?.[1]) return Number(match[1]);
  }
  return undefined;
}
