// Debian's packaged kernel sources: 6.12 (the default) and Debian 12's own 6.1
// LTS (`--src debian:6.1`) from the installed linux-source packages, and Debian
// unstable's newest (`--src debian:7.2`, `debian:unstable`), downloaded into
// the cache with the harness's own apt state. Each is unpacked into the cache
// once and committed, so it is a git tree like any user's.
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { contentKey, ensureDir, type CacheLayout } from '../cache.ts';
import { buildEnv } from '../child-env.ts';
import { HarnessError, hostTrouble } from '../errors.ts';
import { exists } from '../files.ts';
import type { Progress } from '../log.ts';
import { withLock } from '../lock.ts';
import { downloadPackage, extractDeb, refreshUnstableLists, resolveUnstablePackage, unstableSuite } from './debian-download.ts';
import { git } from './git.ts';

export const debianSourceDir = '/usr/src';

/** The releases Debian 12 packages as linux-source-RELEASE, installed under /usr/src. */
export const debianReleases = ['6.12', '6.1'] as const;
export type InstalledRelease = (typeof debianReleases)[number];
/**
 * A Debian kernel source `--src` can name: an installed one, a release Debian
 * unstable packages (`7.2`, downloaded), or `unstable` for whichever
 * linux-source-X.Y unstable carries that day.
 */
export type DebianRelease = InstalledRelease | 'unstable' | `${number}.${number}`;
export const defaultDebianRelease: DebianRelease = '6.12';

/** Whether a Debian source comes from an installed package rather than a download from unstable. */
export function isInstalledRelease(release: DebianRelease): release is InstalledRelease {
  return (debianReleases as readonly string[]).includes(release);
}

/** Releases newer than Debian 12's are fetched from unstable, which carries only the newest. */
function newerThanInstalled(release: string): boolean {
  const [major, minor] = release.split('.').map(Number) as [number, number];
  return major > 6 || (major === 6 && minor > 12);
}

/**
 * The Debian release `--src` names: its default (no --src) is 6.12, `debian:6.1`
 * names Debian 12's LTS, `debian:7.2` (any release after 6.12) and
 * `debian:unstable` Debian unstable's source; any other value is a git tree (undefined).
 */
export function debianReleaseOf(src: string | undefined): DebianRelease | undefined {
  if (src === undefined) return defaultDebianRelease;
  const named = /^debian:(.*)$/.exec(src)?.[1];
  if (named === undefined) return undefined;
  const installed = debianReleases.find((candidate) => candidate === named);
  if (installed) return installed;
  if (named === 'unstable') return 'unstable';
  if (/^\d+\.\d+$/.test(named) && newerThanInstalled(named)) return named as `${number}.${number}`;
  throw new HarnessError(
    'usage',
    `--src ${src}: Debian packages linux-source-${debianReleases.join(' and linux-source-')}, not ${named}; a newer release comes from Debian ${unstableSuite} (--src debian:unstable, or its release, e.g. debian:7.2)`,
  );
}

/**
 * Debian's .gitignore ends with a block that ignores everything at the top
 * level (`/*` then `!/debian/`), since its packaging repository holds only
 * debian/. Left in, `git add -A` tracks nothing.
 */
