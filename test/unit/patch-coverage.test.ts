// A patch's files held against the build: code the kernel never compiled, or
// that no selected machine runs, cannot make a PASS.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { changedFiles, compiledSources } from '../../harness/build/built-files.ts';
import { coverageNotes, patchCoverage } from '../../harness/build/patch-coverage.ts';
import { verdictWithCoverage } from '../../harness/report/result.ts';

const built = new Set(['drivers/iommu/iommu.c', 'include/linux/iommu.h', 'drivers/iommu/intel/iommu.c', 'drivers/iommu/virtio-iommu.c']);

test('a patch only to AMD-Vi run on intel and virtio is inconclusive, naming the file and the machine that runs it', (t) => {
  const coverage = patchCoverage(['drivers/iommu/amd/iommu.c'], new Set([...built, 'drivers/iommu/amd/iommu.c']), ['intel', 'virtio']);
  t.false(coverage?.exercised);
  t.regex(coverage?.inconclusive ?? '', /drivers\/iommu\/amd\/iommu\.c \(built, but only the amd machine runs it and it was not selected \(--iommu amd\)\)/);
  t.is(verdictWithCoverage('pass', coverage), 'inconclusive');
  // A finding stays a finding: the kernel misbehaved whatever the patch touched.
  t.is(verdictWithCoverage('fail', coverage), 'fail');
});

test('a patch to drivers/iommu/arm/arm-smmu-v3/ is not built on x86 and names the smmuv3 machine, which builds it for arm64', (t) => {
  const coverage = patchCoverage(['drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c'], built, ['intel']);
  t.regex(coverage?.inconclusive ?? '', /the smmuv3 machine would build it and it was not selected \(--iommu smmuv3\)/);
  // SMMUv1/v2 has no machine: QEMU does not emulate it.
  const v2 = patchCoverage(['drivers/iommu/arm/arm-smmu/arm-smmu.c'], built, ['intel']);
  t.regex(v2?.inconclusive ?? '', /arm-smmu \(which QEMU does not emulate\) machine would build it, which the harness does not have yet/);
});

test('intel code built but only virtio selected: built, never run, inconclusive', (t) => {
  const coverage = patchCoverage(['drivers/iommu/intel/iommu.c'], built, ['virtio']);
  t.is(coverage?.files[0]?.built, true);
  t.deepEqual(coverage?.files[0]?.machines, []);
  t.regex(coverage?.inconclusive ?? '', /only the intel machine runs it and it was not selected \(--iommu intel\)/);
});

test('a core change is run by every machine that booted; a patch partly outside is noted file by file and still passes', (t) => {
  const coverage = patchCoverage(['drivers/iommu/iommu.c', 'drivers/iommu/arm/arm-smmu/arm-smmu.c', 'Documentation/iommu.rst'], built, ['intel', 'virtio']);
  t.true(coverage?.exercised);
  t.is(coverage?.inconclusive, undefined);
  t.deepEqual(coverage?.files[0]?.machines, ['intel', 'virtio']);
  t.deepEqual(coverageNotes(coverage), ['drivers/iommu/arm/arm-smmu/arm-smmu.c: not compiled into this kernel; the arm-smmu (which QEMU does not emulate) machine would build it, which the harness does not have yet', 'Documentation/iommu.rst: not kernel code (no object is built from it)']);
  t.is(verdictWithCoverage('pass', coverage), 'pass');
});

test('a header counts when a compiled object included it; a patch of documentation alone changes no kernel code', (t) => {
  t.true(patchCoverage(['include/linux/iommu.h'], built, ['intel'])?.exercised);
  t.regex(patchCoverage(['Documentation/iommu.rst'], built, ['intel'])?.inconclusive ?? '', /changes no kernel code/);
  t.is(patchCoverage([], built, ['intel']), undefined);
});

test('compiledSources reads kbuild .cmd files: a source and its included headers, not a file that merely shares a prefix', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'coverage-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const worktree = path.join(dir, 'wt');
  const build = path.join(dir, 'build');
  await mkdir(path.join(build, 'drivers/iommu'), { recursive: true });
  // The shape of a real .cmd (drivers/iommu/.iommu.o.cmd of a 6.12 build), shortened.
  await writeFile(
    path.join(build, 'drivers/iommu/.iommu.o.cmd'),
    `savedcmd_drivers/iommu/iommu.o := gcc -Wp,-MMD,drivers/iommu/.iommu.o.d -I${worktree}/include -c -o drivers/iommu/iommu.o ${worktree}/drivers/iommu/iommu.c\n\nsource_drivers/iommu/iommu.o := ${worktree}/drivers/iommu/iommu.c\n\ndeps_drivers/iommu/iommu.o := \\\n    $(wildcard include/config/IOMMU_API) \\\n  ${worktree}/include/linux/iommu.h \\\n  ${worktree}/include/linux/iommu-helper.h \\\n\ndrivers/iommu/iommu.o: $(deps_drivers/iommu/iommu.o)\n`,
  );
  const found = await compiledSources(build, worktree, ['drivers/iommu/iommu.c', 'include/linux/iommu.h', 'include/linux/iommu-help.h', 'drivers/iommu/amd/iommu.c']);
  t.deepEqual([...found].sort(), ['drivers/iommu/iommu.c', 'include/linux/iommu.h']);
});

test('changedFiles names committed patches, applied diffs and new untracked files against the base', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'coverage-git-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const g = (...args: string[]) => execa('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@t', ...args]);
  await g('init', '-q');
  await mkdir(path.join(dir, 'drivers'), { recursive: true });
  await writeFile(path.join(dir, 'drivers/a.c'), 'a\n');
  await writeFile(path.join(dir, 'drivers/b.c'), 'b\n');
  await g('add', '-A');
  await g('commit', '-qm', 'base');
  const base = (await g('rev-parse', 'HEAD')).stdout.trim();
  await writeFile(path.join(dir, 'drivers/a.c'), 'a2\n');
  await g('commit', '-qam', 'patch');
  await writeFile(path.join(dir, 'drivers/b.c'), 'b2\n');
  await writeFile(path.join(dir, 'drivers/new.c'), 'n\n');
  t.deepEqual(await changedFiles(dir, base), ['drivers/a.c', 'drivers/b.c', 'drivers/new.c']);
});
