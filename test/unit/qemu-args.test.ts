import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { qemuBinary } from '../../harness/machine/qemu-command.ts';
import { endpointsOnRootBus, hostTscKhz, kernelCommandLine, parseForwardedPort, qemuArgs } from '../../harness/machine/qemu-args.ts';
import { eduDevice, mergeTopologies, rootPort } from '../../harness/machine/topology.ts';
import { bdfOfQdevId } from '../../harness/scenario/pci-address.ts';

const spec = {
  accel: 'tcg' as const,
  kernel: '/k/bzImage',
  initrd: '/i/initramfs.gz',
  topology: { devices: [rootPort('rp1', 1), eduDevice('edu1', 'rp1')] },
  consoleLog: '/run/console.log',
  qmpSocket: '/tmp/x/qmp.sock',
};

const valueAfter = (args: string[], flag: string) => args.filter((_, i) => args[i - 1] === flag);

test('intel: intel-iommu with interrupt remapping, before every PCI device', (t) => {
  const args = qemuArgs({ ...spec, iommu: 'intel' });
  const devices = valueAfter(args, '-device');
  t.is(devices[0], 'intel-iommu,intremap=on');
  t.deepEqual(devices.slice(2), ['pcie-root-port,chassis=1,slot=1,bus=pcie.0,id=rp1', 'edu,bus=rp1,id=edu1']);
  t.true(args.includes('-no-reboot'));
  t.is(valueAfter(args, '-cpu')[0], 'max');
});

test('the firmware loads the kernel and nothing else: qboot, no option ROM on the NIC', (t) => {
  const args = qemuArgs({ ...spec, iommu: 'virtio' });
  t.deepEqual(valueAfter(args, '-bios'), ['/usr/share/qemu/qboot.rom']);
  t.true(valueAfter(args, '-device').includes('virtio-net-pci,id=harness-nic,netdev=net0,romfile='));
});

test('user networking is restricted and forwards only to 127.0.0.1', (t) => {
  const netdev = valueAfter(qemuArgs({ ...spec, iommu: 'virtio' }), '-netdev')[0] ?? '';
  t.regex(netdev, /restrict=on/);
  t.regex(netdev, /hostfwd=tcp:127\.0\.0\.1:0-:22/);
});

test('virtio: virtio-iommu-pci and the unsafe-interrupt switches VFIO needs without remapping', (t) => {
  const args = qemuArgs({ ...spec, iommu: 'virtio', accel: 'kvm' });
  t.is(valueAfter(args, '-device')[0], 'virtio-iommu-pci');
  t.is(valueAfter(args, '-cpu')[0], 'host');
  const cmdline = kernelCommandLine('virtio');
  t.regex(cmdline, /vfio_iommu_type1\.allow_unsafe_interrupts=1/);
  t.regex(cmdline, /iommufd\.allow_unsafe_interrupts=1/);
  t.notRegex(cmdline, /intel_iommu/);
});

test('the command line makes panics end QEMU and shows group messages on the console', (t) => {
  const cmdline = kernelCommandLine('intel', ['extra=1']);
  t.regex(cmdline, /panic=-1/);
  t.regex(cmdline, /dyndbg="func iommu_group_alloc \+p; func iommu_group_release \+p"/);
  t.regex(cmdline, /ignore_loglevel/);
  t.true(cmdline.endsWith('extra=1'));
});

test('the forwarded SSH port is read from info usernet', (t) => {
  const info = [
    'Hub -1 (net0):',
    '  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ',
    '  TCP[HOST_FORWARD]  13       127.0.0.1 46651       10.0.2.15    22     0     0',
  ].join('\r\n');
  t.is(parseForwardedPort(info), 46651);
  t.is(parseForwardedPort('Hub -1 (net0):\r\n'), undefined);
});

test('shared boots merge topologies without duplicate ids', (t) => {
  const merged = mergeTopologies([
    { devices: [rootPort('rp1', 1)], cmdline: ['a=1'] },
    { devices: [rootPort('rp1', 1), rootPort('rp2', 2)], cmdline: ['a=1', 'b=2'] },
  ]);
  t.deepEqual(merged.devices.map((device) => device.id), ['rp1', 'rp2']);
  t.deepEqual(merged.cmdline, ['a=1', 'b=2']);
});

