import test from 'ava';
import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { kcidbOf, kcidbStatus, renderKcidb } from '../../harness/report/kcidb.ts';
import { leakRuns, lockdepRuns, passRuns, resultOf, warningRuns } from './report-fixtures.ts';

// Read at test time, never copied into the project (draft 7, $defs).
// ../shared beside the checkout (CI mounts it at /shared beside /project), read at test time, never copied in.
const schema = JSON.parse(readFileSync(new URL('../../../shared/schemas/kcidb.v5.3.schema.json', import.meta.url), 'utf8')) as object;
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;
const validate = addFormats(new Ajv({ allErrors: true, strict: false })).compile(schema);

const mixed = () =>
  resultOf([
    ...warningRuns(),
    ...lockdepRuns().slice(1).map((run) => ({ ...run, skippedSteps: [{ step: 'remove-rescan/iommufd', reason: 'the kernel has no iommufd (6.2)' }] })),
    ...leakRuns().slice(1).map((run) => ({ ...run, iommu: 'virtio' as const, verdict: 'inconclusive' as const, leaks: [], inconclusive: ['vfio-bind-unbind/remove: ** 3 printk messages dropped **: a report or group event may be missing'] })),
    ...passRuns().slice(1).map((run) => ({ ...run, scenario: 'pci-hotplug', verdict: 'error' as const, error: 'not run: the guest stopped answering SSH after vfio-bind-unbind/remove' })),
  ]);

test('KCIDB: the output validates against the 5.3 schema, for a mixed run and a passing one', (t) => {
  for (const result of [mixed(), resultOf(passRuns())]) {
    const data = JSON.parse(renderKcidb(result));
    t.true(validate(data), JSON.stringify(validate.errors, null, 2));
  }
  const wrong = JSON.parse(renderKcidb(mixed()));
  wrong.tests[0].status = 'INCONCLUSIVE';
  t.false(validate(wrong), 'the validator does reject what the schema does not allow');
});

test('KCIDB: a checkout with base, git describe, patch files, patchset hash and the cover letter\'s Message-ID; a build with its compiler and config', (t) => {
  const data = kcidbOf(mixed());
  const [checkout] = data.checkouts;
  t.is(checkout!.git_commit_hash, '1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d');
  t.is(checkout!.git_commit_name, 'v6.12.57-61-g1c2d3e4f5a6b');
  t.deepEqual(checkout!.patchset_files, [{ name: 'v2_20261128_dev_iommu_group_refcount.mbx', url: 'file:///home/dev/series/v2_20261128_dev_iommu_group_refcount.mbx' }]);
  // As `sha256sum *.patch | cut -c-64 | sha256sum` computes it.
  t.is(checkout!.patchset_hash, createHash('sha256').update(`${'d'.repeat(64)}\n`).digest('hex'));
  t.is(checkout!.message_id, '20261128101500.1234-1-dev@example.org');
  const [build] = data.builds;
  t.like(build, { architecture: 'x86_64', compiler: 'gcc (Debian 12.2.0-14+deb12u1) 12.2.0', config_name: 'lockdep', status: 'PASS', checkout_id: checkout!.id });
});

test('KCIDB: one test per scenario run and per known step, statuses mapped, the unknown ones MISS with the reason in misc', (t) => {
  const data = kcidbOf(mixed());
  const byPath = (path: string) => data.tests.filter((test) => test['path'] === path);
  t.is(byPath('iommu.intel.vfio_bind_unbind')[0]?.['status'], 'FAIL');
  t.is(byPath('iommu.intel.vfio_bind_unbind.remove')[0]?.['status'], 'FAIL');
  t.is(byPath('iommu.intel.remove_rescan')[0]?.['status'], 'FAIL');
  t.like(byPath('iommu.intel.remove_rescan.iommufd')[0], { status: 'SKIP', misc: { skipped: 'the kernel has no iommufd (6.2)' } });
  const blind = byPath('iommu.virtio.vfio_bind_unbind')[0]!;
  t.is(blind['status'], 'MISS');
  t.regex(String((blind['misc'] as Record<string, unknown>)['unknown_because']), /printk messages dropped/);
  const lost = byPath('iommu.intel.pci_hotplug')[0]!;
  t.is(lost['status'], 'MISS', 'a scenario never run behind a lost guest says nothing of the code');
  const failedScenario = mixed().runs.find((run) => run.scenario === 'pci-hotplug')!;
  t.is(kcidbStatus({ ...failedScenario, error: 'vfio-pci bind failed: No such device' }), 'ERROR', 'an error of the scenario itself stays ERROR');
  t.is(byPath('iommu.intel.boot')[0]?.['status'], 'PASS');
  t.regex(String(byPath('iommu.intel.remove_rescan')[0]?.['log_excerpt']), /-> #0 \(iommu_probe_device_lock\)/);
});

test('KCIDB: ids start with the origin and are the same for the same result; the origin is configurable and checked', (t) => {
  const first = kcidbOf(mixed());
  const again = kcidbOf(mixed());
  t.deepEqual(first.tests.map((test) => test['id']), again.tests.map((test) => test['id']));
  t.true(first.tests.every((test) => String(test['id']).startsWith(`iommu_harness:${first.checkouts[0]!.id.split(':')[1]}.`)));
  t.is(new Set(first.tests.map((test) => test['id'])).size, first.tests.length, 'unique ids');
  const mine = kcidbOf(mixed(), { origin: 'my_ci', runId: 'night-42' });
  t.is(mine.checkouts[0]!.id, 'my_ci:night-42');
  t.true([...mine.builds, ...mine.tests].every((object) => object.origin === 'my_ci'));
  t.throws(() => kcidbOf(mixed(), { origin: 'My-CI' }), { message: /lower-case letters, digits and underscores/ });
});

test('KCIDB: a known issue is an issue with an incident on the test it appeared in', (t) => {
  const data = kcidbOf(resultOf(passRuns()));
  t.is(data.issues.length, 1);
  t.like(data.issues[0], { version: 1, report_subject: 'WARNING in iommu_group_release', comment: 'the double put under test is triaged upstream' });
  const test = data.tests.find((candidate) => candidate['path'] === 'iommu.intel.vfio_bind_unbind')!;
  t.is(test['status'], 'PASS');
  t.like(data.incidents[0], { issue_id: data.issues[0]!['id'], issue_version: 1, test_id: test['id'], present: true });
});
