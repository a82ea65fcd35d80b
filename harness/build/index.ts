// From "this tree, these patches, these fragments" to a built kernel, reusing
// whatever the cache already holds.
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { contentKey, prepareCache, type CacheLayout } from '../cache.ts';
import { HarnessError } from '../errors.ts';
import type { Progress } from '../log.ts';
import { withLock } from '../lock.ts';
import { debianReleaseOf, obtainDebianSource, type DebianSource } from '../source/debian-source.ts';
import { releaseNotice } from '../source/releases.ts';
import { checkGitTree, fileAtCommit, prepareTree, resolveCommit, worktreeFor } from '../source/worktree.ts';
import { uncommittedFor, type UncommittedChanges } from '../source/uncommitted.ts';
import { absentOptions, ConfigSyntaxError, formatVersion, makefileVersion, mergeFragments, renderConfig, switchedOffOptions, type AbsentOption, type ConfigFragment } from './kconfig.ts';
import { readBuiltChanges, recordBuiltChanges } from './built-files.ts';
import { buildKernel, buildDirHolds, cachedKernel, forgetBuildDirKernel, type KernelArtifacts } from './kernel.ts';
import type { ConfigMap } from './kconfig.ts';
import { preemptionOf, preemptionRequest, type Preemption } from './preemption.ts';
import { archOf, type Arch } from '../machine/arches.ts';

export const kconfigDir = fileURLToPath(new URL('../../kconfigs/', import.meta.url));

/** The fragments every x86_64 kernel gets, in the order they are applied (each architecture's list is its row of arches.ts). */
export const standardFragments: readonly string[] = archOf('x86_64').fragments;

export const profileDir = path.join(kconfigDir, 'profiles');

/** The named kconfig profiles (lockdep, leakcheck, kasan...), name to fragment file. */
export async function builtinProfiles(): Promise<Record<string, string>> {
  const names = (await readdir(profileDir).catch(() => [] as string[])).filter((name) => name.endsWith('.config'));
  return Object.fromEntries(names.map((name) => [name.replace(/\.config$/, ''), path.join(profileDir, name)]));
}

/** The fragment of a named kconfig profile. */
export async function profileFragment(name: string): Promise<string> {
  const profiles = await builtinProfiles();
  const fragment = profiles[name];
  if (!fragment) throw new HarnessError('usage', `unknown profile "${name}" (known: ${Object.keys(profiles).join(', ')})`);
  return fragment;
}

export interface KernelRequest {
  /** A git tree, or `debian:6.1` / `debian:6.12` / `debian:7.2` / `debian:unstable` for Debian's packaged source; undefined means Debian's 6.12. */
  src?: string;
  /** Commit-ish in `src`; HEAD by default. */
  ref?: string;
  patches: string[];
  /** Extra fragments (--kconfig), applied after the standard ones. */
  kconfigs: string[];
  /** The architecture to build for (default x86_64): its fragments, toolchain and image (arches.ts). */
  arch?: Arch;
}

export interface KernelSource {
  /** The tree the kernel came from: a path, or `debian:linux-source-RELEASE`. */
  source: string;
  /** The Debian package's exact version (`7.2.13-1`), for a Debian source. */
  packageVersion?: string;
  commit: string;
  patches: string[];
  /** The tree's uncommitted files (tracked changes, then untracked ones) built after the patches; absent when it was clean. */
  uncommitted?: string[];
  /** The built kernel's preemption model and why (harness/build/preemption.ts). */
  preemption?: Preemption;
}

/**
 * Where and from what a kernel is built: enough to put its tree and build
 * directory back when a later step needs them (the frames' source lines) after
 * another kernel was built there.
 */
export interface KernelBuildPlace {
  key: string;
  arch: Arch;
  repo: string;
  baseCommit: string;
  patches: string[];
  uncommitted?: UncommittedChanges;
  worktree: string;
  buildDir: string;
  requested: ConfigMap;
}

export interface ObtainedKernel {
  artifacts: KernelArtifacts;
  source: KernelSource;
  place: KernelBuildPlace;
  /** Fragment options this kernel is too old to have (`# since X.Y`), left out of its config. */
  absentOptions: AbsentOption[];
  /** Build wall time; 0 when it came from the cache. */
  buildSeconds: number;
}

