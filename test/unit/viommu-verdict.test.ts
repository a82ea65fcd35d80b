// The verdict with the third witness: real consoles and traces of one boot, judged together.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import test from 'ava';
import { judgeBoot, type BootEvidence } from '../../harness/report/verdict.ts';

const fixture = (name: string) => gunzipSync(readFileSync(path.join(import.meta.dirname, '../fixtures/viommu', name))).toString('utf8');

function evidence(name: string, viommuTrace: string | undefined): BootEvidence {
  return {
    iommu: 'virtio',
    accel: 'tcg',
    console: fixture(`${name}.console.log.gz`),
    consolePath: `/runs/${name}/virtio/console.log`,
    outcomes: [{ scenario: 'vfio-bind-unbind', goneDevices: ['0000:01:00.0'], devices: ['0000:01:00.0'] }],
    known: [],
    ...(viommuTrace !== undefined ? { viommuTrace } : {}),
  };
}

const run = (runs: ReturnType<typeof judgeBoot>) => runs.find((candidate) => candidate.scenario === 'vfio-bind-unbind')!;

test('a released endpoint the device model keeps fails the scenario, though the guest\'s witnesses pass it', (t) => {
  const judged = run(judgeBoot(evidence('virtio-no-detach', fixture('virtio-no-detach.trace.log.gz'))));
  t.is(judged.verdict, 'fail');
  t.deepEqual(judged.leaks, []);
  t.deepEqual(
    judged.reports.map((report) => [report.kind, report.title, report.step]),
    [['viommu-state', 'virtio-iommu endpoint 0000:01:00.0 still attached after its device left', 'vfio-bind-unbind/remove']],
  );
  // Without the trace the same boot passes: this finding is the third witness's alone.
  t.is(run(judgeBoot(evidence('virtio-no-detach', undefined))).verdict, 'pass');
});

test('the clean kernel passes with the ledger on; a boot whose trace is missing is inconclusive, with the reason', (t) => {
  t.is(run(judgeBoot(evidence('virtio-clean-shared-boot', fixture('virtio-clean-shared-boot.trace.log.gz')))).verdict, 'pass');
  const blind = run(judgeBoot(evidence('virtio-clean-shared-boot', '')));
  t.is(blind.verdict, 'inconclusive');
  t.deepEqual(blind.inconclusive, ['vIOMMU ledger blind: QEMU wrote no vIOMMU trace']);
});
