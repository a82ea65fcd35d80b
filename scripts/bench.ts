// npm run bench: the numbers users wait on. Boot to SSH per vIOMMU (median of
// several boots), an incremental rebuild after a one-file patch, and `run`
// wall time on a warm cache. Prints a table; writes out/bench.json.
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { $ } from 'zx';
import { obtainKernel } from '../harness/build/index.ts';
import { cacheLayout } from '../harness/cache.ts';
import { createProgress, silentProgress } from '../harness/log.ts';
import { chooseAccel } from '../harness/machine/accel.ts';
import type { BootTimeline } from '../harness/machine/boot-timeline.ts';
import { Machine } from '../harness/machine/machine.ts';
import { installReaper } from '../harness/machine/reaper.ts';
import { iommuModels } from '../harness/machine/topology.ts';
import { prepareKernel } from '../harness/run.ts';

installReaper();
const boots = Number(process.env.BENCH_BOOTS ?? 5);
const layout = cacheLayout();
const progress = createProgress(process.stderr);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

progress.step('bench: making sure the default kernel is built');
const prepared = await prepareKernel({ patches: [], kconfigs: [] }, progress, layout);
const accel = await chooseAccel('auto');

const bootSeconds: Record<string, number[]> = {};
/** Per vIOMMU, each boot's timeline plus the first command's round trip. */
const bootPhases: Record<string, (BootTimeline & { firstCommandSeconds: number })[]> = {};
for (const iommu of iommuModels) {
  bootSeconds[iommu] = [];
  bootPhases[iommu] = [];
  for (let i = 0; i < boots; i++) {
    const runDir = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-bench-'));
    try {
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
      const commandStarted = Date.now();
      await machine.shell.run(['true'], 30_000);
      bootSeconds[iommu].push(machine.bootSeconds);
      bootPhases[iommu].push({ ...machine.bootTimeline, firstCommandSeconds: (Date.now() - commandStarted) / 1000 });
      await machine.stop();
    } finally {
      await rm(runDir, { recursive: true, force: true });
    }
  }
  progress.step(`bench: ${iommu} boot to SSH: ${bootSeconds[iommu].map((s) => s.toFixed(1)).join(', ')} s`);
}
const phaseNames = ['qemuToConsoleSeconds', 'kernelToInitSeconds', 'initToReadySeconds', 'readyToSshSeconds', 'firstCommandSeconds'] as const;
const bootBreakdown = Object.fromEntries(
  Object.entries(bootPhases).map(([iommu, timelines]) => [
    iommu,
    Object.fromEntries(phaseNames.map((phase) => [phase, median(timelines.map((timeline) => timeline[phase] ?? NaN))])),
  ]),
);

// A one-file patch that no earlier run has built: a comment with a fresh stamp.
const patchDir = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-bench-'));
const patch = path.join(patchDir, 'one-file.diff');
await writeFile(
  patch,
  [
    'diff --git a/drivers/iommu/iommu.c b/drivers/iommu/iommu.c',
    '--- a/drivers/iommu/iommu.c',
    '+++ b/drivers/iommu/iommu.c',
    '@@ -1,3 +1,4 @@',
    '+/* iommu-harness bench ' + Date.now() + ' */',
    ' // SPDX-License-Identifier: GPL-2.0-only',
    ' /*',
    '  * Copyright (C) 2007-2008 Advanced Micro Devices, Inc.',
    '',
  ].join('\n'),
);
const incremental = await obtainKernel(layout, { patches: [patch], kconfigs: [] }, progress).finally(() =>
  rm(patchDir, { recursive: true, force: true }),
);
// Put the clean kernel's sources back so the next run's rebuild is just as small.
await obtainKernel(layout, { patches: [], kconfigs: [] }, silentProgress);

const runStarted = Date.now();
const run = await $({ nothrow: true })`node bin/iommu-harness.js run --iommu intel,virtio --quiet`;
const runSeconds = (Date.now() - runStarted) / 1000;

const results = {
  accel: accel.accel,
  bootToSshMedianSeconds: Object.fromEntries(Object.entries(bootSeconds).map(([iommu, values]) => [iommu, median(values)])),
  bootToSshSamples: bootSeconds,
  bootBreakdownMedianSeconds: bootBreakdown,
  incrementalRebuildSeconds: incremental.buildSeconds,
  warmRunSeconds: runSeconds,
  warmRunExitCode: run.exitCode,
};
await mkdir('out', { recursive: true });
await writeFile('out/bench.json', `${JSON.stringify(results, null, 2)}\n`);
process.stdout.write(
  [
    `accelerator                       ${accel.accel}`,
    ...Object.entries(results.bootToSshMedianSeconds).map(([iommu, s]) => `boot to SSH, ${iommu.padEnd(7)} (median of ${boots})  ${s.toFixed(1)} s`),
    ...Object.entries(bootBreakdown).map(
      ([iommu, phases]) =>
        `  ${iommu.padEnd(7)} QEMU to console ${phases.qemuToConsoleSeconds?.toFixed(2)} s, kernel to /init ${phases.kernelToInitSeconds?.toFixed(2)} s, /init to ready ${phases.initToReadySeconds?.toFixed(2)} s, ready to SSH ${phases.readyToSshSeconds?.toFixed(2)} s, first command ${phases.firstCommandSeconds?.toFixed(3)} s`,
    ),
    `incremental rebuild, one file     ${incremental.buildSeconds.toFixed(1)} s`,
    `run, both vIOMMUs, warm cache     ${runSeconds.toFixed(1)} s (exit ${run.exitCode})`,
    '',
  ].join('\n'),
);
