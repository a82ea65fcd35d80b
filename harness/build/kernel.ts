// Builds a kernel out of tree. The build directory is one per worktree and
// reused, so a patch variant costs an incremental build; finished kernels are
// copied into a content-keyed cache, so a repeated request costs nothing.
import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { execa } from 'execa';
import { contentKey, ensureDir, type CacheLayout } from '../cache.ts';
import { git } from '../source/git.ts';
import { register, removeQuietly } from '../machine/reaper.ts';
import { describeError, HarnessError } from '../errors.ts';
import { exists } from '../files.ts';
import type { Progress } from '../log.ts';
import { buildEnv } from '../child-env.ts';
import { treeKernelFile } from '../source/worktree.ts';
import { buildTrouble, firstBuildErrors, buildProgressTarget } from './build-log.ts';
import { milestoneLine, statusLine, type BuildEstimate } from './build-progress.ts';
import { applyOptions, droppedOptions, renderConfig, type ConfigMap } from './kconfig.ts';
import { archOf, type Arch } from '../machine/arches.ts';

export interface KernelArtifacts {
  /** The content key: same key, same kernel. */
  key: string;
  dir: string;
  /** The image QEMU boots: bzImage on x86_64, the uncompressed Image on arm64 (named so in the cache entry). */
  bzImage: string;
  vmlinux: string;
  config: string;
  /** `make headers_install` output; guest helpers compile against it. */
  headers: string;
  buildLog: string;
  release: string;
  /** Built with kmemleak, so runs scan for leaked objects after the scenarios. */
  kmemleak: boolean;
  /** The architecture it was built for (arches.ts). */
  arch: Arch;
}

export interface BuildRequest {
  key: string;
  worktree: string;
  buildDir: string;
  requested: ConfigMap;
  progress: Progress;
  /** Default x86_64: make's ARCH, CROSS_COMPILE and image target come from its row of arches.ts. */
  arch?: Arch;
  jobs?: number;
  /** Stops make (and git) when the lock on the build directory is lost. */
  cancelSignal?: AbortSignal;
}

export interface BuildOutcome {
  artifacts: KernelArtifacts;
  /** Wall time of the build; 0 when the kernel came from the cache. */
  seconds: number;
}

export function artifactsFor(layout: CacheLayout, key: string, arch: Arch = 'x86_64'): KernelArtifacts {
  const dir = path.join(layout.kernels, key);
  return {
    key,
    dir,
    bzImage: path.join(dir, path.basename(archOf(arch).imagePath)),
    vmlinux: path.join(dir, 'vmlinux'),
    config: path.join(dir, 'config'),
    headers: path.join(dir, 'headers'),
    buildLog: path.join(dir, 'build.log'),
    release: '',
    kmemleak: false,
    arch,
  };
}

/** A kernel already in the cache, or undefined. */
export async function cachedKernel(layout: CacheLayout, key: string, arch: Arch = 'x86_64'): Promise<KernelArtifacts | undefined> {
  const artifacts = artifactsFor(layout, key, arch);
  const releaseFile = path.join(artifacts.dir, 'release');
  if (!(await exists(releaseFile))) return undefined;
  const config = await readFile(artifacts.config, 'utf8');
  return { ...artifacts, release: (await readFile(releaseFile, 'utf8')).trim(), kmemleak: hasKmemleak(config) };
}

