// Evaluates (does not ship) a fresh machine per scenario from a snapshot: boot
// once per vIOMMU, save the running guest with QEMU's migration to a file,
// then start QEMU again from that file and time how soon SSH answers and a
// scenario's first steps run. Prints the numbers and what blocked, per vIOMMU.
// Found with it (QEMU 7.2): the edu test device has no migration state, so its
// PCI config space (BARs, command register) comes back reset and the guest
// reads 0 from it; the scenarios' cold-plugged devices cannot be restored.
//   tsx scripts/snapshot-eval.ts [--restores 5]
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { execa, type ResultPromise } from 'execa';
import { cacheLayout } from '../harness/cache.ts';
import { createProgress } from '../harness/log.ts';
import { chooseAccel } from '../harness/machine/accel.ts';
import { parseForwardedPort, qemuArgs } from '../harness/machine/qemu-args.ts';
import { QmpClient } from '../harness/machine/qmp.ts';
import { installReaper, register } from '../harness/machine/reaper.ts';
import { GuestShell } from '../harness/machine/ssh.ts';
import type { IommuModel } from '../harness/machine/topology.ts';
import { prepareKernel } from '../harness/run.ts';
import { vfioBindUnbind } from '../scenarios/vfio-bind-unbind.ts';

installReaper();
const { values } = parseArgs({ options: { restores: { type: 'string', default: '5' } } });
const restores = Number(values.restores);
const progress = createProgress(process.stderr);
const prepared = await prepareKernel({ patches: [], kconfigs: [] }, progress, cacheLayout());
const accel = (await chooseAccel('auto', process.env, { kernel: prepared.kernel.artifacts.bzImage })).accel;
const median = (samples: number[]) => [...samples].sort((a, b) => a - b)[Math.floor((samples.length - 1) / 2)] ?? NaN;

interface Qemu {
  child: ResultPromise;
  qmp: QmpClient;
  port: number;
}

async function startQemu(iommu: IommuModel, dir: string, extra: string[]): Promise<Qemu> {
  const qmpSocket = path.join(dir, `qmp-${Date.now()}.sock`);
  const args = qemuArgs({
    iommu,
    accel,
    kernel: prepared.kernel.artifacts.bzImage,
    initrd: prepared.image.path,
    topology: vfioBindUnbind.topology,
    consoleLog: path.join(dir, 'console.log'),
    qmpSocket,
  });
  const child = execa('qemu-system-x86_64', [...args, ...extra], { reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'pipe', cleanup: true });
  register({ reap: () => child.kill('SIGKILL') });
  const qmp = await QmpClient.connect(qmpSocket, { timeoutMs: 15_000 });
  const port = parseForwardedPort(await qmp.hmp('info usernet'));
  if (!port) throw new Error('no forwarded port');
  return { child, qmp, port };
}

async function sshWhenReady(port: number, deadline: number): Promise<GuestShell> {
  for (;;) {
    try {
      return await GuestShell.connect({ port, privateKey: prepared.keys.clientPrivateKey, hostKeyBlob: prepared.keys.hostKeyBlob }, 5000);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

async function waitMigration(qmp: QmpClient, deadline: number): Promise<string> {
  for (;;) {
    const status = await qmp.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
    if (status.status === 'completed' || status.status === 'failed') return status.status === 'failed' ? `failed: ${status['error-desc'] ?? ''}` : 'completed';
    if (Date.now() > deadline) return `timed out (${status.status})`;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function stop(qemu: Qemu): Promise<void> {
  await qemu.qmp.execute('quit').catch(() => undefined);
  qemu.qmp.close();
  await qemu.child;
}

for (const iommu of ['intel', 'virtio'] as const) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-snapshot-'));
  try {
    const snapshot = path.join(dir, 'guest.snapshot');
    // Boot once, the way the harness does, and reach SSH.
    let started = performance.now();
    const booted = await startQemu(iommu, dir, []);
    while (!(await readFile(path.join(dir, 'console.log'), 'utf8').catch(() => '')).includes('iommu-harness: guest ready')) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const shell = await sshWhenReady(booted.port, Date.now() + 60_000);
    await shell.run(['true'], 10_000);
    const bootSeconds = (performance.now() - started) / 1000;
    shell.close();
    // Save: stop the guest, migrate its whole state into a file.
    started = performance.now();
    await booted.qmp.execute('stop');
    await booted.qmp.execute('migrate', { uri: `exec:cat > ${snapshot}` });
    const saved = await waitMigration(booted.qmp, Date.now() + 60_000);
    const saveSeconds = (performance.now() - started) / 1000;
    await stop(booted);
    const size = (await stat(snapshot).catch(() => undefined))?.size ?? 0;
    progress.step(`${iommu}: boot ${bootSeconds.toFixed(2)} s; save ${saved} in ${saveSeconds.toFixed(2)} s, ${(size / 1e6).toFixed(0)} MB`);
    if (saved !== 'completed') continue;

    const restoreToSsh: number[] = [];
    const restoreToFirstStep: number[] = [];
    const problems: string[] = [];
    for (let i = 0; i < restores; i++) {
      started = performance.now();
      const restored = await startQemu(iommu, dir, ['-incoming', `exec:cat ${snapshot}`]);
      try {
        const loaded = await waitMigration(restored.qmp, Date.now() + 60_000);
        if (loaded !== 'completed') {
          problems.push(`restore ${loaded}`);
          continue;
        }
        await restored.qmp.execute('cont');
        // slirp's connection table came with the snapshot; the forward is new, so is the TCP session.
        const again = await sshWhenReady(restored.port, Date.now() + 30_000);
        await again.run(['true'], 10_000);
        restoreToSsh.push((performance.now() - started) / 1000);
        // A scenario's first steps on the restored machine: bind edu to vfio-pci, open it, unbind.
        const script =
          'for d in /sys/bus/pci/devices/*; do [ "$(cat $d/device)" = 0x11e8 ] && b=${d##*/}; done; ' +
          'echo vfio-pci > /sys/bus/pci/devices/$b/driver_override && echo $b > /sys/bus/pci/drivers_probe && vfio-helper container $b --dma && echo $b > /sys/bus/pci/drivers/vfio-pci/unbind';
        const step = await again.run(['sh', '-c', script], 60_000);
        if (step.exitCode !== 0) problems.push(`the first steps failed after a restore: ${(step.stderr || step.stdout).trim().split('\n').pop()}`);
        else restoreToFirstStep.push((performance.now() - started) / 1000);
        const dmesg = await again.run(['dmesg'], 10_000);
        const bad = dmesg.stdout.split('\n').filter((line) => /WARNING:|BUG:|Call Trace|timed out|DMAR: .*fault|fault from EP/.test(line));
        if (bad.length) problems.push(`kernel after a restore: ${bad.slice(0, 2).join(' | ')}`);
        again.close();
      } finally {
        await stop(restored);
      }
    }
    process.stdout.write(
      `${iommu}: boot to SSH ${bootSeconds.toFixed(2)} s; snapshot ${(size / 1e6).toFixed(0)} MB saved in ${saveSeconds.toFixed(2)} s; ` +
        `restore to SSH median ${median(restoreToSsh).toFixed(2)} s (${restoreToSsh.map((s) => s.toFixed(2)).join(', ')}); ` +
        `restore to bind+DMA+unbind done ${median(restoreToFirstStep).toFixed(2)} s; ${problems.length ? `problems: ${[...new Set(problems)].join('; ')}` : 'no problems'}\n`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
