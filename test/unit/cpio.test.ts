import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, readlink, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { parentDirs, writeCpio } from '../../harness/image/cpio.ts';

test('newc records are 4-byte aligned and end with the trailer', (t) => {
  const archive = writeCpio([{ type: 'file', path: 'a', data: Buffer.from('xyz') }]);
  t.is(archive.subarray(0, 6).toString(), '070701');
  t.is(archive.length % 4, 0);
  t.true(archive.includes(Buffer.from('TRAILER!!!\0')));
});

// Decided before the test is registered (ava cannot skip from inside a test): without cpio the
// cross-check is skipped and its title says why, never shown as passed.
const hasCpio = spawnSync('cpio', ['--version']).status === 0;
const withCpio = hasCpio ? test : test.skip;

withCpio(`the system cpio unpacks what the writer wrote, modes and links intact${hasCpio ? '' : ' (skipped: cpio is not installed, nothing to cross-check against; apt-get install cpio)'}`, async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cpio-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const archive = writeCpio([
    { type: 'dir', path: 'bin' },
    { type: 'file', path: 'bin/tool', data: Buffer.from('#!/bin/sh\necho hi\n'), mode: 0o755 },
    { type: 'symlink', path: 'bin/sh', target: 'tool' },
    { type: 'dir', path: 'root', mode: 0o700 },
    { type: 'file', path: 'root/key', data: Buffer.from('secret'), mode: 0o600 },
  ]);
  await execa('cpio', ['-idm', '--quiet'], { cwd: dir, input: archive });
  t.is(await readFile(path.join(dir, 'bin/tool'), 'utf8'), '#!/bin/sh\necho hi\n');
  t.is((await stat(path.join(dir, 'bin/tool'))).mode & 0o777, 0o755);
  t.is(await readlink(path.join(dir, 'bin/sh')), 'tool');
  t.is((await stat(path.join(dir, 'root/key'))).mode & 0o777, 0o600);
});

test('parent directories come before their children, once each', (t) => {
  t.deepEqual(parentDirs(['usr/lib/x86_64-linux-gnu/libz.so.1', 'usr/sbin/dropbear', 'init']), [
    'usr',
    'usr/lib',
    'usr/sbin',
    'usr/lib/x86_64-linux-gnu',
  ]);
});
