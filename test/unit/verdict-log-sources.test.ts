// Console and dmesg as evidence: which capture the verdict reads what from, and what a hole in
// the log or a kernel without its group lifecycle messages leaves provable.
import test from 'ava';
import { parseKnownIssues } from '../../harness/oracle/index.ts';
import { judgeBoot, unusedKnownIssues, type BootEvidence, type ScenarioOutcome } from '../../harness/report/verdict.ts';

const boot = [
  '[    0.000000] Linux version 6.12.117+ (iommu-harness@localhost) #12 SMP',
  '[    0.512000] iommu: Allocated group 0',
  '[    0.512100] pci 0000:00:00.0: Adding to iommu group 0',
  '[    0.513000] iommu: Allocated group 3',
  '[    0.513100] pci 0000:01:00.0: Adding to iommu group 3',
];
const warn = (at: string) => [
  `[${at}] ------------[ cut here ]------------`,
  `[${at}] WARNING: CPU: 1 PID: 53 at drivers/iommu/iommu.c:940 iommu_group_release+0x5b/0x7e`,
  `[${at}] RIP: 0010:iommu_group_release+0x5b/0x7e`,
  `[${at}] Call Trace:`,
  `[${at}]  <TASK>`,
  `[${at}]  kobject_put+0xa3/0x190`,
  `[${at}]  </TASK>`,
  `[${at}] ---[ end trace 0000000000000000 ]---`,
];
const outcome = (scenario: string, extra: Partial<ScenarioOutcome> = {}): ScenarioOutcome => ({ scenario, goneDevices: [], devices: [], ...extra });

function evidence(console: string[], overrides: Partial<BootEvidence> = {}): BootEvidence {
  return { iommu: 'intel', accel: 'tcg', console: console.join('\n'), consolePath: 'console.log', outcomes: [], known: [], ...overrides };
}

test('a report only dmesg has is not hidden by the same title the console showed in another scenario', (t) => {
  // Scenario a's WARN is known there; b's copy of the same WARN reached only dmesg (the console had
  // already moved on): it is b's finding, and a's entry still counts as used.
  const a = ['[    5.000000] iommu-harness: step a/bind', ...warn('    5.100000')];
  const b = ['[    6.000000] iommu-harness: step b/bind'];
  const known = parseKnownIssues('WARNING in iommu_group_release | scenario=a  # triaged in a only');
  const runs = judgeBoot(
    evidence([...boot, ...a, ...b], { dmesg: [...boot, ...a, ...b, ...warn('    6.100000')].join('\n'), outcomes: [outcome('a'), outcome('b')], known }),
  );
  const verdicts = Object.fromEntries(runs.map((run) => [run.scenario, run.verdict]));
  t.deepEqual(verdicts, { boot: 'pass', a: 'pass', b: 'fail' });
  t.like(runs.find((run) => run.scenario === 'b')?.reports[0], { title: 'WARNING in iommu_group_release', step: 'b/bind' });
  t.falsy(runs.find((run) => run.scenario === 'b')?.reports[0]?.known);
  t.deepEqual(unusedKnownIssues(known, runs), []);
  // The same report in both captures of one step is one report.
  const once = judgeBoot(evidence([...boot, ...a], { dmesg: [...boot, ...a].join('\n'), outcomes: [outcome('a')] }));
  t.is(once.find((run) => run.scenario === 'a')?.reports.length, 1);
});
