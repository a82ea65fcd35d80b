// Captures the oracle's real-log fixtures: boots fault-injected kernels (and
// two destructive scenarios: a hung task and a panic) through the harness and
// keeps the whole console (dmesg with the kmemleak dump for leakcheck), with
// the findings the harness made as the machine headers (TITLE, REPORTS, LEAKS...).
// Those repeat whatever the oracle got wrong, so they are not the expectation
// alone: a person reads the log and writes EXPECT-REPORTS and EXPECT-LEAKS
// (test/unit/oracle-reports.test.ts fails on a capture without them, and on
// machine headers they contradict). A re-capture keeps the person's lines.
//   tsx scripts/capture-fixtures.ts [NAME...]
import { readFile, writeFile } from 'node:fs/promises';
import { parseHeaderLog } from '../test/fixtures/oracle/header-log.ts';
import { fileURLToPath } from 'node:url';
import { profileFragment } from '../harness/build/index.ts';
import { createProgress } from '../harness/log.ts';
import { installReaper } from '../harness/machine/reaper.ts';
import { eduDevice, rootPort } from '../harness/machine/topology.ts';
import { parseKernelLog } from '../harness/oracle/index.ts';
import { runHarness } from '../harness/run.ts';
import type { Scenario } from '../harness/scenario/scenario.ts';
import { scenarioByName } from '../scenarios/index.ts';

installReaper();
const fixtures = new URL('../test/fixtures/oracle/reports/', import.meta.url);
const patch = (name: string) => fileURLToPath(new URL(`../test/fixtures/patches/${name}`, import.meta.url));
const oraclePatch = (name: string) => fileURLToPath(new URL(`../test/fixtures/oracle/patches/${name}`, import.meta.url));
const scenario = (name: string) => scenarioByName(name)!;

/**
 * vfio-pci's removal waits interruptibly for the VFIO fd to close, which the
 * hung-task detector does not flag; a rescan queued behind it waits on
 * pci_rescan_remove_lock uninterruptibly, and that is what gets reported once
 * it has waited longer than the hung-task timeout (30 s in debug.config).
 */
const hungRescan: Scenario = {
  name: 'hung-rescan',
  proves: 'a rescan stuck behind a removal blocked by an open VFIO fd is reported as a hung task',
  iommus: ['intel'],
  topology: { devices: [rootPort('rp-hung', 1), eduDevice('edu-hung', 'rp-hung')] },
  async run(guest) {
    await guest.mark('open');
    const bdf = await guest.bdfOf('edu-hung');
    await guest.bind(bdf, 'vfio-pci');
    const hold = await guest.vfioHold(bdf, 100_000);
    await guest.mark('remove-and-rescan');
    const write = (file: string) => guest.run(['sh', '-c', 'echo 1 > "$1"', 'sh', file], 180_000);
    const removal = write(`/sys/bus/pci/devices/${bdf}/remove`);
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const rescan = write('/sys/bus/pci/rescan');
    await Promise.all([hold.done, removal, rescan]);
  },
};

/** Crashes the kernel on purpose: panic=-1 and -no-reboot must end QEMU and the run must say why. */
const sysrqPanic: Scenario = {
  name: 'sysrq-panic',
  proves: 'a kernel panic ends the machine and is reported',
  iommus: ['intel'],
  topology: { devices: [] },
  async run(guest) {
    await guest.mark('crash');
    await guest.write('/proc/sysrq-trigger', 'c');
  },
};

interface Case {
  name: string;
  about: string;
  patches: string[];
  scenario: Scenario;
  profile?: string;
}

