import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import test from 'ava';
import { judgeViommuText, viommuScenarioEvidence, withViommuLedger } from '../../harness/oracle/viommu-evidence.ts';

const fixture = (name: string) => gunzipSync(readFileSync(path.join(import.meta.dirname, '../fixtures/viommu', name))).toString('utf8');
const inScenario = (scenario: string) => (step: string | undefined) => step?.startsWith(`${scenario}/`) ?? false;

test('a scenario gets its own findings as viommu-state reports, placed in their steps', (t) => {
  const judgement = judgeViommuText(fixture('virtio-no-detach.trace.log.gz'));
  const evidence = viommuScenarioEvidence(judgement, ['0000:03:00.0'], inScenario('remove-rescan'));
  t.deepEqual(evidence.reports, [
    {
      kind: 'viommu-state',
      title: 'virtio-iommu endpoint 0000:03:00.0 still attached after its device left',
      text: evidence.reports[0]!.text,
      corrupted: false,
      step: 'remove-rescan/remove',
    },
  ]);
  t.deepEqual(evidence.inconclusive, []);
});

test('a clean boot: no report, and every removed device was judged', (t) => {
  const judgement = judgeViommuText(fixture('virtio-clean-shared-boot.trace.log.gz'));
  const evidence = viommuScenarioEvidence(judgement, ['0000:04:00.1', '0000:04:00.0'], inScenario('multifunction'));
  t.deepEqual(evidence, { reports: [], inconclusive: [] });
});

test('a removal the ledger could not judge makes the scenario inconclusive, with the reason', (t) => {
  t.deepEqual(viommuScenarioEvidence(judgeViommuText(undefined), ['0000:01:00.0'], inScenario('vfio-bind-unbind')).inconclusive, [
    'vIOMMU ledger blind: QEMU wrote no vIOMMU trace',
  ]);
  // A device the trace never saw leave (its console bytes lost) is not vouched for.
  const judgement = judgeViommuText(fixture('virtio-clean-shared-boot.trace.log.gz'));
  t.deepEqual(viommuScenarioEvidence(judgement, ['0000:09:00.0'], inScenario('vfio-bind-unbind')).inconclusive, [
    "vIOMMU ledger: the trace's console never showed 0000:09:00.0 leave, so its endpoint was not judged",
  ]);
  // A scenario that removed nothing relies on nothing the ledger could miss.
  t.deepEqual(viommuScenarioEvidence(judgeViommuText(undefined), [], inScenario('vfio-bind-unbind')), { reports: [], inconclusive: [] });
});

test('parse: a saved log judged with its trace gets the findings as reports and fails; a blind trace makes a pass inconclusive', (t) => {
  const passing = { verdict: 'pass' as 'pass' | 'fail' | 'inconclusive', reports: [] as object[], inconclusive: [] as string[], leaks: [] };
  const failed = withViommuLedger(passing, fixture('virtio-no-detach.trace.log.gz'), '/runs/x/virtio/viommu-trace.log');
  t.is(failed.verdict, 'fail');
  t.true(failed.reports.length >= 7);
  t.is(failed.viommu.iommu, 'virtio');
  t.is(failed.viommu.trace, '/runs/x/virtio/viommu-trace.log');
  t.deepEqual(failed.leaks, []);
  t.is(withViommuLedger(passing, fixture('virtio-clean-shared-boot.trace.log.gz'), 'trace').verdict, 'pass');
  const blind = withViommuLedger(passing, 'virtio_iommu_attach domain=1 endpoint=256\n', 'trace');
  t.is(blind.verdict, 'inconclusive');
  t.regex(blind.inconclusive[0] ?? '', /^vIOMMU ledger blind: the trace has no console bytes/);
});