export async function loadFragments(extra: string[], arch: Arch = 'x86_64'): Promise<ConfigFragment[]> {
  const available = new Set(await readdir(kconfigDir));
  const standard = archOf(arch).fragments.filter((name) => available.has(name)).map((name) => path.join(kconfigDir, name));
  const fragments: ConfigFragment[] = [];
  for (const file of [...standard, ...extra.map((name) => path.resolve(name))]) {
    const text = await readFile(file, 'utf8').catch(() => {
      throw new HarnessError('usage', `cannot read kconfig fragment ${file}`);
    });
    fragments.push({ name: file, text });
  }
  return fragments;
}

/**
 * A usage error when a fragment (a --kconfig, a profile) switches off an
 * option the verdicts rely on: the kernel would build and every run would
 * pass, or read each removal as a leak, on evidence it cannot print.
 */
export function checkReliedOnOptions(fragments: ConfigFragment[]): void {
  const off = switchedOffOptions(fragments);
  if (off.length === 0) return;
  const lines = off.map((entry) => `${entry.fragment} switches off ${entry.option} (${entry.option}=${entry.value}), which ${path.basename(entry.enabledBy)} turns on: ${entry.reason}`);
  throw new HarnessError('usage', `${lines.join('; ')}; remove ${off.length === 1 ? 'that line' : 'those lines'} from the fragment`, { excerpt: lines });
}

export async function obtainKernel(layout: CacheLayout, request: KernelRequest, progress: Progress): Promise<ObtainedKernel> {
  const arch = request.arch ?? 'x86_64';
  // Read first: a fragment that cannot be used is said before any source is unpacked.
  let fragments: ConfigFragment[];
  try {
    fragments = await loadFragments(request.kconfigs, arch);
    checkReliedOnOptions(fragments);
  } catch (error) {
    if (error instanceof ConfigSyntaxError) throw new HarnessError('config', error.message, { logPath: error.source });
    throw error;
  }
  await prepareCache(layout);
  const debian = debianReleaseOf(request.src);
  if (!debian && request.src) await checkGitTree(request.src);
  const debianSource: DebianSource | undefined = debian ? await obtainDebianSource(layout, debian, progress) : undefined;
  const repo = debianSource ? debianSource.repo : path.resolve(request.src ?? '.');
  const baseCommit = await resolveCommit(repo, request.ref ?? 'HEAD');
  const uncommitted = debian ? undefined : await uncommittedFor(repo, request.ref ?? 'HEAD', progress);
  // The release decides which `# since X.Y` options apply; a tree whose Makefile
  // cannot be read gets every option, and olddefconfig's check names what failed.
  const version = makefileVersion(await fileAtCommit(repo, baseCommit, 'Makefile'));
  const notice = version && releaseNotice(version);
  if (notice) progress.warn(notice);
  const fromFragments = mergeFragments(fragments, version, arch);
  // The harness's preemption model, added only where the tree would not land on it by itself.
  const requested = new Map([...fromFragments, ...preemptionRequest(await fileAtCommit(repo, baseCommit, 'kernel/Kconfig.preempt'), fromFragments)]);
  const absent: AbsentOption[] = version ? absentOptions(fragments, version, arch) : [];
  const patchTexts = await Promise.all(
    request.patches.map((patch) =>
      readFile(patch).catch(() => {
        throw new HarnessError('usage', `cannot read patch ${path.resolve(patch)}`);
      }),
    ),
  );
  // Another edit is another kernel; a clean tree keeps the key it always had.
  const key = contentKey(arch, baseCommit, renderConfig(requested), ...patchTexts, ...(uncommitted ? ['uncommitted', uncommitted.key] : []));
  const source: KernelSource = {
    source: debianSource ? `debian:${debianSource.package}` : repo,
    ...(debianSource?.version ? { packageVersion: debianSource.version } : {}),
    commit: baseCommit,
    patches: request.patches.map((patch) => path.resolve(patch)),
    ...(uncommitted ? { uncommitted: uncommitted.files } : {}),
  };

  if (version && absent.length > 0) {
    progress.step(`${formatVersion(version)} predates ${absent.map((option) => `${option.option} (${formatVersion(option.since)})`).join(', ')}: built without them`);
  }
  const withPreemption = async (artifacts: KernelArtifacts): Promise<KernelSource> => {
    const preemption = preemptionOf(await readFile(artifacts.config, 'utf8'), fromFragments);
    return preemption ? { ...source, preemption } : source;
  };
  // A kernel an older harness cached has no record of what it compiled, so the
  // patch's files could not be held against it: it is built again (incrementally).
  const fromCache = async () => {
    const kernel = await cachedKernel(layout, key, arch);
    return kernel && (await readBuiltChanges(kernel.dir)) ? kernel : undefined;
  };
  const worktree = worktreeFor(layout, repo);
  // One build directory per worktree and config: patch variants of one
  // config rebuild incrementally, and switching profiles (kmemleak, KASAN)
  // does not throw away the other profiles' objects.
  // Another architecture's build directory says which (x86_64's name is as it always was).
  const buildDir = path.join(layout.builds, `${path.basename(worktree)}${arch === 'x86_64' ? '' : `-${arch}`}-${contentKey(renderConfig(requested)).slice(0, 8)}`);
  const place: KernelBuildPlace = { key, arch, repo, baseCommit, patches: request.patches, ...(uncommitted ? { uncommitted } : {}), worktree, buildDir, requested };
  const cached = await fromCache();
  if (cached) {
    progress.step(`kernel ${cached.release}${arch === 'x86_64' ? '' : ` (${arch})`} from cache (${key})`);
    return { artifacts: cached, source: await withPreemption(cached), place, absentOptions: absent, buildSeconds: 0 };
  }
  return withLock(layout.locks, path.basename(worktree), 120 * 60_000, async (lockLost) => {
    const raced = await fromCache();
    if (raced) return { artifacts: raced, source: await withPreemption(raced), place, absentOptions: absent, buildSeconds: 0 };
    const outcome = await buildAt(layout, place, progress, lockLost);
    progress.step(`built ${outcome.artifacts.release}${arch === 'x86_64' ? '' : ` (${arch})`} in ${outcome.seconds.toFixed(0)} s`);
    return { artifacts: outcome.artifacts, source: await withPreemption(outcome.artifacts), place, absentOptions: absent, buildSeconds: outcome.seconds };
  });
}

