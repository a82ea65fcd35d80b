// What the guest reads about its kernel in one round trip, parsed.
import test from 'ava';
import { execa } from 'execa';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { blockedTasksScript, blockingWaitMs, hungTaskReportedWithinMs, hungTaskTimeoutSecs, parseBlockedTasks } from '../../harness/scenario/hang.ts';
import { parseSysfsGroups, sysfsGroupsScript } from '../../harness/scenario/sysfs-groups.ts';

test('sysfs groups: every group with its devices, an emptied group with none', (t) => {
  const output = 'group 0 0000:00:00.0\ngroup 4 0000:02:00.0 0000:02:00.1\ngroup 7\n';
  t.deepEqual(parseSysfsGroups(output), { 0: ['0000:00:00.0'], 4: ['0000:02:00.0', '0000:02:00.1'], 7: [] });
});

test('sysfs groups: no IOMMU, no groups; stray lines are ignored', (t) => {
  t.deepEqual(parseSysfsGroups(''), {});
  t.deepEqual(parseSysfsGroups('sh: warning\ngroup x 0000:00:00.0\n'), {});
});

test('the sysfs script lists a real tree the way the parser reads it, empty groups included', async (t) => {
  // The guest runs it in busybox sh; any POSIX sh reads the same. A copy of the
  // layout (devices/ holds symlinks in sysfs) under a temporary root.
  const root = await mkdtemp(path.join(os.tmpdir(), 'sysfs-groups-'));
  try {
    const groups = path.join(root, 'sys/kernel/iommu_groups');
    await mkdir(path.join(groups, '3/devices'), { recursive: true });
    await mkdir(path.join(groups, '12/devices'), { recursive: true });
    await writeFile(path.join(groups, '3/devices/0000:01:00.0'), '');
    await writeFile(path.join(groups, '3/devices/0000:01:00.1'), '');
    const script = sysfsGroupsScript.replace('/sys/kernel/iommu_groups', groups);
    const { stdout } = await execa('sh', ['-c', script]);
    t.deepEqual(parseSysfsGroups(stdout), { 3: ['0000:01:00.0', '0000:01:00.1'], 12: [] });
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('blocked tasks: pid and name of each task in D state', (t) => {
  t.deepEqual(parseBlockedTasks('69 sh\n112 kworker/u8:2\n\n'), [
    { pid: 69, name: 'sh' },
    { pid: 112, name: 'kworker/u8:2' },
  ]);
  t.deepEqual(parseBlockedTasks(''), []);
});

test('the blocked-task script finds the tasks in D state in a /proc tree, by pid and name', async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'blocked-tasks-'));
  try {
    const task = async (pid: number, name: string, state: string) => {
      await mkdir(path.join(root, 'proc', String(pid)), { recursive: true });
      await writeFile(path.join(root, 'proc', String(pid), 'status'), `Name:\t${name}\nUmask:\t0022\nState:\t${state}\nTgid:\t${pid}\n`);
    };
    await task(1, 'init', 'S (sleeping)');
    await task(69, 'sh', 'D (disk sleep)');
    await task(112, 'kworker/u8:2', 'D (disk sleep)');
    await task(113, 'dropbear', 'R (running)');
    const script = blockedTasksScript.replaceAll('/proc/', `${root}/proc/`);
    const { stdout } = await execa('sh', ['-c', script]);
    const byPid = parseBlockedTasks(stdout).sort((a, b) => a.pid - b.pid);
    t.deepEqual(byPid, [
      { pid: 69, name: 'sh' },
      { pid: 112, name: 'kworker/u8:2' },
    ]);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('a blocked step waits longer than the hung-task detector takes to report it', (t) => {
  // khungtaskd reports a task between one and two timeouts after it blocked.
  t.true(hungTaskReportedWithinMs >= 2 * hungTaskTimeoutSecs * 1000);
  t.true(blockingWaitMs >= hungTaskReportedWithinMs);
  // The guest command timeout (60 s by default) covers it as well.
  t.true(60_000 > hungTaskReportedWithinMs);
});