/** Configures and builds the worktree; the caller holds the worktree's lock. */
export async function buildKernel(layout: CacheLayout, request: BuildRequest): Promise<BuildOutcome> {
  const { worktree, buildDir, progress } = request;
  const arch = request.arch ?? 'x86_64';
  const target = archOf(arch);
  await ensureDir(buildDir);
  const log = path.join(buildDir, 'build.log');
  await writeFile(log, '');
  const started = Date.now();
  const make = (args: string[], timeoutMs: number) => runMake({ worktree, buildDir, args, log, progress, timeoutMs, arch, ...(request.cancelSignal ? { cancelSignal: request.cancelSignal } : {}) });

  const configPath = path.join(buildDir, '.config');
  // Configuring costs ~20 s of every incremental build. It is skipped when
  // neither the requested options nor any Kconfig input changed since the
  // last successful configure of this build directory.
  const stampPath = path.join(buildDir, '.iommu-harness-config-stamp');
  const stamp = contentKey(renderConfig(request.requested), await kconfigInputs(worktree));
  const configured = (await readFile(stampPath, 'utf8').catch(() => '')) === stamp && (await exists(configPath));
  if (!configured) {
    await rm(stampPath, { force: true });
    progress.step('configuring: tinyconfig + kconfig fragments');
    await make(['tinyconfig'], 5 * 60_000);
    await writeFile(configPath, applyOptions(await readFile(configPath, 'utf8'), request.requested));
    await make(['olddefconfig'], 5 * 60_000);
    const dropped = droppedOptions(request.requested, await readFile(configPath, 'utf8'));
    if (dropped.length > 0) {
      const names = dropped.map((d) => `${d.option}=${d.requested} (got ${d.actual})`);
      throw new HarnessError('config', `${dropped.length} requested config option(s) did not survive olddefconfig: ${names.join(', ')}`, {
        logPath: configPath,
        excerpt: names,
      });
    }
    await writeFile(stampPath, stamp);
  }
  const finalConfig = await readFile(configPath, 'utf8');

  const jobs = request.jobs ?? os.availableParallelism();
  progress.step(`building ${arch === 'x86_64' ? '' : `${arch} `}${target.imageTarget} with ${jobs} job(s); log: ${log}`);
  // The estimate for the progress bar: a build directory without vmlinux builds
  // everything, like the last cold build of this architecture anywhere in the cache; otherwise like its own last build.
  const cold = !(await exists(path.join(buildDir, 'vmlinux')));
  const countFile = cold ? path.join(layout.builds, arch === 'x86_64' ? '.cold-build-lines' : `.cold-build-lines-${arch}`) : path.join(buildDir, '.iommu-harness-build-lines');
  const expectedLines = Number((await readFile(countFile, 'utf8').catch(() => '')).trim()) || undefined;
  const lines = await runMake({ worktree, buildDir, args: [`-j${jobs}`, target.imageTarget], log, progress, timeoutMs: 90 * 60_000, arch, estimate: expectedLines ? { expectedLines } : {}, ...(request.cancelSignal ? { cancelSignal: request.cancelSignal } : {}) });
  await writeFile(path.join(buildDir, '.iommu-harness-build-lines'), `${lines}\n`);
  if (cold) await writeFile(countFile, `${lines}\n`);

  const artifacts = artifactsFor(layout, request.key, arch);
  const staging = `${artifacts.dir}.tmp-${process.pid}`;
  const release = (await readFile(path.join(buildDir, 'include/config/kernel.release'), 'utf8')).trim();
  // A half-written entry must not outlive an interrupted or failed build.
  const forget = register({ reap: () => removeQuietly(staging) });
  try {
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    await make(['headers_install', `INSTALL_HDR_PATH=${path.join(staging, 'headers')}`], 10 * 60_000);
    await copyFile(path.join(buildDir, target.imagePath), path.join(staging, path.basename(artifacts.bzImage)));
    await copyFile(path.join(buildDir, 'vmlinux'), path.join(staging, 'vmlinux'));
    await writeFile(path.join(staging, 'config'), finalConfig);
    await copyFile(log, path.join(staging, 'build.log'));
    // The release file marks a complete entry, so it is written last.
    await writeFile(path.join(staging, 'release'), `${release}\n`);
    await rm(artifacts.dir, { recursive: true, force: true });
    await rename(staging, artifacts.dir);
  } catch (error) {
    await rm(staging, { recursive: true, force: true });
    throw error;
  } finally {
    forget();
  }
  await writeFile(path.join(buildDir, heldKernelFile), `${request.key}\n`);
  await writeFile(treeKernelFile(worktree), `${request.key}\n`);
  return { artifacts: { ...artifacts, release, kmemleak: hasKmemleak(finalConfig), arch }, seconds: (Date.now() - started) / 1000 };
}

/** Names the kernel whose sources and objects a build directory holds (its worktree too): written when its build ends. */
const heldKernelFile = '.iommu-harness-kernel';

/**
 * Whether the build directory and the worktree both hold the kernel with this
 * key: the worktree is shared by every config's build directory, and
 * prepareTree forgets its record whenever it changes the tree.
 */
export async function buildDirHolds(buildDir: string, worktree: string, key: string): Promise<boolean> {
  const held = async (file: string) => (await readFile(file, 'utf8').catch(() => '')).trim() === key;
  return (await held(path.join(buildDir, heldKernelFile))) && (await held(treeKernelFile(worktree)));
}

/** Before the build directory changes: it holds no finished kernel until the next build ends. */
export async function forgetBuildDirKernel(buildDir: string): Promise<void> {
  await rm(path.join(buildDir, heldKernelFile), { force: true });
}