/** Puts the place's tree in the state of its kernel and builds it there; the caller holds the worktree's lock. */
async function buildAt(layout: CacheLayout, place: KernelBuildPlace, progress: Progress, cancelSignal?: AbortSignal) {
  // The build directory is about to hold something else: until the build ends, it holds no kernel.
  await forgetBuildDirKernel(place.buildDir);
  const tree = await prepareTree(layout, {
    repo: place.repo,
    ref: place.baseCommit,
    patches: place.patches,
    progress,
    ...(cancelSignal ? { cancelSignal } : {}),
    ...(place.uncommitted ? { uncommitted: place.uncommitted } : {}),
  });
  const outcome = await buildKernel(layout, { key: place.key, worktree: tree.worktree, buildDir: place.buildDir, requested: place.requested, progress, arch: place.arch, ...(cancelSignal ? { cancelSignal } : {}) });
  // Read while the build directory still holds this build's objects: the next patch rebuilds over it.
  await recordBuiltChanges(outcome.artifacts.dir, place.buildDir, tree.worktree, place.baseCommit);
  return outcome;
}

/**
 * Runs `work` with the place's worktree and build directory holding its
 * kernel's sources and objects, under the worktree's lock. A kernel that came
 * from the cache after another was built in the same place is first built
 * there again (incrementally; the same key gives the same kernel).
 */
export async function withKernelPlace<T>(layout: CacheLayout, place: KernelBuildPlace, progress: Progress, work: (place: KernelBuildPlace) => Promise<T>): Promise<T> {
  return withLock(layout.locks, path.basename(place.worktree), 120 * 60_000, async (lockLost) => {
    if (!(await buildDirHolds(place.buildDir, place.worktree, place.key))) {
      progress.step(`the build directory holds another kernel now: building ${place.key} there again for its sources`);
      await buildAt(layout, place, progress, lockLost);
    }
    return work(place);
  });
}
