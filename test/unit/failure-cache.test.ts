// Every state an interruption can leave in the cache heals on the next run,
// and nothing private in it is readable by other users. Real dropbearkey,
// real lock files, real file modes.
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { cacheLayout, prepareCache } from '../../harness/cache.ts';
import { HarnessError } from '../../harness/errors.ts';
import { storeImage } from '../../harness/image/initramfs.ts';
import { ensureKeys } from '../../harness/image/keys.ts';
import { withLock } from '../../harness/lock.ts';

async function tempCache(t: { teardown: (fn: () => Promise<void>) => void }) {
  const root = await mkdtemp(path.join(os.tmpdir(), 'failure-cache-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  return cacheLayout(path.join(root, 'cache'));
}

const modeOf = async (file: string) => (await stat(file)).mode & 0o777;

test('the cache root and its folders are 0700, and ones an older version made 0755 are made private', async (t) => {
  const layout = await tempCache(t);
  await mkdir(layout.images, { recursive: true, mode: 0o755 });
  await chmod(layout.root, 0o755);
  await chmod(layout.images, 0o755);
  await prepareCache(layout);
  for (const dir of Object.values(layout)) t.is(await modeOf(dir), 0o700, dir);
});

test('an initramfs (it carries the guest host key) is written 0600 in a 0700 folder; an old 0644 one is made 0600', async (t) => {
  const layout = await tempCache(t);
  const image = await storeImage(layout, Buffer.from('070701 a newc archive would be here'));
  t.is(await modeOf(image.path), 0o600);
  t.is(await modeOf(layout.images), 0o700);
  await chmod(image.path, 0o644);
  await chmod(layout.images, 0o755);
  const again = await storeImage(layout, Buffer.from('070701 a newc archive would be here'));
  t.is(again.path, image.path);
  t.is(await modeOf(image.path), 0o600);
  t.is(await modeOf(layout.images), 0o700);
  t.deepEqual((await readdir(layout.images)).filter((name) => name.includes('.tmp-')), []);
});

test('a cache where a file stands in for the folder is a host error naming it, not a crash', async (t) => {
  const layout = await tempCache(t);
  await mkdir(path.dirname(layout.root), { recursive: true });
  await writeFile(layout.root, 'not a folder');
  const error = await t.throwsAsync(prepareCache(layout), { instanceOf: HarnessError });
  t.is(error?.kind, 'host');
  t.is(error?.exitCode, 3);
  t.true(error?.message.includes(layout.root));
});

test('keys: made 0600 in a 0700 folder, the host key matching its pinned public half', async (t) => {
  const layout = await tempCache(t);
  const keys = await ensureKeys(layout);
  t.is(await modeOf(layout.keys), 0o700);
  for (const name of await readdir(layout.keys)) t.is(await modeOf(path.join(layout.keys, name)), 0o600, name);
  const shown = await execa('dropbearkey', ['-y', '-f', keys.hostKeyDropbear]);
  const line = shown.stdout.split('\n').find((candidate) => candidate.startsWith('ssh-ed25519 '))!;
  t.deepEqual(Buffer.from(line.split(' ')[1]!, 'base64'), keys.hostKeyBlob);
});

test('keys: a half-made set (host key written, public half not, staging left over) is made again, not fatal', async (t) => {
  const layout = await tempCache(t);
  await mkdir(layout.keys, { recursive: true });
  // What an interruption between the two dropbearkey calls left with the old code: dropbearkey refuses to overwrite it.
  await execa('dropbearkey', ['-t', 'ed25519', '-f', path.join(layout.keys, 'host_ed25519.dropbear')]);
  await writeFile(path.join(layout.keys, 'client_ed25519'), 'half');
  await mkdir(path.join(layout.keys, 'staging-abc123'));
  await writeFile(path.join(layout.keys, 'staging-abc123', 'host_ed25519.dropbear'), 'partial');
  const keys = await ensureKeys(layout);
  t.true(keys.clientPrivateKey.includes('PRIVATE KEY'));
  const shown = await execa('dropbearkey', ['-y', '-f', keys.hostKeyDropbear]);
  t.true(shown.stdout.includes((await readFile(path.join(layout.keys, 'host_ed25519.pub'), 'utf8')).trim()));
  t.deepEqual((await readdir(layout.keys)).sort(), ['client_ed25519', 'client_ed25519.pub', 'host_ed25519.dropbear', 'host_ed25519.pub']);
  // A complete set is kept as it is.
  const again = await ensureKeys(layout);
  t.is(again.clientPrivateKey, keys.clientPrivateKey);
});

test('a lock lost while held (a stalled refresh, taken over) ends the work in a HarnessError, not an uncaught throw', async (t) => {
  const layout = await tempCache(t);
  const uncaught: unknown[] = [];
  const record = (error: unknown) => uncaught.push(error);
  process.on('uncaughtException', record);
  t.teardown(() => {
    process.off('uncaughtException', record);
  });
  let aborted = false;
  const error = await t.throwsAsync(
    withLock(
      layout.locks,
      'worktree',
      10_000,
      async (signal) => {
        signal.addEventListener('abort', () => (aborted = true));
        // Another process took the lock over: the lock's mtime is no longer the one this holder wrote.
        const lockDir = path.join(layout.locks, 'worktree.lock-target.lock');
        const past = new Date(Date.now() - 60_000);
        await utimes(lockDir, past, past);
        // Work that honours the signal stops; this one waits for it. (proper-lockfile's refresh timer
        // does not keep node alive; in a run, make or QEMU do.)
        const keepAlive = setInterval(() => {}, 500);
        await new Promise((resolve) => signal.addEventListener('abort', resolve));
        clearInterval(keepAlive);
        throw new Error('make was killed');
      },
      { staleMs: 2000, updateMs: 1000 },
    ),
    { instanceOf: HarnessError },
  );
  t.true(aborted);
  t.is(error?.kind, 'setup');
  t.regex(error?.message ?? '', /lost the lock on worktree/);
  t.deepEqual(uncaught, []);
  // The lock can be taken again afterwards.
  t.is(await withLock(layout.locks, 'worktree', 10_000, async () => 'again', { staleMs: 2000, updateMs: 1000 }), 'again');
});

test('a lock whose holder was killed with SIGKILL is taken at once, not after the stale time', async (t) => {
  const layout = await tempCache(t);
  const timing = { staleMs: 60_000, updateMs: 1000 };
  const lockModule = new URL('../../harness/lock.ts', import.meta.url).href;
  const holder = execa(
    'node',
    [
      '--import=tsx',
      '--input-type=module',
      '-e',
      `import { withLock } from ${JSON.stringify(lockModule)};
       setInterval(() => {}, 1000);
       await withLock(${JSON.stringify(layout.locks)}, 'build', 10_000, async () => { console.log('held'); await new Promise(() => {}); }, ${JSON.stringify(timing)});`,
    ],
    { reject: false, buffer: false },
  );
  await new Promise<void>((resolve, reject) => {
    holder.stdout?.on('data', (chunk: Buffer) => chunk.toString().includes('held') && resolve());
    holder.on('exit', () => reject(new Error('the holder exited before taking the lock')));
  });
  holder.kill('SIGKILL');
  await holder;
  const started = Date.now();
  t.is(await withLock(layout.locks, 'build', 30_000, async () => 'taken', timing), 'taken');
  const waited = (Date.now() - started) / 1000;
  t.log(`took the dead holder's lock after ${waited.toFixed(1)} s (stale time ${timing.staleMs / 1000} s)`);
  t.true(waited < 15, `waited ${waited} s`);
});

test('a live holder keeps its lock: a waiter times out rather than take it', async (t) => {
  const layout = await tempCache(t);
  const timing = { staleMs: 60_000, updateMs: 1000 };
  let release!: () => void;
  const held = withLock(layout.locks, 'build', 10_000, () => new Promise<void>((resolve) => (release = resolve)), timing);
  await new Promise((resolve) => setTimeout(resolve, 500));
  // Four refresh periods: long enough for the dead-holder rule to look, and find the holder alive.
  await t.throwsAsync(withLock(layout.locks, 'build', 4000, async () => 'stolen', timing), { instanceOf: HarnessError, message: /timed out/ });
  release();
  await held;
});
