import test from 'ava';
import type { BisectResult, BisectStep } from '../../harness/bisect/bisect.ts';
import { evidenceLines } from '../../harness/bisect/evidence.ts';
import { renderBisect, renderStep } from '../../harness/bisect/render.ts';
import type { ScenarioRun } from '../../harness/report/result.ts';

const run = {
  iommu: 'intel',
  scenario: 'vfio-bind-unbind',
  verdict: 'fail',
  groups: [{ id: 4, devices: ['0000:01:00.0'], released: false }],
  leaks: [{ group: 4, devices: ['0000:01:00.0'], step: 'vfio-bind-unbind/remove' }],
  reports: [],
  notes: [],
  accel: 'tcg',
  logs: { console: '/runs/x/intel/console.log' },
} as unknown as ScenarioRun;

const console = [
  '[    0.936238] pci 0000:01:00.0: [1234:11e8] type 00 class 0x00ff00 conventional PCI endpoint',
  '[    1.203000] pci 0000:00:1f.3: Adding to iommu group 3',
  '[    1.203226] pci 0000:01:00.0: Adding to iommu group 4',
  '[    5.197322] iommu-harness: step vfio-bind-unbind/bind',
  '[    7.222391] iommu-harness: step vfio-bind-unbind/remove',
  '[    7.520413] iommu-harness: device-gone 0000:01:00.0',
].join('\n');

test('a leak is shown by its device joining the group, the step, the device leaving, and no release', (t) => {
  const lines = evidenceLines({ run, leak: run.leaks[0]! }, console);
  t.deepEqual(lines, [
    'intel/vfio-bind-unbind: LEAK: iommu group 4 (0000:01:00.0) never released after vfio-bind-unbind/remove',
    '    [    1.203226] pci 0000:01:00.0: Adding to iommu group 4',
    '    [    7.222391] iommu-harness: step vfio-bind-unbind/remove',
    '    [    7.520413] iommu-harness: device-gone 0000:01:00.0',
    '    (no "Releasing group 4" after 0000:01:00.0 left)',
  ]);
});

test('a report is shown by its own first lines', (t) => {
  const report = { kind: 'warning' as const, title: 'WARNING in iommu_group_release', text: 'WARNING: CPU: 1 PID: 53 at drivers/iommu/iommu.c:940\nCall Trace:', corrupted: false, step: 'vfio-bind-unbind/remove' };
  t.deepEqual(evidenceLines({ run, report }, console), [
    'intel/vfio-bind-unbind: WARNING: WARNING in iommu_group_release [vfio-bind-unbind/remove]',
    '    WARNING: CPU: 1 PID: 53 at drivers/iommu/iommu.c:940',
    '    Call Trace:',
  ]);
});

const step = (overrides: Partial<BisectStep>): BisectStep => ({
  commit: 'a'.repeat(40),
  subject: 'iommu: drop the group reference',
  role: 'step',
  verdict: 'bad',
  runs: 1,
  buildSeconds: 24.2,
  totalSeconds: 35.8,
  build: 'built',
  reason: 'intel/vfio-bind-unbind: LEAK: iommu group 4 (0000:01:00.0) never released after vfio-bind-unbind/remove (1 of 1 run(s))',
  logs: [],
  ...overrides,
});

test('each step prints its commit, subject, build time and result', (t) => {
  t.is(
    renderStep(step({})),
    `step      aaaaaaaaaaaa  iommu: drop the group reference\n          build 24 s, 1 run, 36 s in all: BAD: ${step({}).reason}\n`,
  );
  t.regex(renderStep(step({ build: 'failed', verdict: 'skip', runs: 0, buildSeconds: 12 })), /build failed after 12 s, 0 runs, .*SKIP/);
  t.regex(renderStep(step({ build: 'cached', buildSeconds: 0 })), /build cached, 1 run/);
});

test('the summary names the culprit, or the candidates when skips leave several', (t) => {
  const result: BisectResult = {
    culprit: { commit: 'a'.repeat(40), subject: 'iommu: drop the group reference' },
    signature: { kind: 'leak', scenario: 'vfio-bind-unbind', step: 'vfio-bind-unbind/remove', device: '0000:01:00.0' },
    expect: 'leak:vfio-bind-unbind/remove:0000:01:00.0',
    good: { commit: 'g'.repeat(40), subject: 'good' },
    bad: { commit: 'b'.repeat(40), subject: 'bad' },
    rangeLength: 8,
    steps: [step({})],
    evidence: ['intel/vfio-bind-unbind: LEAK: iommu group 4 (0000:01:00.0) never released'],
    builds: 4,
    totalSeconds: 200,
  };
  const text = renderBisect(result);
  t.regex(text, /culprit: a{40} iommu: drop the group reference/);
  t.regex(text, /check --expect 'leak:vfio-bind-unbind\/remove:0000:01:00\.0'/);
  t.regex(text, /8 commit\(s\) in range, 1 judged .* 4 build\(s\)/);
  const ambiguous = renderBisect({ ...result, culprit: null, candidates: [{ commit: 'c'.repeat(40), subject: 'skipped' }, result.culprit!] });
  t.regex(ambiguous, /no single culprit/);
  t.regex(ambiguous, /c{40} skipped/);
});
