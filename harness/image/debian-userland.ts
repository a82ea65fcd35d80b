// The guest userland of an architecture the host does not run (arm64):
// Debian 12's busybox-static and dropbear-bin for that architecture, with the
// packages dropbear's libraries come from, downloaded as .debs through the
// host's own Debian mirror with an apt state of the harness's own
// (`APT::Architecture=arm64`, so the host's dpkg architectures are never
// changed and nothing is installed), unpacked into the cache once. Which
// libraries the guest gets is read from dropbear's ELF (its interpreter and
// NEEDED entries, recursively), as `ldd` would list them on the guest.
import { readdir, readFile, readlink, lstat, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { ensureDir, type CacheLayout } from '../cache.ts';
import { buildEnv } from '../child-env.ts';
import { HarnessError, hostTrouble } from '../errors.ts';
import { exists } from '../files.ts';
import { withLock } from '../lock.ts';
import { debianArchiveKeyring, debianMirror, extractDeb, hostAptSources, privateAptOptions } from '../source/debian-download.ts';

/** Debian 12: the same release as the host's own busybox and dropbear. */
export const userlandSuite = 'bookworm';
/** What the guest runs; dropbear-bin's dependencies (its libraries) come with it. */
export const userlandPackages = ['busybox-static', 'dropbear-bin'] as const;

/** A file of the guest image: where it goes in the guest, and the host file it is read from. */
export interface UserlandFile {
  path: string;
  source: string;
}

export interface ForeignUserland {
  busybox: string;
  dropbear: string;
  /** dropbear's loader and libraries, at the paths the guest's loader looks them up. */
  libraries: UserlandFile[];
  /** `package=version` of every .deb unpacked, for the record. */
  packages: string[];
}

/** The package names `apt-cache depends --recurse` prints (its own lines, virtual `<...>` ones left out). */
export function parseRecursiveDepends(output: string): string[] {
  const names = output
    .split('\n')
    .filter((line) => /^\S/.test(line))
    .map((line) => line.trim())
    .filter((line) => !line.startsWith('<'));
  return [...new Set(names)];
}

/** `readelf -d -l` output: the program interpreter and the NEEDED libraries. */
export function parseElfNeeds(output: string): { interpreter?: string; needed: string[] } {
  const interpreter = /\[Requesting program interpreter: ([^\]]+)\]/.exec(output)?.[1];
  const needed = [...output.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((match) => match[1] as string);
  return { ...(interpreter ? { interpreter } : {}), needed };
}

function aptOptions(stateDir: string, debianArch: string): string[] {
  return [...privateAptOptions(stateDir), '-o', `APT::Architecture=${debianArch}`, '-o', `APT::Architectures::=${debianArch}`];
}

async function apt(program: 'apt-get' | 'apt-cache', stateDir: string, debianArch: string, args: string[], cwd?: string) {
  const result = await execa(program, [...aptOptions(stateDir, debianArch), ...args], {
    reject: false,
    timeout: 15 * 60_000,
    extendEnv: false,
    env: buildEnv({ LC_ALL: 'C' }),
    ...(cwd ? { cwd } : {}),
  });
  if (result.exitCode !== 0 || /^(E:|Err:)/m.test(`${result.stdout}\n${result.stderr}`)) {
    const trouble = hostTrouble(result.stderr);
    const lines = `${result.stderr}\n${result.stdout}`.split('\n').filter((line) => /^(E:|W:|Err:)/.test(line));
    throw new HarnessError(trouble ? 'host' : 'setup', `${program} ${args[0]} for the ${debianArch} guest userland failed: ${trouble ?? lines[0] ?? (result.stderr.split('\n')[0] || `exit ${result.exitCode}`)}`, {
      excerpt: lines.slice(0, 5),
    });
  }
  return result;
}

/**
 * A file inside `root` with its symlinks followed inside `root` too: the
 * packages' absolute links (`/lib/...`) name the guest's files, not the host's.
 */
async function resolveInside(root: string, guestPath: string): Promise<string | undefined> {
  let current = guestPath.replace(/^\/+/, '');
  for (let hops = 0; hops < 16; hops++) {
    const file = path.join(root, current);
    const info = await lstat(file).catch(() => undefined);
    if (!info) return undefined;
    if (!info.isSymbolicLink()) return file;
    const target = await readlink(file);
    current = path.isAbsolute(target) ? target.replace(/^\/+/, '') : path.join(path.dirname(current), target);
  }
  return undefined;
}

async function elfNeeds(readelf: string, file: string): Promise<{ interpreter?: string; needed: string[] }> {
  const result = await execa(readelf, ['-d', '-l', '--wide', file], { reject: false, extendEnv: false, env: buildEnv({ LC_ALL: 'C' }) });
  if (result.exitCode !== 0) throw new HarnessError('image', `${readelf} cannot read ${file}: ${result.stderr.split('\n')[0]}`);
  return parseElfNeeds(result.stdout);
}

/**
 * The libraries `binary` loads, transitively, found in the unpacked packages:
 * each at /lib/MULTIARCH/NAME in the guest (where Debian's loader looks without
 * an ld.so.cache), the loader at its interpreter path.
 */
async function librariesOf(root: string, binary: string, multiarch: string, readelf: string): Promise<UserlandFile[]> {
  const searchDirs = [`lib/${multiarch}`, `usr/lib/${multiarch}`, 'lib', 'usr/lib'];
  const files: UserlandFile[] = [];
  const seen = new Set<string>();
  const queue = [binary];
  while (queue.length > 0) {
    const next = queue.shift() as string;
    const needs = await elfNeeds(readelf, next);
    if (needs.interpreter && !seen.has(needs.interpreter)) {
      seen.add(needs.interpreter);
      const loader = await resolveInside(root, needs.interpreter);
      if (!loader) throw new HarnessError('image', `the guest userland has no ${needs.interpreter} (the loader ${path.basename(binary)} asks for)`);
      files.push({ path: needs.interpreter.replace(/^\/+/, ''), source: loader });
    }
    for (const name of needs.needed) {
      if (seen.has(name)) continue;
      seen.add(name);
      let found: string | undefined;
      for (const dir of searchDirs) {
        found = await resolveInside(root, path.join(dir, name));
        if (found) break;
      }
      if (!found) throw new HarnessError('image', `no ${name} in the unpacked ${multiarch} packages (needed by ${path.basename(next)}): which package has it is not among dropbear-bin's dependencies`);
      files.push({ path: `lib/${multiarch}/${name}`, source: found });
      queue.push(found);
    }
  }
  return files;
}

/**
 * The arm64 (or other foreign) userland, downloaded and unpacked once into
 * the cache; later calls read the unpacked tree. `readelf` reads the foreign
 * ELF files (the cross binutils').
 */
export async function foreignUserland(layout: CacheLayout, options: { debianArch: string; multiarch: string; readelf: string }): Promise<ForeignUserland> {
  const { debianArch, multiarch, readelf } = options;
  const base = path.join(layout.images, `userland-${userlandSuite}-${debianArch}`);
  const root = path.join(base, 'root');
  const manifest = path.join(base, 'packages.txt');
  const locate = async (): Promise<ForeignUserland> => {
    const busybox = await resolveInside(root, 'bin/busybox');
    const dropbear = await resolveInside(root, 'usr/sbin/dropbear');
    if (!busybox || !dropbear) throw new HarnessError('image', `the unpacked ${debianArch} userland in ${root} lacks busybox or dropbear`);
    return { busybox, dropbear, libraries: await librariesOf(root, dropbear, multiarch, readelf), packages: (await readFile(manifest, 'utf8')).split('\n').filter(Boolean) };
  };
  if (await exists(manifest)) return locate();
  await ensureDir(layout.locks);
  return withLock(layout.locks, path.basename(base), 30 * 60_000, async () => {
    if (await exists(manifest)) return locate();
    const mirror = debianMirror(await hostAptSources());
    if (!mirror) throw new HarnessError('setup', `no Debian mirror in the host's apt sources: the ${debianArch} guest's busybox and dropbear are downloaded from the mirror the host already uses`);
    const stateDir = path.join(base, 'apt');
    await ensureDir(path.join(stateDir, 'lists', 'partial'));
    await ensureDir(path.join(stateDir, 'cache', 'archives', 'partial'));
    await writeFile(path.join(stateDir, 'sources.list'), `deb [signed-by=${debianArchiveKeyring}] ${mirror} ${userlandSuite} main\n`);
    await apt('apt-get', stateDir, debianArch, ['update']);
    const depends = await apt('apt-cache', stateDir, debianArch, [
      'depends', '--recurse', '--no-recommends', '--no-suggests', '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances', ...userlandPackages,
    ]);
    const packages = parseRecursiveDepends(depends.stdout);
    const debs = path.join(base, 'debs');
    await rm(debs, { recursive: true, force: true });
    await ensureDir(debs);
    await apt('apt-get', stateDir, debianArch, ['download', ...packages.map((name) => `${name}:${debianArch}`)], debs);
    const staging = `${root}.tmp-${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    const unpacked: string[] = [];
    for (const deb of (await readdir(debs)).filter((name) => name.endsWith('.deb')).sort()) {
      await extractDeb(path.join(debs, deb), staging);
      unpacked.push(deb.replace(/\.deb$/, '').replace(/_/, '=').replace(/_[^_]*$/, '').replace(/%3a/g, ':'));
    }
    await rm(root, { recursive: true, force: true });
    await rename(staging, root);
    await rm(debs, { recursive: true, force: true });
    // Written last: it marks a complete tree.
    await writeFile(manifest, `${unpacked.join('\n')}\n`);
    return locate();
  });
}
