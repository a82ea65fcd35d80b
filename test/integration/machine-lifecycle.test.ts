// The accelerator and QEMU's lifetime, on real QEMU: a KVM boot that cannot run
// falls back to TCG, the KVM path runs where KVM really works, and a harness
// killed with -9 leaves no QEMU and its folder is swept by the next start.
import { copyFile, mkdtemp, readdir, readFile, rm, utimes } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { chooseAccel } from '../../harness/machine/accel.ts';
import { machineDirPrefix } from '../../harness/machine/leftovers.ts';
import { Machine } from '../../harness/machine/machine.ts';
import type { Progress } from '../../harness/log.ts';
import type { HarnessResult } from '../../harness/report/result.ts';
import { prepareKernel } from '../../harness/run.ts';
import { runHarness } from '../../harness/run.ts';
import type { Scenario } from '../../harness/scenario/scenario.ts';
import { scenarioByName } from '../../scenarios/index.ts';
import { cli, progress, startRunUntilGuestUp, summary } from './helpers.ts';

// The kernel every test here boots; the probe boots it under KVM once, so
// "KVM works" below means this kernel printed under KVM, not that firmware did.
const prepared = await prepareKernel({ patches: [], kconfigs: [] }, progress);
const kvmSubject = { kernel: prepared.kernel.artifacts.bzImage };
const probed = await chooseAccel('auto', {}, kvmSubject);
const kernelRanUnderKvm = probed.accel === 'kvm';

function recordingProgress(): Progress & { lines: string[] } {
  const lines: string[] = [];
  return { lines, step: (line) => lines.push(line), detail() {}, warn: (line) => lines.push(`warning: ${line}`) };
}

test.serial('a KVM boot the probe chose is kept only if the guest answers under KVM, else retried on TCG and says so', async (t) => {
  t.timeout(20 * 60_000);
  const runDir = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-test-run-'));
  const recorded = recordingProgress();
  // As if the probe had said yes, whatever it said: the boot itself must find out.
  const machine = await Machine.boot({
    iommu: 'intel',
    accel: 'kvm',
    accelAutomatic: true,
    bzImage: prepared.kernel.artifacts.bzImage,
    initrd: prepared.image.path,
    topology: { devices: [] },
    runDir,
    privateKey: prepared.keys.clientPrivateKey,
    hostKeyBlob: prepared.keys.hostKeyBlob,
    bootTimeoutMs: 60_000,
    progress: recorded,
  });
  try {
    const uname = await machine.shell.run(['uname', '-r'], 30_000);
    t.is(uname.exitCode, 0);
    const fellBack = recorded.lines.some((line) => /fell back to TCG; retrying this boot on TCG/.test(line));
    // The expectation comes from what this boot did: a guest that answered SSH on KVM ran there.
    t.log(`the boot ended on ${machine.accel}; the probe had said ${probed.accel} (${probed.reason})`);
    if (machine.accel === 'kvm') {
      t.false(fellBack, recorded.lines.join('\n'));
    } else {
      t.true(fellBack, recorded.lines.join('\n'));
      // Later boots of the process go straight to TCG, with the reason.
      const later = await chooseAccel('auto', {}, kvmSubject);
      t.is(later.accel, 'tcg');
      t.regex(later.reason, /fell back to TCG/);
      // The probe, which boots this same kernel, must not have claimed KVM runs it.
      t.is(probed.accel, 'tcg', `the probe said KVM runs this kernel, yet its boot fell back: ${probed.reason}`);
    }
  } finally {
    await machine.stop();
    await rm(runDir, { recursive: true, force: true });
  }
});