const cases: Case[] = [
  { name: 'real-warning-default-domain', about: 'fault-default-domain-warn.diff, vfio-bind-unbind', patches: [patch('fault-default-domain-warn.diff')], scenario: scenario('vfio-bind-unbind') },
  { name: 'real-lockdep-remove-inversion', about: 'fault-remove-lock-inversion.patch, remove-rescan', patches: [patch('fault-remove-lock-inversion.patch')], scenario: scenario('remove-rescan') },
  { name: 'real-refcount-vfio-double-put', about: 'fault-vfio-double-put.patch, vfio-bind-unbind', patches: [patch('fault-vfio-double-put.patch')], scenario: scenario('vfio-bind-unbind') },
  { name: 'real-group-leak', about: 'fault-group-ref-leak.patch, vfio-bind-unbind', patches: [patch('fault-group-ref-leak.patch')], scenario: scenario('vfio-bind-unbind') },
  { name: 'real-kmemleak-device-name', about: 'fault-group-device-name-leak.diff, vfio-bind-unbind, leakcheck profile', patches: [patch('fault-group-device-name-leak.diff')], scenario: scenario('vfio-bind-unbind'), profile: 'leakcheck' },
  // A report the kernel never closes (no end marker), for the report-boundary tests.
  { name: 'real-atomic-sleep-release', about: 'fault-atomic-sleep-release.diff (test/fixtures/oracle/patches), remove-rescan', patches: [oraclePatch('fault-atomic-sleep-release.diff')], scenario: scenario('remove-rescan') },
  { name: 'real-hang-rescan-behind-removal', about: 'a rescan queued behind a removal blocked 100 s by an open VFIO fd', patches: [], scenario: hungRescan },
  { name: 'real-panic-sysrq', about: 'echo c > /proc/sysrq-trigger', patches: [], scenario: sysrqPanic },
];

const wanted = process.argv.slice(2);
const progress = createProgress(process.stderr);
for (const fixture of cases.filter((candidate) => wanted.length === 0 || wanted.includes(candidate.name))) {
  progress.step(`capturing ${fixture.name}`);
  const result = await runHarness({
    patches: fixture.patches,
    kconfigs: fixture.profile ? [await profileFragment(fixture.profile)] : [],
    iommus: ['intel'],
    scenarios: [fixture.scenario],
    progress,
  });
  const run = result.runs.find((candidate) => candidate.scenario === fixture.scenario.name)!;
  const source = run.logs.dmesg && fixture.profile === 'leakcheck' ? run.logs.dmesg : run.logs.console;
  const text = await readFile(source, 'utf8');
  // The whole boot: group accounting needs the groups made before the first step.
  const log = text;
  const parsed = parseKernelLog(log);
  const [report] = parsed.reports;
  const headers = [
    ...(report ? [`TITLE: ${report.title}`, `KIND: ${report.kind}`] : []),
    ...(report?.location ? [`LOCATION: ${report.location}`] : []),
    ...(report?.guiltyFrame ? [`FRAME: ${report.guiltyFrame}`] : []),
    ...(report?.step ? [`STEP: ${report.step}`] : []),
    `REPORTS: ${parsed.reports.length}`,
    `LEAKS: ${run.leaks.length}`,
    `# Captured by scripts/capture-fixtures.ts from a real ${result.kernel.release} boot under QEMU (intel-iommu, ${run.accel}):`,
    `# ${fixture.about}. Run verdict ${result.verdict}${run.error ? `; ${run.error}` : ''}.`,
    'SOURCE: captured',
    ...(await humanReading(new URL(`${fixture.name}.log`, fixtures))),
  ];
  await writeFile(new URL(`${fixture.name}.log`, fixtures), `${headers.join('\n')}\n\n${log}`);
  progress.step(`${fixture.name}: ${report?.title ?? 'no report'}, ${run.leaks.length} leak(s)`);
}

/** The EXPECT-* lines a person wrote into the previous capture, or a reminder that they are missing. */
async function humanReading(file: URL): Promise<string[]> {
  const previous = await readFile(file, 'utf8').catch(() => '');
  const blank = previous.search(/\r?\n\r?\n/);
  const head = (blank < 0 ? previous : previous.slice(0, blank)).split('\n');
  const kept = head.filter((line) => /^EXPECT-[A-Z]+:|^# EXPECT-/.test(line));
  const { headers } = parseHeaderLog(previous);
  if (headers.has('EXPECT-REPORTS') && headers.has('EXPECT-LEAKS')) return kept;
  return ['# EXPECT-REPORTS: and EXPECT-LEAKS: missing: read the log and write them (the tests fail until then).'];
}
