// The guest: busybox, dropbear with the libraries it links, the harness's
// keys and C helpers, and /init. Written as an uncompressed newc archive and cached by
// the archive's content, so an unchanged guest is never rebuilt.
import { chmod, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { contentKey, ensureDir, privateDirMode, type CacheLayout } from '../cache.ts';
import { buildEnv } from '../child-env.ts';
import { HarnessError } from '../errors.ts';
import { exists } from '../files.ts';
import { parentDirs, writeCpio, type CpioEntry } from './cpio.ts';
import { compileGuestHelper, guestHelpers } from './guest-helpers.ts';
import type { HarnessKeys } from './keys.ts';
import { archOf, type Arch } from '../machine/arches.ts';
import { foreignUserland } from './debian-userland.ts';

const initScript = fileURLToPath(new URL('../../images/init.sh', import.meta.url));
const netWatchScript = fileURLToPath(new URL('../../images/net-watch.sh', import.meta.url));
const busybox = '/bin/busybox';
const dropbear = '/usr/sbin/dropbear';

export interface GuestImage {
  path: string;
  key: string;
}

/** Shared libraries a dynamic binary loads, from `ldd`: absolute paths, the loader included. */
export function parseLdd(output: string): string[] {
  const libraries: string[] = [];
  for (const line of output.split('\n')) {
    const match = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(0x/.exec(line);
    if (match?.[1]) libraries.push(match[1]);
  }
  return libraries;
}

/** busybox, dropbear and dropbear's libraries for the guest's architecture (arches.ts). */
async function userlandFiles(layout: CacheLayout, arch: Arch): Promise<{ path: string; source: string; mode: number }[]> {
  const userland = archOf(arch).userland;
  if (userland.kind === 'debian') {
    const foreign = await foreignUserland(layout, { debianArch: userland.debianArch, multiarch: userland.multiarch, readelf: `${archOf(arch).crossCompile}readelf` });
    return [
      { path: 'bin/busybox', source: foreign.busybox, mode: 0o755 },
      { path: 'usr/sbin/dropbear', source: foreign.dropbear, mode: 0o755 },
      ...foreign.libraries.map((library) => ({ ...library, mode: 0o755 })),
    ];
  }
  const ldd = await execa('ldd', [dropbear], { reject: false, extendEnv: false, env: buildEnv() });
  if (ldd.exitCode !== 0) throw new HarnessError('image', `cannot list dropbear's libraries (ldd ${dropbear}): ${ldd.stderr.trim()}`);
  return [
    { path: 'bin/busybox', source: busybox, mode: 0o755 },
    { path: 'usr/sbin/dropbear', source: dropbear, mode: 0o755 },
    ...parseLdd(ldd.stdout).map((library) => ({ path: library.slice(1), source: library, mode: 0o755 })),
  ];
}

/** A file the caller adds to the image (the tree's selftest programs): its path in the guest, without the leading `/`. */
export interface ExtraGuestFile {
  path: string;
  source: string;
  mode: number;
}

/** The guest image for `arch` (default x86_64): the same keys, init and helpers on every architecture, and any extra files. */
export async function buildGuestImage(layout: CacheLayout, keys: HarnessKeys, headersDir: string, arch: Arch = 'x86_64', extra: readonly ExtraGuestFile[] = []): Promise<GuestImage> {
  const userland = await userlandFiles(layout, arch);
  const files: { path: string; source?: string; data?: Buffer; mode: number }[] = [
    { path: 'init', source: initScript, mode: 0o755 },
    { path: 'bin/net-watch', source: netWatchScript, mode: 0o755 },
    ...userland,
    { path: 'etc/dropbear/host_ed25519', source: keys.hostKeyDropbear, mode: 0o600 },
    { path: 'root/.ssh/authorized_keys', data: Buffer.from(`${keys.clientPublicKey}\n`), mode: 0o600 },
    { path: 'etc/passwd', data: Buffer.from('root:x:0:0:root:/root:/bin/sh\n'), mode: 0o644 },
    { path: 'etc/group', data: Buffer.from('root:x:0:\n'), mode: 0o644 },
  ];
  for (const helper of guestHelpers) {
    files.push({ path: `bin/${helper}`, source: await compileGuestHelper(layout, helper, headersDir, archOf(arch).guestCc), mode: 0o755 });
  }
  files.push(...extra);

  const entries: CpioEntry[] = [];
  const dirs = new Set([...parentDirs(files.map((file) => file.path)), 'bin', 'dev', 'proc', 'sys', 'tmp', 'root', 'root/.ssh']);
  for (const dir of [...dirs].sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b))) {
    entries.push({ type: 'dir', path: dir, mode: dir.startsWith('root') ? 0o700 : 0o755 });
  }
  // The kernel opens /dev/console for init before devtmpfs is mounted.
  entries.push({ type: 'chardev', path: 'dev/console', major: 5, minor: 1 });
  entries.push({ type: 'symlink', path: 'bin/sh', target: 'busybox' });
  for (const file of files) {
    const data = file.data ?? (await readFile(file.source as string));
    entries.push({ type: 'file', path: file.path, data, mode: file.mode });
  }

  return storeImage(layout, writeCpio(entries));
}

/**
 * Writes the archive under its content key unless it is there, uncompressed:
 * inflating 3.4 MB of gzip cost the guest ~0.4 s of every TCG boot, and
 * QEMU loads the 7 MB through fw_cfg DMA in milliseconds. The
 * archive carries the guest's private host key: the file is the user's alone
 * (0600) in a folder that is too (0700), and one an older version wrote
 * world-readable is made private when it is reused.
 */
export async function storeImage(layout: CacheLayout, archive: Buffer): Promise<GuestImage> {
  const key = contentKey(archive);
  const dir = await ensureDir(layout.images);
  await chmod(dir, privateDirMode);
  const image = path.join(dir, `initramfs-${key}.cpio`);
  if (await exists(image)) {
    await chmod(image, 0o600);
  } else {
    const partial = `${image}.tmp-${process.pid}`;
    try {
      await writeFile(partial, archive, { mode: 0o600 });
      await rename(partial, image);
    } finally {
      await rm(partial, { force: true });
    }
  }
  return { path: image, key };
}
