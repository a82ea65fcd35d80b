// Debian's packaged kernel sources: 6.12 (the default) and Debian 12's own 6.1
// LTS (`--src debian:6.1`), each unpacked into the cache once and committed,
// so it is a git tree like any user's.
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { contentKey, ensureDir, type CacheLayout } from '../cache.ts';
import { buildEnv } from '../child-env.ts';
import { HarnessError, hostTrouble } from '../errors.ts';
import { exists } from '../files.ts';
import type { Progress } from '../log.ts';
import { withLock } from '../lock.ts';
import { git } from './git.ts';

export const debianSourceDir = '/usr/src';

/** The releases Debian 12 packages as linux-source-RELEASE. */
export const debianReleases = ['6.12', '6.1'] as const;
export type DebianRelease = (typeof debianReleases)[number];
export const defaultDebianRelease: DebianRelease = '6.12';

/**
 * The Debian release `--src` names: its default (no --src) is 6.12, `debian:6.1`
 * names Debian 12's LTS; any other value is a git tree (undefined).
 */
export function debianReleaseOf(src: string | undefined): DebianRelease | undefined {
  if (src === undefined) return defaultDebianRelease;
  const named = /^debian:(.*)$/.exec(src)?.[1];
  if (named === undefined) return undefined;
  const release = debianReleases.find((candidate) => candidate === named);
  if (!release) throw new HarnessError('usage', `--src ${src}: Debian packages linux-source-${debianReleases.join(' and linux-source-')}, not ${named}`);
  return release;
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

export async function findDebianTarball(release: DebianRelease, dir = debianSourceDir): Promise<string> {
  const name = `linux-source-${release}.tar.xz`;
  const names = await readdir(dir).catch(() => [] as string[]);
  if (!names.includes(name)) {
    throw new HarnessError('setup', `no ${name} in ${dir}: run \`npx iommu-harness setup\` (installs linux-source-${release})`);
  }
  return path.join(dir, name);
}

/** Returns a git repository holding Debian's source of `release`, unpacking it on first use. */
export async function ensureDebianSource(layout: CacheLayout, release: DebianRelease, progress: Progress): Promise<string> {
  const tarball = await findDebianTarball(release);
  const info = await stat(tarball);
  const repo = path.join(layout.sources, `debian-${contentKey(tarball, String(info.size), String(info.mtimeMs))}`);
  const readyMark = path.join(repo, '.git', 'iommu-harness-ready');
  if (await exists(readyMark)) return repo;
  return withLock(layout.locks, path.basename(repo), 30 * 60_000, async (lockLost) => {
    if (await exists(readyMark)) return repo;
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
    await git(repo, ['commit', '-q', '-m', `Debian ${path.basename(tarball)}`], { cancelSignal: lockLost });
    await writeFile(readyMark, `${tarball}\n`);
    return repo;
  });
}
