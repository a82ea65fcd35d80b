// npm run soak: no false alarms under repetition. Runs the clean default
// kernel through the full matrix (every scenario on intel-iommu, virtio-iommu
// and no-iommu) N times, then a soak in one boot per vIOMMU: many cycles of
// vfio-bind-unbind and remove-rescan, and of pci-hotplug. A clean kernel must
// give 0 findings, 0 errors and no harness error. Prints the counts per
// scenario and writes out/soak.json.
//   tsx scripts/soak.ts [--rounds 10] [--cycles 200] [--hotplug-cycles 100] [--iommu intel,virtio,none] [--parallel N]
// --parallel: boots at once (default: as `run` does, one per core as memory allows).
import { mkdir, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { HarnessError } from '../harness/errors.ts';
import { createProgress } from '../harness/log.ts';
import { installReaper } from '../harness/machine/reaper.ts';
import { iommuModels, type IommuModel } from '../harness/machine/topology.ts';
import type { HarnessResult } from '../harness/report/result.ts';
import { defaultParallelBoots, runHarness } from '../harness/run.ts';
import type { Scenario } from '../harness/scenario/scenario.ts';
import { scenarioByName, scenarios } from '../scenarios/index.ts';

installReaper();
const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '10' },
    cycles: { type: 'string', default: '200' },
    'hotplug-cycles': { type: 'string', default: '100' },
    iommu: { type: 'string', default: iommuModels.join(',') },
    parallel: { type: 'string', default: String(defaultParallelBoots()) },
  },
});
const count = (name: string, text: string) => {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new Error(`--${name} takes a whole number, not ${text}`);
  return value;
};
const rounds = count('rounds', values.rounds);
const cycles = count('cycles', values.cycles);
const hotplugCycles = count('hotplug-cycles', values['hotplug-cycles']);
const parallelBoots = Math.max(1, count('parallel', values.parallel));
const iommus = values.iommu.split(',').map((name) => {
  if (!(iommuModels as readonly string[]).includes(name)) throw new Error(`unknown vIOMMU ${name}`);
  return name as IommuModel;
});
const progress = createProgress(process.stderr);

/** Counts for one phase and scenario, summed over its runs. */
interface Tally {
  runs: number;
  pass: number;
  fail: number;
  inconclusive: number;
  error: number;
  /** Reports that are not known issues, leaks and failed checks. */
  findings: number;
  /** Reports the known-issues file matched: shown, not failing. */
  known: number;
  titles: string[];
  errors: string[];
  /** Runs that come from a second boot, the first having lost its guest with nothing found: counted, and why. */
  retried: number;
  retriedWhy: string[];
}

interface Phase {
  name: string;
  runs: number;
  harnessErrors: string[];
  seconds: number;
  tallies: Map<string, Tally>;
}

const phases: Phase[] = [];

async function phase(name: string, times: number, selected: readonly Scenario[], phaseIommus: IommuModel[], phaseCycles?: number): Promise<void> {
  const current: Phase = { name, runs: 0, harnessErrors: [], seconds: 0, tallies: new Map() };
  phases.push(current);
  const started = Date.now();
  for (let round = 1; round <= times; round++) {
    progress.step(`soak: ${name} ${round}/${times}`);
    let result: HarnessResult;
    try {
      result = await runHarness({ patches: [], kconfigs: [], iommus: phaseIommus, scenarios: selected, ...(phaseCycles ? { cycles: phaseCycles } : {}), parallelBoots, progress });
    } catch (error) {
      if (!(error instanceof HarnessError)) throw error;
      current.harnessErrors.push(`${error.kind}: ${error.message}`);
      progress.warn(`soak: ${name} ${round}: harness error: ${error.message}`);
      continue;
    }
    current.runs++;
    for (const run of result.runs) {
      const key = `${run.iommu}/${run.scenario}`;
      const tally = current.tallies.get(key) ?? { runs: 0, pass: 0, fail: 0, inconclusive: 0, error: 0, findings: 0, known: 0, titles: [], errors: [], retried: 0, retriedWhy: [] };
      current.tallies.set(key, tally);
      tally.runs++;
      tally[run.verdict]++;
      const unknown = run.reports.filter((report) => !report.known);
      tally.findings += unknown.length + run.leaks.length + run.failedChecks.length;
      tally.known += run.reports.length - unknown.length;
      tally.titles.push(...unknown.map((report) => report.title), ...run.leaks.map((leak) => `leak of group ${leak.group} (${leak.devices.join(' ')})`), ...run.failedChecks);
      if (run.error) tally.errors.push(run.error);
      if (run.retried) {
        tally.retried++;
        tally.retriedWhy.push(run.retried);
        progress.warn(`soak: ${name} ${round}: ${key} ran again in a new boot: ${run.retried}`);
      }
      if (run.verdict !== 'pass') progress.warn(`soak: ${name} ${round}: ${key} ${run.verdict}${run.error ? `: ${run.error}` : ''} (${run.logs.console})`);
    }
  }
  current.seconds = (Date.now() - started) / 1000;
}

