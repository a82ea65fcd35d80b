// npm run bench: the numbers users wait on, as wall times of the processes a
// user starts, on a warm cache. With --baseline REF the same measures run on
// the harness as it was at REF (a temporary git worktree of this repository,
// its own kernel from the shared cache), interleaved with this tree's, and
// the table shows both side by side: the before/after of a change, on the same
// machine in the same minutes.
//   tsx scripts/bench.ts [--baseline REF] [--boots 5] [--runs 3] [--cold] [--cold-src debian:6.12,debian:7.2]
//                        [--cold-machine none|smmuv3] [--cold-only]
// Measures:
//   with --cold, first: a cold build of each --cold-src kernel (default: the
//     default kernel) per version, as a new machine does it (a scratch cache with
//     no build directory, kernel or image, ccache off; the kernel source is the
//     cache's own), with the number of kbuild targets it compiled and the CPU
//     seconds it took (user + system of every process it started: what a
//     loaded machine changes least)
//   boot to SSH per vIOMMU and its breakdown (library boots of this tree, --boots each,
//     plus boot + one command + quit); for the baseline, its `run` boots' times
//   `run --iommu intel,virtio` (every scenario), --runs times: wall, the CLI's own
//     overhead (wall minus the run's timings.totalSeconds), where each scenario's seconds go
//   one-file patch to verdict: `run --patch ONE-FILE --iommu intel,virtio`, --runs times
//   bisect step: `check --src DEBIAN-REPO --patch ONE-FILE --iommu intel --scenario vfio-bind-unbind`
// Writes out/bench.json.
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { $ } from 'zx';
import { cacheLayout } from '../harness/cache.ts';
import { createProgress, silentProgress } from '../harness/log.ts';
import { chooseAccel } from '../harness/machine/accel.ts';
import type { BootTimeline } from '../harness/machine/boot-timeline.ts';
import { Machine } from '../harness/machine/machine.ts';
import { installReaper, register } from '../harness/machine/reaper.ts';
import type { IommuModel } from '../harness/machine/topology.ts';
import type { HarnessResult } from '../harness/report/result.ts';
import { prepareKernel } from '../harness/run.ts';
import { defaultDebianRelease, ensureDebianSource } from '../harness/source/debian-source.ts';
import { addCosts, noCost, type GuestCost } from '../harness/scenario/guest-cost.ts';