test.serial('the KVM answer is remembered per host boot, QEMU and kernel: a second process boots nothing under KVM, a new kernel asks again', async (t) => {
  t.timeout(5 * 60_000);
  const cache = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-accel-'));
  t.teardown(() => rm(cache, { recursive: true, force: true }));
  const kernel = path.join(cache, 'bzImage');
  await copyFile(prepared.kernel.artifacts.bzImage, kernel);
  const ask = async () => {
    const script = `const { chooseAccel } = await import(${JSON.stringify(new URL('../../harness/machine/accel.ts', import.meta.url).href)}); const { cacheLayout } = await import(${JSON.stringify(new URL('../../harness/cache.ts', import.meta.url).href)}); console.log(JSON.stringify(await chooseAccel('auto', {}, { kernel: ${JSON.stringify(kernel)}, layout: cacheLayout(${JSON.stringify(cache)}) })));`;
    const { stdout } = await execa('node', ['--import', 'tsx', '--input-type=module', '-e', script], { env: { IOMMU_HARNESS_ACCEL: '' } });
    return JSON.parse(stdout) as { accel: string; reason: string };
  };
  const first = await ask();
  t.notRegex(first.reason, /remembered/, first.reason);
  t.is(first.accel, probed.accel, 'the same kernel gets the same answer');
  const second = await ask();
  t.is(second.accel, first.accel);
  t.regex(second.reason, /remembered from/, second.reason);
  // A new build of the kernel is a new image: KVM is asked again.
  await utimes(kernel, new Date(), new Date(Date.now() + 5000));
  const third = await ask();
  t.notRegex(third.reason, /remembered/, third.reason);
  // Without a kernel (doctor before any build): only a kernel's answer counts, never firmware's.
  const { stdout } = await execa('node', ['--import', 'tsx', '--input-type=module', '-e', `const { chooseAccel } = await import(${JSON.stringify(new URL('../../harness/machine/accel.ts', import.meta.url).href)}); console.log(JSON.stringify(await chooseAccel('auto', {})));`], { env: { IOMMU_HARNESS_CACHE: path.join(cache, 'empty'), IOMMU_HARNESS_ACCEL: '' } });
  const unknown = JSON.parse(stdout) as { accel: string; reason: string };
  t.is(unknown.accel, 'tcg');
  t.regex(unknown.reason, /no kernel has been booted under it/);
});

(kernelRanUnderKvm ? test.serial : test.skip)(`the KVM path (-cpu host, split irqchip) passes a scenario${kernelRanUnderKvm ? '' : ` [skipped: this kernel did not run under KVM here: ${probed.reason}]`}`, async (t) => {
  t.timeout(20 * 60_000);
  const result = await runHarness({ patches: [], kconfigs: [], iommus: ['intel'], scenarios: [scenarioByName('vfio-bind-unbind')!], accel: 'kvm', progress });
  t.is(result.verdict, 'pass', summary(result));
  t.true(result.runs.every((run) => run.accel === 'kvm'));
});

async function machineDirsOf(pid: number, tmpdir = os.tmpdir()): Promise<string[]> {
  const dirs: string[] = [];
  for (const name of (await readdir(tmpdir)).filter((candidate) => candidate.startsWith(machineDirPrefix))) {
    const owner = await readFile(path.join(tmpdir, name, 'owner.json'), 'utf8').catch(() => '');
    if (owner.includes(`"pid":${pid},`) || owner.includes(`"pid":${pid}}`)) dirs.push(path.join(tmpdir, name));
  }
  return dirs;
}