const soakScenarios = (names: string[]) => names.map((name) => scenarioByName(name)!);
const iommuIommus = iommus.filter((iommu) => iommu !== 'none');
if (rounds > 0) await phase('matrix', rounds, scenarios, iommus);
if (cycles > 0 && iommuIommus.length > 0) await phase(`soak x${cycles}`, 1, soakScenarios(['vfio-bind-unbind', 'remove-rescan']), iommuIommus, cycles);
if (hotplugCycles > 0 && iommuIommus.length > 0) await phase(`hotplug soak x${hotplugCycles}`, 1, soakScenarios(['pci-hotplug']), iommuIommus, hotplugCycles);

const lines: string[] = [];
const columns = ['phase', 'vIOMMU/scenario', 'runs', 'pass', 'fail', 'inconcl.', 'error', 'findings', 'known', 'retried'];
lines.push(columns.join('\t'));
for (const current of phases) {
  for (const [key, tally] of [...current.tallies].sort(([a], [b]) => a.localeCompare(b))) {
    lines.push([current.name, key, tally.runs, tally.pass, tally.fail, tally.inconclusive, tally.error, tally.findings, tally.known, tally.retried].join('\t'));
  }
  lines.push(`${current.name}: ${current.runs} harness run(s), ${current.harnessErrors.length} harness error(s), ${current.seconds.toFixed(0)} s`);
}
const all = phases.flatMap((current) => [...current.tallies.values()]);
const total = (field: 'findings' | 'error' | 'inconclusive' | 'retried') => all.reduce((sum, tally) => sum + tally[field], 0);
const harnessErrors = phases.reduce((sum, current) => sum + current.harnessErrors.length, 0);
lines.push(`total: ${total('findings')} finding(s), ${total('error')} error(s), ${total('inconclusive')} inconclusive, ${harnessErrors} harness error(s), ${total('retried')} run(s) from a second boot after a lost guest`);
for (const current of phases) {
  for (const [key, tally] of current.tallies) {
    for (const title of new Set(tally.titles)) lines.push(`finding: ${current.name} ${key}: ${title}`);
    for (const error of new Set(tally.errors)) lines.push(`error: ${current.name} ${key}: ${error}`);
    for (const why of new Set(tally.retriedWhy)) lines.push(`retried: ${current.name} ${key}: ${why}`);
  }
  for (const error of current.harnessErrors) lines.push(`harness error: ${current.name}: ${error}`);
}
process.stdout.write(`${lines.join('\n')}\n`);

await mkdir('out', { recursive: true });
await writeFile(
  'out/soak.json',
  `${JSON.stringify(
    { rounds, cycles, hotplugCycles, iommus, parallelBoots, phases: phases.map((current) => ({ ...current, tallies: Object.fromEntries(current.tallies) })) },
    null,
    2,
  )}\n`,
);
process.exitCode = total('findings') > 0 ? 1 : total('error') + harnessErrors > 0 ? 3 : total('inconclusive') > 0 ? 4 : 0;