installReaper();
const { values } = parseArgs({
  options: {
    baseline: { type: 'string' },
    boots: { type: 'string', default: '5' },
    runs: { type: 'string', default: '3' },
    cold: { type: 'boolean', default: false },
    'cold-src': { type: 'string', default: 'debian:6.12' },
    // The machine whose architecture is built cold: none (x86_64) or smmuv3 (arm64).
    'cold-machine': { type: 'string', default: 'none' },
    'cold-only': { type: 'boolean', default: false },
  },
});
const whole = (name: string, text: string) => {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} takes a whole number of at least 1, not ${text}`);
  return value;
};
const boots = whole('boots', values.boots);
const runs = whole('runs', values.runs);
const coldSources = values['cold-src'].split(',').map((src) => src.trim()).filter(Boolean);
const progress = createProgress(process.stderr);
const repo = fileURLToPath(new URL('..', import.meta.url));
const layout = cacheLayout();
const benchIommus: IommuModel[] = ['intel', 'virtio'];

const median = (samples: number[]) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted.length ? (sorted[Math.floor((sorted.length - 1) / 2)] ?? NaN) : NaN;
};
const seconds = (value: number) => (Number.isFinite(value) ? `${value.toFixed(value < 10 ? 2 : 1)} s` : '-');

/** One version of the harness: this tree, or the baseline's worktree. */
interface Version {
  name: string;
  dir: string;
}

/** A one-file patch no run has built before: a comment with a fresh stamp. */
async function oneFilePatch(dir: string): Promise<string> {
  const patch = path.join(dir, `one-file-${Date.now()}.diff`);
  await writeFile(
    patch,
    [
      'diff --git a/drivers/iommu/iommu.c b/drivers/iommu/iommu.c',
      '--- a/drivers/iommu/iommu.c',
      '+++ b/drivers/iommu/iommu.c',
      '@@ -1,3 +1,4 @@',
      `+/* iommu-harness bench ${Date.now()} */`,
      ' // SPDX-License-Identifier: GPL-2.0-only',
      ' /*',
      '  * Copyright (C) 2007-2008 Advanced Micro Devices, Inc.',
      '',
    ].join('\n'),
  );
  return patch;
}

interface CliSample {
  wall: number;
  /** User + system CPU seconds of the CLI and everything it started (bash's `times`). */
  cpu: number;
  exitCode: number;
  result?: HarnessResult;
}

/** The children's line of bash's `times` (`0m1.250s 0m0.310s`) as seconds of user + system time. */
function childCpuSeconds(stderr: string): number {
  const line = stderr.trimEnd().split('\n').at(-1) ?? '';
  const match = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(line.trim());
  return match ? Number(match[1]) * 60 + Number(match[2]) + Number(match[3]) * 60 + Number(match[4]) : NaN;
}

/** Runs the version's CLI as a user would; the wall time is the whole process's. */
async function cli(version: Version, args: string[], jsonFile: string, env: NodeJS.ProcessEnv = process.env): Promise<CliSample> {
  const started = performance.now();
  // bash's `times` reports the CPU time of the CLI and all it waited for; the arguments go in as "$@".
  const script = 'node bin/iommu-harness.js "$@"; status=$?; times >&2; exit $status';
  const child = await $({ cwd: version.dir, nothrow: true, quiet: true, input: '', env })`bash -c ${script} bash ${args} --json ${jsonFile}`;
  const wall = (performance.now() - started) / 1000;
  const cpu = childCpuSeconds(child.stderr);
  const text = await readFile(jsonFile, 'utf8').catch(() => undefined);
  await rm(jsonFile, { force: true });
  let result: HarnessResult | undefined;
  try {
    const parsed = text ? (JSON.parse(text) as HarnessResult & { result?: HarnessResult }) : undefined;
    // `check --json` wraps the run's result.
    result = parsed?.runs ? parsed : parsed?.result;
  } catch {
    result = undefined;
  }
  if (child.exitCode !== 0) progress.warn(`bench: ${version.name}: ${args.slice(0, 2).join(' ')} exited ${child.exitCode}: ${child.stderr.split('\n').filter(Boolean).slice(-1)[0] ?? ''}`);
  return { wall, cpu, exitCode: child.exitCode ?? -1, ...(result ? { result } : {}) };
}

/** The baseline as a detached worktree of this repository, with this tree's node_modules. */
async function baselineVersion(ref: string, scratch: string): Promise<Version> {
  const dir = path.join(scratch, 'baseline');
  await $({ quiet: true })`git -C ${repo} worktree add --detach ${dir} ${ref}`;
  register({ reap: () => void $({ nothrow: true, quiet: true })`git -C ${repo} worktree remove --force ${dir}` });
  await symlink(path.join(repo, 'node_modules'), path.join(dir, 'node_modules'));
  const commit = (await $({ quiet: true })`git -C ${dir} rev-parse --short HEAD`).stdout.trim();
  return { name: `${ref} (${commit})`, dir };
}

// --- cold builds: what a new machine and a newcomer wait for first -----------------

interface ColdBuild {
  src: string;
  wall: number;
  cpu: number;
  buildSeconds: number;
  targets: number;
  exitCode: number;
}

/**
 * One cold build of the default kernel by `version`: a scratch cache whose
 * sources and keys are the real cache's (unpacking Debian's source is not the
 * build), with a worktree of its own and no build directory, kernel or image,
 * ccache off. Its worktree's registration in the source repository is pruned after.
 */
async function coldBuild(version: Version, src: string): Promise<ColdBuild> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-bench-cold-'));
  const forget = register({ reap: () => void rm(root, { recursive: true, force: true }) });
  try {
    for (const shared of ['sources', 'keys'] as const) {
      await mkdir(layout[shared], { recursive: true });
      await symlink(layout[shared], path.join(root, shared));
    }
    const machine = values['cold-machine'];
    const scenario = machine === 'none' ? 'vfio-noiommu' : 'vfio-bind-unbind';
    const sample = await cli(version, ['run', '--src', src, '--iommu', machine, '--scenario', scenario, '--quiet'], path.join(scratch, 'cold.json'), {
      ...process.env,
      IOMMU_HARNESS_CACHE: root,
      CCACHE_DISABLE: '1',
    });
    const linesFile = machine === 'smmuv3' ? '.cold-build-lines-arm64' : '.cold-build-lines';
    const targets = Number((await readFile(path.join(root, 'builds', linesFile), 'utf8').catch(() => '')).trim()) || NaN;
    return { src, wall: sample.wall, cpu: sample.cpu, buildSeconds: sample.result?.timings.buildSeconds ?? NaN, targets, exitCode: sample.exitCode };
  } finally {
    forget();
    await rm(root, { recursive: true, force: true });
    // The scratch worktree's registration in its source repository goes with it.
    for (const entry of await readdir(layout.sources, { withFileTypes: true }).catch(() => [])) {
      if (entry.isDirectory()) await $({ nothrow: true, quiet: true })`git -C ${path.join(layout.sources, entry.name)} worktree prune`;
    }
  }
}

// --- library boots of this tree: the breakdown ----------------------------------

const phaseNames = ['qemuToConsoleSeconds', 'kernelToInitSeconds', 'initToReadySeconds', 'readyToSshSeconds'] as const;

async function libraryBoots(): Promise<Record<string, { timelines: BootTimeline[]; firstCommand: number[]; bootCommandQuit: number[] }>> {
  const prepared = await prepareKernel({ patches: [], kconfigs: [] }, progress, layout);
  const accel = await chooseAccel('auto', process.env, { kernel: prepared.kernel.artifacts.bzImage, layout });
  const samples: Record<string, { timelines: BootTimeline[]; firstCommand: number[]; bootCommandQuit: number[] }> = {};
  for (const iommu of [...benchIommus, 'none' as const]) {
    const entry = (samples[iommu] = { timelines: [] as BootTimeline[], firstCommand: [] as number[], bootCommandQuit: [] as number[] });
    for (let i = 0; i < boots; i++) {
      const runDir = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-bench-'));
      try {
        const started = performance.now();
        const machine = await Machine.boot({
          iommu,
          accel: accel.accel,
          bzImage: prepared.kernel.artifacts.bzImage,
          initrd: prepared.image.path,
          topology: { devices: [] },
          runDir,
          privateKey: prepared.keys.clientPrivateKey,
          hostKeyBlob: prepared.keys.hostKeyBlob,
          bootTimeoutMs: 180_000,
          progress: silentProgress,
        });
        const commandStarted = performance.now();
        await machine.shell.run(['uname', '-r'], 30_000);
        entry.firstCommand.push((performance.now() - commandStarted) / 1000);
        await machine.stop();
        entry.bootCommandQuit.push((performance.now() - started) / 1000);
        entry.timelines.push(machine.bootTimeline);
      } finally {
        await rm(runDir, { recursive: true, force: true });
      }
    }
    progress.step(`bench: ${iommu} boot to SSH: ${entry.timelines.map((timeline) => timeline.totalSeconds.toFixed(2)).join(', ')} s`);
  }
  return samples;
}

// --- the CLI measures, per version --------------------------------------------------

interface VersionSamples {
  runWall: number[];
  cliOverhead: number[];
  bootSeconds: Record<string, number[]>;
  scenarioCosts: Record<string, GuestCost[]>;
  patchWall: number[];
  patchBuild: number[];
  bisectStepWall: number[];
  exitCodes: number[];
  cold: ColdBuild[];
}

function emptySamples(): VersionSamples {
  return { runWall: [], cliOverhead: [], bootSeconds: {}, scenarioCosts: {}, patchWall: [], patchBuild: [], bisectStepWall: [], exitCodes: [], cold: [] };
}

function recordRun(samples: VersionSamples, sample: CliSample): void {
  samples.runWall.push(sample.wall);
  samples.exitCodes.push(sample.exitCode);
  if (!sample.result) return;
  samples.cliOverhead.push(sample.wall - sample.result.timings.totalSeconds);
  for (const [id, value] of Object.entries(sample.result.timings.bootSeconds)) {
    const iommu = id.replace(/-\d+$/, '');
    (samples.bootSeconds[iommu] ??= []).push(value);
  }
  for (const run of sample.result.runs) {
    if (run.cost) (samples.scenarioCosts[`${run.iommu}/${run.scenario}`] ??= []).push(run.cost);
  }
}

const scratch = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-bench-'));
register({ reap: () => void rm(scratch, { recursive: true, force: true }) });
const versions: Version[] = [{ name: 'this tree', dir: repo }];
if (values.baseline) versions.push(await baselineVersion(values.baseline, scratch));
const samples = new Map(versions.map((version) => [version.name, emptySamples()]));

try {
  // First, while nothing of the bench has warmed anything: one after the other, never side by side.
  if (values.cold) {
    for (const src of coldSources) {
      for (const version of versions) {
        progress.step(`bench: ${version.name}: cold build of ${src}`);
        const cold = await coldBuild(version, src);
        samples.get(version.name)?.cold.push(cold);
        progress.step(`bench: ${version.name}: cold build of ${src} ${cold.buildSeconds.toFixed(0)} s, ${cold.cpu.toFixed(0)} CPU s, ${cold.targets} targets (whole command ${cold.wall.toFixed(0)} s)`);
      }
    }
  }
  const coldOnly = values['cold-only'];
  // Each version builds its own default kernel once (not measured): the cache keeps both.
  for (const version of coldOnly ? [] : versions) {
    progress.step(`bench: ${version.name}: warming the cache`);
    await cli(version, ['run', '--iommu', 'none', '--scenario', 'vfio-noiommu', '--quiet'], path.join(scratch, 'warm.json'));
  }
  const library = coldOnly ? {} : await libraryBoots();
  // The Debian 6.12 source the default run unpacked into the cache: a git tree for `check --src`.
  const sourceTree = await ensureDebianSource(layout, defaultDebianRelease, silentProgress);
  for (let round = 1; round <= (coldOnly ? 0 : runs); round++) {
    for (const version of versions) {
      const mine = samples.get(version.name) ?? emptySamples();
      progress.step(`bench: ${version.name}: run, both vIOMMUs (${round}/${runs})`);
      recordRun(mine, await cli(version, ['run', '--iommu', benchIommus.join(','), '--quiet'], path.join(scratch, 'run.json')));
      progress.step(`bench: ${version.name}: one-file patch to verdict (${round}/${runs})`);
      const patched = await cli(version, ['run', '--patch', await oneFilePatch(scratch), '--iommu', benchIommus.join(','), '--quiet'], path.join(scratch, 'patch.json'));
      mine.patchWall.push(patched.wall);
      if (patched.result) mine.patchBuild.push(patched.result.timings.buildSeconds);
      progress.step(`bench: ${version.name}: bisect step (${round}/${runs})`);
      const step = await cli(
        version,
        ['check', '--src', sourceTree, '--patch', await oneFilePatch(scratch), '--iommu', 'intel', '--scenario', 'vfio-bind-unbind', '--quiet'],
        path.join(scratch, 'check.json'),
      );
      mine.bisectStepWall.push(step.wall);
    }
  }

  const versionMedians = Object.fromEntries(
    versions.map((version) => {
      const mine = samples.get(version.name) ?? emptySamples();
      return [
        version.name,
        {
          bootToSshSeconds: Object.fromEntries(Object.entries(mine.bootSeconds).map(([iommu, values]) => [iommu, median(values)])),
          runBothSeconds: median(mine.runWall),
          cliOverheadSeconds: median(mine.cliOverhead),
          patchToVerdictSeconds: median(mine.patchWall),
          patchBuildSeconds: median(mine.patchBuild),
          bisectStepSeconds: median(mine.bisectStepWall),
          coldBuilds: mine.cold,
          exitCodes: mine.exitCodes,
          scenarioCosts: Object.fromEntries(
            Object.entries(mine.scenarioCosts).map(([name, costs]) => [name, costs.reduce(addCosts, noCost)]),
          ),
          samples: { runWall: mine.runWall, cliOverhead: mine.cliOverhead, patchWall: mine.patchWall, bisectStepWall: mine.bisectStepWall, bootSeconds: mine.bootSeconds },
        },
      ];
    }),
  );
  const phaseMedian = (timelines: BootTimeline[], phase: (typeof phaseNames)[number]) => median(timelines.map((timeline) => timeline[phase] ?? NaN));
  const breakdown = Object.fromEntries(
    Object.entries(library).map(([iommu, entry]) => [
      iommu,
      {
        qemuToConsoleSeconds: phaseMedian(entry.timelines, 'qemuToConsoleSeconds'),
        kernelToInitSeconds: phaseMedian(entry.timelines, 'kernelToInitSeconds'),
        initToReadySeconds: phaseMedian(entry.timelines, 'initToReadySeconds'),
        readyToSshSeconds: phaseMedian(entry.timelines, 'readyToSshSeconds'),
        totalSeconds: median(entry.timelines.map((timeline) => timeline.totalSeconds)),
        firstCommandSeconds: median(entry.firstCommand),
        bootCommandQuitSeconds: median(entry.bootCommandQuit),
      },
    ]),
  );
  const results = { accel: (await chooseAccel('auto')).accel, boots, runs, versions: versions.map((version) => version.name), bootBreakdownMedianSeconds: breakdown, medians: versionMedians };
  await mkdir(path.join(repo, 'out'), { recursive: true });
  await writeFile(path.join(repo, 'out/bench.json'), `${JSON.stringify(results, null, 2)}\n`);

  // The table: one column per version, medians.
  const column = (pick: (m: (typeof versionMedians)[string]) => number) => versions.map((version) => seconds(pick(versionMedians[version.name] as (typeof versionMedians)[string])).padStart(16));
  const rows: [string, (m: (typeof versionMedians)[string]) => number][] = [
    ...(values.cold
      ? coldSources.flatMap(
          (src) =>
            [
              [`cold build of ${src}`, (m) => m.coldBuilds.find((cold) => cold.src === src)?.buildSeconds ?? NaN],
              ['  CPU seconds of the whole cold command', (m) => m.coldBuilds.find((cold) => cold.src === src)?.cpu ?? NaN],
              ['  the whole cold command (build, image, boot)', (m) => m.coldBuilds.find((cold) => cold.src === src)?.wall ?? NaN],
            ] as [string, (m: (typeof versionMedians)[string]) => number][],
        )
      : []),
    ...benchIommus.map((iommu): [string, (m: (typeof versionMedians)[string]) => number] => [`boot to SSH, ${iommu} (run's boots)`, (m) => m.bootToSshSeconds[iommu] ?? NaN]),
    ['run --iommu intel,virtio, every scenario', (m) => m.runBothSeconds],
    ['one-file patch to verdict, both vIOMMUs', (m) => m.patchToVerdictSeconds],
    ['  of which the incremental build', (m) => m.patchBuildSeconds],
    ['bisect step (check, one commit)', (m) => m.bisectStepSeconds],
    ['CLI wall minus timings.totalSeconds', (m) => m.cliOverheadSeconds],
  ];
  const lines = [
    `accelerator ${results.accel}; medians of ${runs} run(s) per version, ${boots} library boot(s) per vIOMMU`,
    `${'measure'.padEnd(44)}${versions.map((version) => version.name.slice(0, 15).padStart(16)).join('')}`,
    ...rows.map(([label, pick]) => `${label.padEnd(44)}${column(pick).join('')}`),
    ...(values.cold
      ? coldSources.map((src) => `${`  kbuild targets compiled, ${src}`.padEnd(44)}${versions.map((version) => String(samples.get(version.name)?.cold.find((cold) => cold.src === src)?.targets ?? '-').padStart(16)).join('')}`)
      : []),
    '',
    `boot breakdown, this tree (median of ${boots}):`,
    ...Object.entries(breakdown).map(
      ([iommu, phases]) =>
        `  ${iommu.padEnd(7)} QEMU to console ${seconds(phases.qemuToConsoleSeconds)}, kernel to /init ${seconds(phases.kernelToInitSeconds)}, /init to ready ${seconds(phases.initToReadySeconds)}, ready to SSH ${seconds(phases.readyToSshSeconds)} = ${seconds(phases.totalSeconds)}; first command ${seconds(phases.firstCommandSeconds)}; boot + command + quit ${seconds(phases.bootCommandQuitSeconds)}`,
    ),
    '',
    `scenarios, this tree (summed over ${runs} run(s)): seconds = round trips + QMP + waits + the rest`,
    ...Object.entries(versionMedians['this tree']?.scenarioCosts ?? {}).map(
      ([name, cost]) =>
        `  ${name.padEnd(38)} ${seconds(cost.seconds / runs).padStart(8)} per run: ${cost.roundTrips / runs} round trips ${seconds(cost.roundTripSeconds / runs)}, ${cost.qmpCalls / runs} QMP ${seconds(cost.qmpSeconds / runs)}, waits ${seconds(cost.waitSeconds / runs)}`,
    ),
    '',
  ];
  process.stdout.write(lines.join('\n'));
} finally {
  for (const version of versions.slice(1)) await $({ nothrow: true, quiet: true })`git -C ${repo} worktree remove --force ${version.dir}`;
  await rm(scratch, { recursive: true, force: true });
}
