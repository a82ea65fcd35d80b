// `run` without --src inside a kernel git tree tests that tree.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { isKernelMakefile, kernelTreeAt } from '../../harness/source/tree-here.ts';

test('a kernel tree is found from any folder inside it; a git tree that is not a kernel, or no git tree, is none', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'tree-here-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const kernel = path.join(dir, 'linux');
  await mkdir(path.join(kernel, 'drivers/iommu'), { recursive: true });
  await writeFile(path.join(kernel, 'Makefile'), '# SPDX-License-Identifier: GPL-2.0\nVERSION = 7\nPATCHLEVEL = 2\nSUBLEVEL = 13\nEXTRAVERSION =\n');
  await execa('git', ['init', '-q', kernel]);
  t.is(await kernelTreeAt(path.join(kernel, 'drivers/iommu')), kernel);
  const other = path.join(dir, 'other');
  await mkdir(other);
  await writeFile(path.join(other, 'Makefile'), 'all:\n\ttrue\n');
  await execa('git', ['init', '-q', other]);
  t.is(await kernelTreeAt(other), undefined);
  t.is(await kernelTreeAt(dir), undefined);
  t.false(isKernelMakefile('VERSION = 7\n'));
});