test.serial('kill -9 of a running run leaves no QEMU, and the next start removes what it left', async (t) => {
  t.timeout(20 * 60_000);
  // A private TMPDIR for the killed run and the next one: any harness start
  // sweeps dead runs' folders, and ava runs other files' harnesses meanwhile.
  const tmpdir = await mkdtemp(path.join(os.tmpdir(), 'kill9-test-'));
  t.teardown(() => rm(tmpdir, { recursive: true, force: true }));
  const env = { TMPDIR: tmpdir };
  const { child, runDir } = await startRunUntilGuestUp(['--iommu', 'intel', '--scenario', 'unplug-while-open'], undefined, env);
  const qemu = await execa('pgrep', ['-f', `qemu-system.*${runDir}`], { reject: false });
  t.not(qemu.stdout.trim(), '', 'QEMU runs before the kill');
  const left = await machineDirsOf(child.pid!, tmpdir);
  t.true(left.length > 0, 'the machine has its private folder');
  child.kill('SIGKILL');
  await child;
  // The parent-death signal kills QEMU at once; give the kernel a moment to deliver it.
  let survivors = '';
  for (let tries = 0; tries < 20; tries++) {
    survivors = (await execa('pgrep', ['-f', `qemu-system.*${runDir}`], { reject: false })).stdout.trim();
    if (!survivors) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  t.is(survivors, '', 'QEMU outlived the harness killed with -9');

  // The next start names and removes the dead run's folder.
  const next = await execa('node', [cli, 'run', '--iommu', 'none', '--scenario', 'vfio-noiommu'], { reject: false, all: true, env });
  t.is(next.exitCode, 0, next.all);
  for (const dir of left) t.regex(next.stderr, new RegExp(`cleaned up: removed ${dir} of dead run ${child.pid}`));
  t.deepEqual(await machineDirsOf(child.pid!, tmpdir), []);
});

const full = process.env.IOMMU_HARNESS_FULL ? test.serial : test.serial.skip;

/** The PID of the QEMU whose console is in `folder`, waiting up to a minute for it to start. */
async function qemuOf(folder: string): Promise<number> {
  for (let tries = 0; tries < 600; tries++) {
    const found = (await execa('pgrep', ['-f', `qemu-system.*${folder}/console.log`], { reject: false })).stdout.trim().split('\n')[0];
    if (found) return Number(found);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`no QEMU for ${folder}`);
}

full('a QEMU that hangs mid-scenario: the rest of the boot runs again in a new one, each run saying why, and no QEMU is left', async (t) => {
  t.timeout(20 * 60_000);
  const json = path.join(await mkdtemp(path.join(os.tmpdir(), 'hung-qemu-')), 'result.json');
  t.teardown(() => rm(path.dirname(json), { recursive: true, force: true }));
  const { child, runDir } = await startRunUntilGuestUp(['--iommu', 'intel', '--scenario', 'vfio-bind-unbind', '--scenario', 'remove-rescan', '--cycles', '5', '--json', json]);
  // As the rare TCG hang after a rescan does: QEMU stops, vCPUs and main loop alike.
  const qemu = await qemuOf(`${runDir}/intel`);
  await new Promise((resolve) => setTimeout(resolve, 3000));
  process.kill(qemu, 'SIGSTOP');
  const run = await child;
  t.is(run.exitCode, 0, run.all);
  t.regex(run.all ?? '', /warning: intel: vfio-bind-unbind: .*\(QEMU itself no longer answered QMP: the emulator hung, not the kernel under test\)/);
  t.regex(run.all ?? '', /warning: intel: the guest was lost in vfio-bind-unbind( cycle \d)? with nothing found; the rest of the boot runs again in a new one/);
  const result = JSON.parse(await readFile(json, 'utf8')) as HarnessResult;
  for (const name of ['vfio-bind-unbind', 'remove-rescan']) {
    const retried = result.runs.find((candidate) => candidate.scenario === name);
    t.is(retried?.verdict, 'pass', name);
    t.regex(retried?.retried ?? '', /^the first boot \(\S+\/intel\/console\.log\) lost its guest in vfio-bind-unbind.*no longer answered QMP/, name);
    t.regex(retried?.logs.console ?? '', /\/intel-retry\/console\.log$/);
  }
  t.is((await execa('pgrep', ['-f', `qemu-system.*${runDir}`], { reject: false })).stdout.trim(), '', 'the stopped QEMU was reaped');
});

full('a QEMU killed mid-scenario, and again in the new boot: an error saying QEMU ended and how, the rest of the boot not run', async (t) => {
  t.timeout(20 * 60_000);
  const { child, runDir } = await startRunUntilGuestUp(['--iommu', 'intel', '--scenario', 'vfio-bind-unbind', '--scenario', 'remove-rescan', '--cycles', '30']);
  // The next "guest up" is the new boot's (the first boot's came before this listener).
  const retryUp = new Promise<void>((resolve) => child.stderr?.on('data', (chunk: Buffer) => /guest up/.test(chunk.toString()) && resolve()));
  for (const folder of ['intel', 'intel-retry']) {
    if (folder === 'intel-retry') t.true(await Promise.race([retryUp.then(() => true), child.then(() => false)]), 'the run ended without booting again');
    const qemu = await qemuOf(`${runDir}/${folder}`);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    process.kill(qemu, 'SIGKILL');
  }
  const run = await child;
  t.is(run.exitCode, 3, run.all);
  t.regex(run.all ?? '', /intel\/vfio-bind-unbind: error: .*\(QEMU itself had ended, signal SIGKILL, saying nothing: the emulator, not the kernel under test\)/);
  t.regex(run.all ?? '', /intel\/vfio-bind-unbind: note: run again in a new boot: the first boot \(\S+\/intel\/console\.log\) lost its guest in vfio-bind-unbind.*signal SIGKILL/);
  t.regex(run.all ?? '', /intel\/remove-rescan: error: not run: the machine had ended \(signal SIGKILL\)/);
});

/** Stops the guest's sshd: the guest runs on, but answers nobody, as a guest lost after a rescan does. */
const sshdFrozen: Scenario = {
  name: 'sshd-frozen',
  proves: 'a guest that stops answering SSH is an error that says where its vCPUs were',
  iommus: ['intel'],
  topology: { devices: [] },
  async run(guest) {
    await guest.mark('freeze');
    await guest.run(['sh', '-c', 'kill -STOP $(pidof dropbear)'], 5000);
  },
};

full('a guest that stops answering SSH while QEMU runs: the error says where each vCPU was, lost-guest.txt holds registers and stacks', async (t) => {
  t.timeout(20 * 60_000);
  const result = await runHarness({ patches: [], kconfigs: [], iommus: ['intel'], scenarios: [sshdFrozen, scenarioByName('vfio-bind-unbind')!], progress });
  const frozen = result.runs.find((run) => run.scenario === 'sshd-frozen');
  t.is(frozen?.verdict, 'error', summary(result));
  const lost = /when it was lost: vCPU 0 (?:halted|stuck|running) in (?:user space|[A-Za-z_][\w.]*\+0x[0-9a-f]+), interrupts (?:on|off)(?:, vector [\d ]+ (?:in service|pending))*; vCPU 1 [^;]+; registers and stacks in (\S+\/lost-guest\.txt)\)/.exec(frozen?.error ?? '');
  t.truthy(lost, frozen?.error);
  const record = await readFile(lost?.[1] ?? '', 'utf8');
  t.regex(record, /^summary: vCPU 0 /);
  t.regex(record, /--- info registers -a, sample 3 ---\nCPU#0\nRAX=/);
  t.regex(record, /vCPU \d stack, words pointing into kernel text[^\n]*\n {2}\? [A-Za-z_]/);
  t.regex(record, /--- info lapic 0 ---\ndumping local APIC state for CPU 0/);
  t.regex(record, /--- info pic ---\nioapic0: /);
  for (const [queue, name] of [[0, 'receive'], [1, 'transmit']] as const) {
    t.regex(record, new RegExp(`--- the harness NIC's ${name} queue \\(virtio-net queue ${queue}\\) ---\n/machine/peripheral/harness-nic/virtio-backend:\n\\s+device_name:\\s+virtio-net\n\\s+queue_index:\\s+${queue}\n`));
  }
  // Lost again in the new boot: the loss is the scenario's own doing, and stays an error.
  t.regex(frozen?.retried ?? '', /^the first boot \(\S+\/intel\/console\.log\) lost its guest in sshd-frozen: .*when it was lost: vCPU 0 /);
  t.regex(frozen?.logs.console ?? '', /\/intel-retry\/console\.log$/);
  const after = result.runs.find((run) => run.scenario === 'vfio-bind-unbind');
  t.regex(after?.error ?? '', /not run: the guest stopped answering SSH after sshd-frozen\/freeze/);
});
