import { readFile } from 'node:fs/promises';
import test from 'ava';
import { detectPatchFormat, failingFile, filesTouched } from '../../harness/source/patch.ts';
import { stripDebianIgnoreBlock } from '../../harness/source/debian-source.ts';

const fixture = (name: string) => readFile(new URL(`../fixtures/patches/${name}`, import.meta.url), 'utf8');

test('format-patch output goes through git am, a bare diff through git apply', async (t) => {
  t.is(detectPatchFormat(await fixture('fault-group-ref-leak.patch')), 'mbox');
  t.is(detectPatchFormat(await fixture('fault-default-domain-warn.diff')), 'diff');
  t.is(detectPatchFormat('From: A <a@b>\nSubject: [PATCH] x\n\n---\n'), 'mbox');
});

test('files touched by a patch', async (t) => {
  t.deepEqual(filesTouched(await fixture('fault-group-ref-leak.patch')), ['drivers/iommu/iommu.c']);
});

test('the failing file is read out of git apply and git am output', (t) => {
  t.is(failingFile('error: patch failed: drivers/iommu/iommu.c:100\nerror: drivers/iommu/iommu.c: patch does not apply\n'), 'drivers/iommu/iommu.c');
  t.is(failingFile('error: drivers/vfio/x.c: does not exist in index\n'), 'drivers/vfio/x.c');
  t.is(failingFile('fatal: something else\n'), undefined);
});

test("Debian's ignore-everything block is stripped and the kernel's own rules stay", (t) => {
  const gitignore = '*.o\n/vmlinux\n\n# Debian packaging: ignore everything at the top level, since it isn\'t\n# included in our repository\n#\n/*\n!/debian/\n';
  t.is(stripDebianIgnoreBlock(gitignore), '*.o\n/vmlinux\n');
});
