// What a dead run leaves is found by its owner's pid and start time and
// removed; what a live run owns is never touched. The accelerator can be forced.
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { HarnessError } from '../../harness/errors.ts';
import { chooseAccel } from '../../harness/machine/accel.ts';
import { claimMachineDir, machineDirPrefix, sweepDeadMachines, sweepStaging } from '../../harness/machine/leftovers.ts';

/** The pid of a process that has already ended. */
async function deadPid(): Promise<number> {
  const child = execa('true');
  await child;
  return child.pid!;
}

test('a dead run\'s machine folder is removed, a live one\'s is kept', async (t) => {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-test-sweep-'));
  const live = path.join(tmp, `${machineDirPrefix}live`);
  const dead = path.join(tmp, `${machineDirPrefix}dead`);
  const unowned = path.join(tmp, `${machineDirPrefix}being-set-up`);
  for (const dir of [live, dead, unowned]) await mkdir(dir);
  await claimMachineDir(live);
  const pid = await deadPid();
  await writeFile(path.join(dead, 'owner.json'), JSON.stringify({ pid }));
  const cleaned = await sweepDeadMachines(tmp);
  t.deepEqual(cleaned, [`removed ${dead} of dead run ${pid}`]);
  t.deepEqual((await readdir(tmp)).sort(), [path.basename(unowned), path.basename(live)].sort());
  await rm(tmp, { recursive: true, force: true });
});

test('a reused pid is not taken for the run that owned the folder', async (t) => {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-test-sweep-'));
  const dir = path.join(tmp, `${machineDirPrefix}reused`);
  await mkdir(dir);
  // This process's pid, but a start time it never had: the owner is gone.
  await writeFile(path.join(dir, 'owner.json'), JSON.stringify({ pid: process.pid, started: 1 }));
  t.deepEqual(await sweepDeadMachines(tmp), [`removed ${dir} of dead run ${process.pid}`]);
  await rm(tmp, { recursive: true, force: true });
});

test('staging entries of dead writers are removed, a live writer\'s are kept', async (t) => {
  const kernels = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-test-kernels-'));
  const pid = await deadPid();
  await mkdir(path.join(kernels, `abc.tmp-${pid}`));
  await mkdir(path.join(kernels, `def.tmp-${process.pid}`));
  await mkdir(path.join(kernels, 'finished'));
  t.deepEqual(await sweepStaging([kernels]), [`removed ${path.join(kernels, `abc.tmp-${pid}`)} of dead run ${pid}`]);
  t.deepEqual((await readdir(kernels)).sort(), [`def.tmp-${process.pid}`, 'finished']);
  await rm(kernels, { recursive: true, force: true });
});

test('IOMMU_HARNESS_ACCEL forces the accelerator; --accel wins over it; a bad value is a usage error', async (t) => {
  t.deepEqual(await chooseAccel('auto', { IOMMU_HARNESS_ACCEL: 'tcg' }), { accel: 'tcg', reason: 'IOMMU_HARNESS_ACCEL=tcg', automatic: false });
  t.deepEqual(await chooseAccel('kvm', { IOMMU_HARNESS_ACCEL: 'tcg' }), { accel: 'kvm', reason: '--accel kvm', automatic: false });
  const error = t.throws(() => chooseAccel('auto', { IOMMU_HARNESS_ACCEL: 'fast' }));
  t.true(error instanceof HarnessError && error.kind === 'usage');
});