test('a qdev id is found behind a root port in query-pci output', (t) => {
  const reply = [
    {
      bus: 0,
      devices: [
        { bus: 0, slot: 1, function: 0, qdev_id: 'rp1', pci_bridge: { devices: [{ bus: 1, slot: 0, function: 0, qdev_id: 'edu1' }] } },
        { bus: 0, slot: 2, function: 0, qdev_id: '' },
      ],
    },
  ];
  t.is(bdfOfQdevId(reply, 'edu1'), '0000:01:00.0');
  t.is(bdfOfQdevId(reply, 'rp1'), '0000:00:01.0');
  t.is(bdfOfQdevId(reply, 'nope'), undefined);
});

test('a TCG guest is told the host TSC frequency when /proc/cpuinfo gives it (a VM host), so it does not measure it on a loaded host', async (t) => {
  // The first processor of this project's 2-core AMD EPYC VM host.
  const cpuinfo = await readFile(new URL('../fixtures/machine/cpuinfo-amd-epyc-vm.txt', import.meta.url), 'utf8');
  t.is(hostTscKhz(cpuinfo), 2596120);
  // A bare-metal host with frequency scaling: "cpu MHz" is the core's clock, not the TSC's.
  t.is(hostTscKhz(cpuinfo.replace(/ tsc_known_freq\b/, '').replace(/ hypervisor\b/, '')), undefined);
  t.is(hostTscKhz(cpuinfo.replace(/ constant_tsc\b/, '')), undefined);
  t.is(hostTscKhz(''), undefined);
  const appended = (accel: 'tcg' | 'kvm') => valueAfter(qemuArgs({ ...spec, iommu: 'intel', accel, tscKhz: 2596120 }), '-append')[0] ?? '';
  t.regex(appended('tcg'), / tsc_early_khz=2596120\b/);
  t.notRegex(appended('kvm'), /tsc_early_khz/, 'KVM tells the guest its TSC itself');
  t.notRegex(kernelCommandLine('intel'), /tsc_early_khz/);
});

/** QEMU's own reading of an option string: split at single commas, `,,` is a literal comma. */
function qemuOptions(option: string): string[] {
  const parts: string[] = [];
  let current = '';
  for (let i = 0; i < option.length; i++) {
    if (option[i] !== ',') current += option[i];
    else if (option[i + 1] === ',') {
      current += ',';
      i++;
    } else {
      parts.push(current);
      current = '';
    }
  }
  return [...parts, current];
}

test('a comma in a path stays inside its value: no option is added to the chardev, the QMP socket or the trace', (t) => {
  const crafted = '/tmp/a,server=on,b';
  const args = qemuArgs({ ...spec, iommu: 'intel', consoleLog: `${crafted}/console.log`, qmpSocket: `${crafted}/qmp.sock` });
  t.deepEqual(qemuOptions(valueAfter(args, '-chardev')[0] ?? ''), ['file', 'id=console', `path=${crafted}/console.log`]);
  t.deepEqual(qemuOptions(valueAfter(args, '-qmp')[0] ?? ''), [`unix:${crafted}/qmp.sock`, 'server=on', 'wait=off']);
  t.deepEqual(qemuOptions(valueAfter(args, '-trace').at(-1) ?? ''), [`file=${crafted}/viommu-trace.log`]);
  // Taken whole by QEMU: a doubled comma there would name another file.
  t.deepEqual(valueAfter(args, '-kernel'), ['/k/bzImage']);
  const withCommaKernel = qemuArgs({ ...spec, iommu: 'intel', kernel: '/k,x/bzImage', initrd: '/i,x/initramfs.gz' });
  t.deepEqual([...valueAfter(withCommaKernel, '-kernel'), ...valueAfter(withCommaKernel, '-initrd')], ['/k,x/bzImage', '/i,x/initramfs.gz']);
});

test('a comma in a device property or id stays inside its value', (t) => {
  const args = qemuArgs({ ...spec, iommu: 'none', topology: { devices: [{ driver: 'edu', id: 'e,bus=x', props: { bus: 'rp1,addr=5' } }] } });
  t.deepEqual(qemuOptions(valueAfter(args, '-device').at(-1) ?? ''), ['edu', 'bus=rp1,addr=5', 'id=e,bus=x']);
});

const qemuInstalled = spawnSync(qemuBinary, ['--version']).status === 0;

