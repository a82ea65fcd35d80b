import test from 'ava';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { decodeWords, parsePatchMails } from '../../harness/report/mbox-headers.ts';
import { gatherProvenance, hashOfHashes, sha256 } from '../../harness/report/provenance.ts';

// What b4 am writes: a cover letter and two patches, a folded subject, an encoded name.
const series = [
  'From git@z Thu Jan  1 00:00:00 1970',
  'Subject: [PATCH v2 0/2] iommu: fix group refcounting on hot-remove',
  'From: =?utf-8?q?J=C3=B6rg_R=C3=B6del?= <joro@example.org>',
  'Date: Sat, 28 Nov 2026 10:15:00 +0100',
  'Message-Id: <20261128101500.1234-1-joro@example.org>',
  '',
  'The cover letter.',
  '',
  'From git@z Thu Jan  1 00:00:00 1970',
  'Subject: [PATCH v2 1/2] iommu: take the probe lock before the group mutex',
  ' in __iommu_group_remove_device()',
  'From: Jane Doe <jane@example.org>',
  'Message-ID:',
  ' <20261128101500.1234-2-jane@example.org>',
  '',
  'Body. A line saying',
  'Subject: not a header',
  '---',
  'diff --git a/drivers/iommu/iommu.c b/drivers/iommu/iommu.c',
  '',
  'From 1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d Mon Sep 17 00:00:00 2001',
  'From: Jane Doe <jane@example.org>',
  'Subject: =?UTF-8?B?W1BBVENIIHYyIDIvMl0gaW9tbXU6IGRyb3AgdGhl?=',
  ' =?UTF-8?B?IGdyb3VwIHJlZmVyZW5jZQ==?=',
  '',
  'diff --git a/x b/x',
].join('\n');

test('mbox headers: each mail\'s subject unfolded and decoded, its Message-ID without brackets, the cover letter marked', (t) => {
  const mails = parsePatchMails(series);
  t.deepEqual(
    mails.map((mail) => [mail.subject, mail.messageId, mail.cover]),
    [
      ['[PATCH v2 0/2] iommu: fix group refcounting on hot-remove', '20261128101500.1234-1-joro@example.org', true],
      ['[PATCH v2 1/2] iommu: take the probe lock before the group mutex in __iommu_group_remove_device()', '20261128101500.1234-2-jane@example.org', false],
      ['[PATCH v2 2/2] iommu: drop the group reference', undefined, false],
    ],
  );
  t.is(mails[0]!.from, 'Jörg Rödel <joro@example.org>');
  t.deepEqual(parsePatchMails('diff --git a/x b/x\n--- a/x\n+++ b/x\n'), [], 'a plain diff has no mail');
  t.is(decodeWords('=?iso-8859-1?q?caf=E9?= ok'), 'café ok');
});

test('provenance: the harness version, command line, fragments with their hashes, the base\'s git describe, the patches\' subjects; tools that answer', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'provenance-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const repo = path.join(dir, 'linux');
  const env = { GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };
  await execa('git', ['init', '-q', repo]);
  await writeFile(path.join(repo, 'Makefile'), 'VERSION = 6\n');
  await execa('git', ['-C', repo, 'add', 'Makefile']);
  await execa('git', ['-C', repo, 'commit', '-q', '-m', 'base'], { env });
  await execa('git', ['-C', repo, 'tag', '-a', 'v6.12', '-m', 'v6.12'], { env });
  const commit = (await execa('git', ['-C', repo, 'rev-parse', 'HEAD'])).stdout;
  const patch = path.join(dir, 'series.mbx');
  await writeFile(patch, series);
  const fragment = path.join(dir, 'extra.config');
  await writeFile(fragment, 'CONFIG_KASAN=y\n');

  const provenance = await gatherProvenance({
    commandLine: ['run', '--patch', patch],
    startedAt: new Date('2026-11-29T09:13:28.123Z'),
    profile: 'lockdep',
    kconfigs: [fragment],
    scenarios: ['vfio-bind-unbind'],
    machines: ['intel'],
    patches: [patch],
    kernelRepo: repo,
    kernelCommit: commit,
    // Any program that prints a version line stands in for QEMU and gcc here.
    qemuBinary: process.execPath,
    compilerBinary: path.join(dir, 'no-such-gcc'),
  });
  t.regex(provenance.harness.version, /^\d+\.\d+\.\d+/);
  t.is(provenance.startedAt, '2026-11-29T09:13:28.123Z');
  t.deepEqual(provenance.commandLine, ['run', '--patch', patch]);
  t.true(provenance.fragments.some((entry) => entry.name === 'kconfigs/base.config'), 'the standard fragments by their path in the checkout');
  t.deepEqual(provenance.fragments.at(-1), { name: fragment, sha256: sha256('CONFIG_KASAN=y\n') });
  t.is(provenance.fragmentsHash, hashOfHashes(provenance.fragments.map((entry) => entry.sha256)));
  t.deepEqual(provenance.kernel, { describe: 'v6.12', commit });
  t.is(provenance.qemu, process.version);
  t.is(provenance.compiler, undefined, 'a compiler that cannot run is absent, not a failure');
  t.is(provenance.patches[0]!.sha256, sha256(series));
  t.deepEqual(provenance.patches[0]!.mails.map((mail) => mail.messageId), ['20261128101500.1234-1-joro@example.org', '20261128101500.1234-2-jane@example.org', undefined]);
});