export function stripDebianIgnoreBlock(gitignore: string): string {
  const lines = gitignore.split('\n');
  const start = lines.findIndex((line) => /^#\s*Debian packaging/i.test(line));
  const kept = start >= 0 ? lines.slice(0, start) : lines.filter((line) => line !== '/*' && line !== '!/debian/');
  return kept.join('\n').replace(/\n*$/, '\n');
}

export async function findDebianTarball(release: InstalledRelease, dir = debianSourceDir): Promise<string> {
  const name = `linux-source-${release}.tar.xz`;
  const names = await readdir(dir).catch(() => [] as string[]);
  if (!names.includes(name)) {
    throw new HarnessError('setup', `no ${name} in ${dir}: run \`npx iommu-harness setup\` (installs linux-source-${release})`);
  }
  return path.join(dir, name);
}

/** A Debian kernel source made a git tree: where, and from which package and exact version. */
export interface DebianSource {
  repo: string;
  /** `linux-source-7.2` */
  package: string;
  /** The package's exact Debian version (`7.2.13-1`); undefined when dpkg does not know an installed tarball's. */
  version?: string;
}

/** The installed version of a package, from dpkg's database; undefined when it is not installed. */
async function installedVersion(name: string): Promise<string | undefined> {
  const query = await execa('dpkg-query', ['-W', '-f=${Version}', name], { reject: false, timeout: 30_000, extendEnv: false, env: buildEnv() });
  return query.exitCode === 0 && query.stdout.trim() ? query.stdout.trim() : undefined;
}

/**
 * Unpacks a linux-source tarball into `repo` and commits it: the Debian
 * .gitignore block stripped, so the whole tree is tracked.
 */
async function unpackToGit(tarball: string, repo: string, label: string, progress: Progress, lockLost: AbortSignal): Promise<void> {
  progress.step(`unpacking ${tarball} into ${repo} (once)`);
  await rm(repo, { recursive: true, force: true });
  await ensureDir(repo);
  // node-tar does not read xz; the system tar does.
  const unpack = await execa('tar', ['-xJf', tarball, '-C', repo, '--strip-components=1'], {
    reject: false,
    timeout: 10 * 60_000,
    cancelSignal: lockLost,
    extendEnv: false,
    env: buildEnv(),
  });
  if (unpack.exitCode !== 0) {
    const trouble = hostTrouble(unpack.stderr);
    throw new HarnessError(trouble ? 'host' : 'setup', `could not unpack ${tarball}: ${trouble ?? unpack.stderr.split('\n')[0]}`);
  }
  const ignorePath = path.join(repo, '.gitignore');
  await writeFile(ignorePath, stripDebianIgnoreBlock(await readFile(ignorePath, 'utf8')));
  progress.step('committing the Debian source to git (once, about a minute)');
  await git(repo, ['init', '-q'], { cancelSignal: lockLost });
  await git(repo, ['add', '-A'], { cancelSignal: lockLost });
  await git(repo, ['commit', '-q', '-m', `Debian ${label}`], { cancelSignal: lockLost });
}

/** Returns a git repository holding Debian's source of `release`, unpacking (or downloading) it on first use. */
export async function ensureDebianSource(layout: CacheLayout, release: DebianRelease, progress: Progress): Promise<string> {
  return (await obtainDebianSource(layout, release, progress)).repo;
}

/** Debian's source of `release` as a git tree, with the package and version it came from. */
export async function obtainDebianSource(layout: CacheLayout, release: DebianRelease, progress: Progress): Promise<DebianSource> {
  if (!isInstalledRelease(release)) return obtainUnstableSource(layout, release, progress);
  const name = `linux-source-${release}`;
  const tarball = await findDebianTarball(release);
  const info = await stat(tarball);
  const repo = path.join(layout.sources, `debian-${contentKey(tarball, String(info.size), String(info.mtimeMs))}`);
  const readyMark = path.join(repo, '.git', 'iommu-harness-ready');
  const version = await installedVersion(name);
  const source: DebianSource = { repo, package: name, ...(version ? { version } : {}) };
  if (await exists(readyMark)) return source;
  return withLock(layout.locks, path.basename(repo), 30 * 60_000, async (lockLost) => {
    if (await exists(readyMark)) return source;
    await unpackToGit(tarball, repo, path.basename(tarball), progress, lockLost);
    await writeFile(readyMark, `${tarball}\n`);
    return source;
  });
}

/** The folder a downloaded package's tree lives in: one per exact version. */
function unstableRepo(layout: CacheLayout, name: string, version: string): string {
  return path.join(layout.sources, `debian-${name}_${version.replace(/[^A-Za-z0-9.+-]/g, '_')}`);
}

/**
 * Debian unstable's source of `release` (or its newest, for `unstable`):
 * the lists are refreshed at most daily, the .deb is downloaded only when
 * its version has no tree in the cache yet, then extracted, unpacked and
 * committed; the download is deleted, the tree is what is kept.
 */
async function obtainUnstableSource(layout: CacheLayout, release: DebianRelease, progress: Progress): Promise<DebianSource> {
  const stateDir = path.join(layout.sources, `apt-${unstableSuite}`);
  return withLock(layout.locks, `apt-${unstableSuite}`, 60 * 60_000, async (lockLost) => {
    const stale = await refreshUnstableLists(stateDir, { cancelSignal: lockLost });
    if (stale) progress.warn(stale);
    const { package: name, version } = await resolveUnstablePackage(stateDir, release);
    const repo = unstableRepo(layout, name, version);
    const readyMark = path.join(repo, '.git', 'iommu-harness-ready');
    const source: DebianSource = { repo, package: name, version };
    if (await exists(readyMark)) return source;
    progress.step(`downloading ${name} ${version} from Debian ${unstableSuite} (once)`);
    const downloadDir = path.join(stateDir, 'download');
    const deb = await downloadPackage(stateDir, name, version, downloadDir, lockLost);
    const extracted = path.join(downloadDir, 'extracted');
    await extractDeb(deb.deb, extracted, lockLost);
    const tarball = path.join(extracted, 'usr', 'src', `${name}.tar.xz`);
    if (!(await exists(tarball))) throw new HarnessError('setup', `${path.basename(deb.deb)} holds no usr/src/${name}.tar.xz`);
    await unpackToGit(tarball, repo, `${name} ${version}`, progress, lockLost);
    await writeFile(readyMark, `${name} ${version}\n`);
    await rm(downloadDir, { recursive: true, force: true });
    return source;
  });
}