// The real QEMU reads the escaped strings as the paths they name (no kernel is booted: -machine none, -S).
(qemuInstalled ? test : test.skip)('QEMU itself opens a console file, a QMP socket and a trace file whose paths hold commas', async (t) => {
  t.timeout(30_000);
  const root = await mkdtemp(path.join(os.tmpdir(), 'qemu-comma-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const dir = path.join(root, 'a,server=on,b');
  await mkdir(dir);
  const args = qemuArgs({ ...spec, iommu: 'intel', consoleLog: path.join(dir, 'console.log'), qmpSocket: path.join(dir, 'qmp.sock') });
  const pick = (flag: string) => args.flatMap((value, i) => (args[i - 1] === flag ? [flag, value] : []));
  const qemu = execa(qemuBinary, ['-machine', 'none', '-S', '-display', 'none', '-nodefaults', ...pick('-chardev'), ...pick('-qmp'), '-trace', args.filter((_, i) => args[i - 1] === '-trace').at(-1) ?? ''], {
    reject: false,
    all: true,
  });
  t.teardown(() => {
    qemu.kill('SIGKILL');
  });
  const socket = path.join(dir, 'qmp.sock');
  for (let waited = 0; !existsSync(socket) && qemu.exitCode === null && waited < 20_000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
  // Read while QEMU runs: it removes its socket when it ends.
  const made = (await readdir(dir)).sort();
  const beside = await readdir(root);
  qemu.kill('SIGTERM');
  const result = await qemu;
  t.deepEqual(made, ['console.log', 'qmp.sock', 'viommu-trace.log'], `QEMU said: ${result.all}`);
  // An option split out of a path would have made QEMU refuse to start, or open a path of its own.
  t.deepEqual(beside, ['a,server=on,b']);
  t.notRegex(result.all ?? '', /Invalid parameter|deprecated/);
});

test('amd: endpoints cold-plugged behind root ports for DMA go on pcie.0 (slot 0x10 + chassis, functions kept); the ports stay for hot-add, an endpoint without DMA stays to be hot-removed', (t) => {
  const moved = endpointsOnRootBus([
    { driver: 'pcie-root-port', id: 'rp-mf', props: { chassis: 6, slot: 6, bus: 'pcie.0' } },
    { driver: 'edu', id: 'edu-f0', props: { bus: 'rp-mf', addr: '0.0', multifunction: true }, dma: true },
    { driver: 'edu', id: 'edu-f1', props: { bus: 'rp-mf', addr: '0.1', multifunction: true }, dma: true },
    { driver: 'pcie-root-port', id: 'rp-vfio', props: { chassis: 1, slot: 1, bus: 'pcie.0' } },
    { driver: 'edu', id: 'edu-vfio', props: { bus: 'rp-vfio' }, dma: true },
    { driver: 'pcie-root-port', id: 'rp-busy', props: { chassis: 7, slot: 7, bus: 'pcie.0' } },
    { driver: 'edu', id: 'edu-busy', props: { bus: 'rp-busy' } },
    { driver: 'pcie-pci-bridge', id: 'br', props: { bus: 'pcie.0' } },
    { driver: 'edu', id: 'edu-br', props: { bus: 'br', addr: '1.0' } },
  ]);
  t.deepEqual(
    moved.map((device) => [device.id, device.props?.bus, device.props?.addr]),
    [
      ['rp-mf', 'pcie.0', undefined],
      ['edu-f0', 'pcie.0', '16.0'],
      ['edu-f1', 'pcie.0', '16.1'],
      ['rp-vfio', 'pcie.0', undefined],
      ['edu-vfio', 'pcie.0', '11.0'],
      ['rp-busy', 'pcie.0', undefined],
      ['edu-busy', 'rp-busy', undefined],
      ['br', 'pcie.0', undefined],
      ['edu-br', 'br', '1.0'],
    ],
  );
  const args = qemuArgs({ ...spec, iommu: 'amd', topology: { devices: [rootPort('rp-vfio', 1), eduDevice('edu-vfio', 'rp-vfio', { dma: true })] } });
  t.true(args.includes('amd-iommu,intremap=on'));
  t.true(args.includes('q35,kernel-irqchip=split'));
  t.true(args.includes('edu,bus=pcie.0,addr=11.0,id=edu-vfio'), args.join(' '));
  // No ledger reads QEMU's amd-iommu trace: none is asked for.
  t.false(args.some((arg) => arg.startsWith('file=') || arg.startsWith('enable=')));
});

test('shell --gdb: QEMU gdbstub on the loopback address only, and none unless asked', (t) => {
  t.deepEqual(valueAfter(qemuArgs({ ...spec, iommu: 'intel', gdbPort: 40123 }), '-gdb'), ['tcp:127.0.0.1:40123']);
  t.false(qemuArgs({ ...spec, iommu: 'intel' }).includes('-gdb'));
});
