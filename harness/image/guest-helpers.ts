// The guest's C helpers, compiled against the built tree's own uapi headers
// (Debian 12's are 6.1 and lack linux/iommufd.h) and linked statically, so the
// guest needs no C library for them. A 6.1 tree's headers have no iommufd
// either: the helper is then built without that path.
import { readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { contentKey, ensureDir, type CacheLayout } from '../cache.ts';
import { buildEnv } from '../child-env.ts';
import { HarnessError, hostTrouble } from '../errors.ts';
import { exists } from '../files.ts';

export const guestSourceDir = fileURLToPath(new URL('../../images/guest/', import.meta.url));

/** Helpers the guest image carries, by the name they have in the guest's /bin. */
export const guestHelpers = ['vfio-helper'] as const;
export type GuestHelper = (typeof guestHelpers)[number];

/**
 * Compiles `name` against `headersDir` (a headers_install tree) unless the
 * cache has it; `cc` is the guest architecture's compiler (arches.ts: the
 * host's gcc for x86_64, aarch64-linux-gnu-gcc for arm64).
 */
export async function compileGuestHelper(layout: CacheLayout, name: GuestHelper, headersDir: string, cc = 'gcc'): Promise<string> {
  const source = path.join(guestSourceDir, `${name}.c`);
  const uapi = path.join(headersDir, 'include', 'linux');
  // iommufd.h is absent from a 6.1 tree's headers: its absence is part of the key.
  const inputs = await Promise.all([source, path.join(uapi, 'vfio.h'), path.join(uapi, 'iommufd.h')].map((file) => readFile(file).catch(() => 'absent')));
  // The host's gcc is not named in the key, so x86 helpers built before arm64 existed stay cached.
  const dir = await ensureDir(path.join(layout.images, 'helpers', cc === 'gcc' ? contentKey(name, ...inputs) : contentKey(name, cc, ...inputs)));
  const binary = path.join(dir, name);
  if (await exists(binary)) return binary;
  const partial = `${binary}.tmp-${process.pid}`;
  const result = await execa(
    cc,
    ['-static', '-O2', '-Wall', '-Wextra', '-Werror', `-I${path.join(headersDir, 'include')}`, '-o', partial, source],
    // CPATH, C_INCLUDE_PATH, GCC_EXEC_PREFIX... would change the helper behind its cache key.
    { reject: false, timeout: 120_000, extendEnv: false, env: buildEnv() },
  );
  if (result.exitCode === undefined && (result.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new HarnessError('prerequisite', cc === 'gcc' ? 'gcc is not installed: apt-get install gcc' : `${cc} is not installed: apt-get install gcc-${cc.replace(/-gcc$/, '')}`);
  }
  if (result.exitCode !== 0) {
    await rm(partial, { force: true });
    const trouble = hostTrouble(result.stderr);
    if (trouble) throw new HarnessError('host', `guest helper ${name} could not be compiled: ${trouble}`, { excerpt: result.stderr.split('\n').slice(0, 8) });
    throw new HarnessError('image', `guest helper ${name} does not compile: ${result.stderr.split('\n')[0]}`, {
      logPath: source,
      excerpt: result.stderr.split('\n').slice(0, 8),
    });
  }
  await rename(partial, binary);
  return binary;
}