function hasKmemleak(config: string): boolean {
  return /^CONFIG_DEBUG_KMEMLEAK=y$/m.test(config);
}

/** What tinyconfig and olddefconfig read besides the fragments: every Kconfig file and config snippet, by blob id. */
async function kconfigInputs(worktree: string): Promise<string> {
  const listed = await git(worktree, ['ls-files', '-s', '--', ':(glob)**/Kconfig*', ':(glob)**/configs/*.config', 'scripts/kconfig']);
  return listed.stdout;
}

interface MakeCall {
  worktree: string;
  buildDir: string;
  args: string[];
  log: string;
  progress: Progress;
  timeoutMs: number;
  cancelSignal?: AbortSignal;
  /** Show a percentage and ETA against this estimate (the bzImage build). */
  estimate?: BuildEstimate;
  /** Default x86_64. */
  arch?: Arch;
}

/** Runs make with its output in the log; returns how many Kbuild target lines it printed. */
export async function runMake(call: MakeCall): Promise<number> {
  const { worktree, buildDir, args, log, progress, timeoutMs } = call;
  const target = archOf(call.arch ?? 'x86_64');
  // CC replaces CROSS_COMPILE's compiler, so a cross build names it whole; HOSTCC stays the host's gcc.
  const compiler = (await hasCcache()) ? [`CC=ccache ${target.crossCompile}gcc`] : [];
  const cross = target.crossCompile ? [`CROSS_COMPILE=${target.crossCompile}`] : [];
  const child = execa('make', ['-C', worktree, `O=${buildDir}`, `ARCH=${target.kernelArch}`, ...cross, ...compiler, ...args], {
    all: true,
    buffer: false,
    reject: false,
    stdin: 'ignore',
    timeout: timeoutMs,
    ...(call.cancelSignal ? { cancelSignal: call.cancelSignal } : {}),
    // What the user's shell exports (KCFLAGS, CROSS_COMPILE, KCONFIG_CONFIG...) would change the kernel behind its cache key.
    extendEnv: false,
    env: buildEnv({ KBUILD_BUILD_USER: 'iommu-harness', KBUILD_BUILD_HOST: 'localhost' }),
  });
  const logStream = createWriteStream(log, { flags: 'a' });
  const logWritten = new Promise<void>((resolve, reject) => {
    logStream.on('error', reject);
    logStream.on('finish', resolve);
  });
  let targets = 0;
  const started = Date.now();
  if (child.all) {
    for await (const line of readline.createInterface({ input: child.all })) {
      logStream.write(`${line}\n`);
      const target = buildProgressTarget(line);
      if (!target) continue;
      targets++;
      if (!call.estimate) {
        progress.detail(target);
        continue;
      }
      const elapsed = Date.now() - started;
      progress.detail(statusLine(targets, elapsed, call.estimate, target));
      const milestone = milestoneLine(targets, elapsed, call.estimate);
      if (milestone) progress.step(milestone);
    }
  }
  const result = await child;
  logStream.end();
  // The log itself may not fit on a full disk: that is the machine's failure, said as such.
  await logWritten.catch((error: unknown) => {
    throw new HarnessError('host', `cannot write the build log ${log}: ${describeError(error)}`, { logPath: log });
  });
  if (result.exitCode === undefined && (result.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new HarnessError('prerequisite', 'make is not installed: apt-get install make');
  }
  if (result.isCanceled) throw new HarnessError('setup', `make ${args.join(' ')} was stopped: the lock on the build directory was lost`, { logPath: log });
  if (result.timedOut) {
    throw new HarnessError('build', `make ${args.join(' ')} timed out after ${timeoutMs / 60_000} min`, { logPath: log });
  }
  if (result.exitCode !== 0) {
    const text = await readFile(log, 'utf8');
    const excerpt = firstBuildErrors(text);
    const trouble = buildTrouble(text);
    if (trouble) throw new HarnessError(trouble.kind, `make ${args.join(' ')} failed: ${trouble.reason}`, { logPath: log, excerpt });
    throw new HarnessError('build', `make ${args.join(' ')} failed: ${excerpt[0]?.trim() ?? 'no output'}`, { logPath: log, excerpt });
  }
  return targets;
}

let ccache: Promise<boolean> | undefined;
function hasCcache(): Promise<boolean> {
  ccache ??= execa('ccache', ['--version'], { reject: false, extendEnv: false, env: buildEnv() }).then(
    (result) => result.exitCode === 0,
    () => false,
  );
  return ccache;
}

