// The guest's network watcher (images/net-watch.sh), run by busybox's sh as in
// the guest, against a fake sysfs queue and a fake `ip` that records its calls.
// busybox's sh prefers its own `ip` applet to PATH, so the fake is passed by
// path, and the watcher runs in a network namespace of its own: a slip can
// never take the host's link down.
import test from 'ava';
import { execa } from 'execa';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const script = fileURLToPath(new URL('../../images/net-watch.sh', import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function watcher(t: { teardown: (fn: () => Promise<void>) => void }, interval = '0.1') {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'net-watch-'));
  const queue = path.join(dir, 'eth0', 'queues', 'tx-0');
  await mkdir(path.join(queue, 'byte_queue_limits'), { recursive: true });
  const set = async (inflight: number, timeouts: number) => {
    await writeFile(path.join(queue, 'byte_queue_limits', 'inflight'), `${inflight}\n`);
    await writeFile(path.join(queue, 'tx_timeout'), `${timeouts}\n`);
  };
  await set(0, 0);
  const bin = path.join(dir, 'bin');
  await mkdir(bin);
  await writeFile(path.join(bin, 'ip'), `#!/bin/sh\necho "ip $*" >> ${path.join(dir, 'calls')}\n`);
  await chmod(path.join(bin, 'ip'), 0o755);
  const child = execa('unshare', ['--net', 'busybox', 'sh', script, interval], {
    reject: false,
    env: { PATH: '/usr/bin:/bin', NET_WATCH_SYSFS: path.join(dir, 'eth0'), NET_WATCH_KMSG: path.join(dir, 'kmsg'), NET_WATCH_IP: path.join(bin, 'ip') },
    extendEnv: false,
  });
  t.teardown(async () => {
    child.kill('SIGKILL');
    await child;
    await rm(dir, { recursive: true, force: true });
  });
  const calls = async () => (await readFile(path.join(dir, 'calls'), 'utf8').catch(() => '')).split('\n').filter(Boolean);
  const kmsg = async () => readFile(path.join(dir, 'kmsg'), 'utf8').catch(() => '');
  /** The watcher's calls once it made `count` of them; a loaded host may take a while (10 s at most). */
  const callsAtLeast = async (count: number) => {
    for (let waited = 0; (await calls()).length < count && waited < 10_000; waited += 100) await sleep(100);
    return calls();
  };
  return { set, calls, callsAtLeast, kmsg };
}

const repair = ['ip link set eth0 down', 'ip link set eth0 up', 'ip route add default via 10.0.2.2'];

test('bytes in flight that stop moving get the link taken down and up, once, and logged', async (t) => {
  const guest = await watcher(t);
  await guest.set(1514, 0);
  t.deepEqual((await guest.callsAtLeast(3)).slice(0, 3), repair);
  t.regex(await guest.kmsg(), /^iommu-harness: eth0 transmit stalled \(1514 bytes in flight, unchanged\): link down and up$/m);
  // The repair worked: nothing in flight, nothing more done.
  await guest.set(0, 0);
  // A second repair may have begun before the bytes moved again: let it finish first.
  await sleep(500);
  const after = (await guest.calls()).length;
  await sleep(600);
  t.is((await guest.calls()).length, after);
});

test('traffic that moves, or an idle queue, is left alone', async (t) => {
  // Checks every 0.5 s while the bytes change every 0.1 s: five changes between two checks, room for a loaded host.
  const guest = await watcher(t, '0.5');
  for (let bytes = 100; bytes < 2100; bytes += 100) {
    await guest.set(bytes, 0);
    await sleep(100);
  }
  await guest.set(0, 0);
  await sleep(500);
  t.deepEqual(await guest.calls(), []);
  t.is(await guest.kmsg(), '');
});

test("the kernel's own transmit timeout also triggers the repair", async (t) => {
  const guest = await watcher(t);
  await sleep(300);
  await guest.set(0, 1);
  t.deepEqual((await guest.callsAtLeast(3)).slice(0, 3), repair);
  t.regex(await guest.kmsg(), /transmit stalled \(transmit timeout 1\)/);
});
