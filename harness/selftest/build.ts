// Builds a tree's own test programs (tools/testing/selftests/DIR) with its own
// Makefile, statically linked against the built kernel's uapi headers, and
// caches them by the kernel's content key: the same tree, patches and config
// give the same programs. A tree without the folder has no such suite: that
// is remembered too, with the reason.
import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { contentKey, ensureDir, type CacheLayout } from '../cache.ts';
import { buildEnv } from '../child-env.ts';
import { HarnessError, hostTrouble } from '../errors.ts';
import { exists } from '../files.ts';
import { withLock } from '../lock.ts';
import type { Progress } from '../log.ts';
import type { KernelRequest, ObtainedKernel } from '../build/index.ts';
import { archOf } from '../machine/arches.ts';
import { debianReleaseOf, obtainDebianSource } from '../source/debian-source.ts';
import { uncommittedFor } from '../source/uncommitted.ts';
import { prepareTree, worktreeFor } from '../source/worktree.ts';
import { selftestSuites, type SelftestDir } from './suites.ts';

/** A suite built for the guest, or why the tree has none. */
export type BuiltSuite = { dir: SelftestDir; hostDir: string; programs: string[]; buildSeconds: number } | { dir: SelftestDir; missing: string };

const missingFile = 'missing.txt';
const doneFile = 'programs.txt';

export async function obtainSelftests(layout: CacheLayout, request: KernelRequest, kernel: ObtainedKernel, dirs: readonly SelftestDir[], progress: Progress): Promise<BuiltSuite[]> {
  const built: BuiltSuite[] = [];
  for (const dir of dirs) built.push(await obtainSuite(layout, request, kernel, dir, progress));
  return built;
}

async function cached(dir: SelftestDir, out: string): Promise<BuiltSuite | undefined> {
  const missing = await readFile(path.join(out, missingFile), 'utf8').catch(() => undefined);
  if (missing !== undefined) return { dir, missing: missing.trim() };
  const programs = await readFile(path.join(out, doneFile), 'utf8').catch(() => undefined);
  if (programs === undefined) return undefined;
  return { dir, hostDir: out, programs: programs.split('\n').filter(Boolean), buildSeconds: 0 };
}

async function obtainSuite(layout: CacheLayout, request: KernelRequest, kernel: ObtainedKernel, dir: SelftestDir, progress: Progress): Promise<BuiltSuite> {
  const arch = archOf(kernel.artifacts.arch);
  // The kernel's key is its tree, patches, uncommitted changes and config: the programs' inputs are among them.
  const out = path.join(layout.images, 'selftests', contentKey('selftests', dir, kernel.artifacts.key, arch.guestCc));
  const hit = await cached(dir, out);
  if (hit) {
    if ('programs' in hit) progress.step(`selftests/${dir} from cache (${path.basename(out)})`);
    return hit;
  }
  const debian = debianReleaseOf(request.src);
  const repo = debian ? (await obtainDebianSource(layout, debian, progress)).repo : path.resolve(request.src ?? '.');
  const worktree = worktreeFor(layout, repo);
  return withLock(layout.locks, path.basename(worktree), 60 * 60_000, async (lockLost) => {
    const raced = await cached(dir, out);
    if (raced) return raced;
    const uncommitted = debian ? undefined : await uncommittedFor(repo, request.ref ?? 'HEAD', progress);
    const tree = await prepareTree(layout, { repo, ref: kernel.source.commit, patches: request.patches, progress, cancelSignal: lockLost, ...(uncommitted ? { uncommitted } : {}) });
    const source = path.join(tree.worktree, 'tools', 'testing', 'selftests', dir);
    const staging = `${out}.tmp-${process.pid}`;
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    if (!(await exists(path.join(source, 'Makefile')))) {
      const why = `the tree has no tools/testing/selftests/${dir} (it arrived in ${selftestSuites[dir].since}; this kernel is ${kernel.artifacts.release})`;
      await writeFile(path.join(staging, missingFile), `${why}\n`);
      await rename(staging, out).catch(() => rm(staging, { recursive: true, force: true }));
      return { dir, missing: why };
    }
    const started = Date.now();
    // lib.mk writes the programs into OUTPUT and does not make it.
    const objects = await ensureDir(path.join(staging, 'build'));
    progress.step(`building selftests/${dir} (${selftestSuites[dir].programs.join(', ')}) statically against ${kernel.artifacts.release}'s headers`);
    const make = await execa('make', ['-C', source, `-j${os.availableParallelism()}`, `OUTPUT=${objects}`, ...(arch.crossCompile ? [`CROSS_COMPILE=${arch.crossCompile}`, `ARCH=${arch.kernelArch}`] : [])], {
      reject: false,
      timeout: 20 * 60_000,
      cancelSignal: lockLost,
      extendEnv: false,
      all: true,
      // In the environment, not on make's command line: the suites' Makefiles add to CFLAGS/LDFLAGS with +=.
      env: buildEnv({ KHDR_INCLUDES: `-isystem ${path.join(kernel.artifacts.headers, 'include')}`, LDFLAGS: '-static', CC: arch.guestCc }),
    });
    await writeFile(path.join(staging, 'build.log'), make.all ?? '');
    const programs: string[] = [];
    for (const program of selftestSuites[dir].programs) {
      if (await exists(path.join(objects, program))) {
        await copyFile(path.join(objects, program), path.join(staging, program));
        programs.push(program);
      }
    }
    if (make.exitCode !== 0 && programs.length === 0) {
      const log = path.join(await ensureDir(path.join(layout.images, 'selftests')), `build-${dir}-${path.basename(out)}.log`);
      await writeFile(log, make.all ?? '');
      await rm(staging, { recursive: true, force: true });
      const text = make.all ?? '';
      const trouble = hostTrouble(text);
      // gcc's own command lines name -Werror: only its diagnostics count.
      const errors = text.split('\n').filter((line) => !/^\s*(gcc|cc|\S+-gcc)\s/.test(line) && /\berror:|No such file|cannot find|undefined reference/i.test(line)).slice(0, 8);
      // The machine's trouble (a full disk, a missing tool) is the run's; the tree's own programs not compiling is the suite's: its scenario says so.
      if (trouble) throw new HarnessError('host', `selftests/${dir} did not build: ${trouble}`, { logPath: log, excerpt: errors });
      const why = `tools/testing/selftests/${dir} does not build from this tree: ${errors.find((line) => /error:/.test(line))?.replace(/^.*tools\/testing\/selftests\//, '') ?? errors[0] ?? `make exited ${make.exitCode}`} (log: ${log})`;
      progress.warn(why);
      return { dir, missing: why };
    }
    await rm(objects, { recursive: true, force: true });
    await writeFile(path.join(staging, doneFile), `${programs.join('\n')}\n`);
    await rm(out, { recursive: true, force: true });
    await rename(staging, out);
    const seconds = (Date.now() - started) / 1000;
    progress.step(`built selftests/${dir} in ${seconds.toFixed(0)} s: ${programs.join(', ')}${programs.length < selftestSuites[dir].programs.length ? ` (not built: ${selftestSuites[dir].programs.filter((name) => !programs.includes(name)).join(', ')}; see ${path.join(out, 'build.log')})` : ''}`);
    return { dir, hostDir: out, programs, buildSeconds: seconds };
  });
}
