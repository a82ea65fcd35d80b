// The terminal table: one row per vIOMMU x scenario, then the evidence.
import { describePreemption } from '../build/preemption.ts';
import type { HarnessResult, ScenarioRun } from './result.ts';

export function renderTable(result: HarnessResult): string {
  const header = ['iommu', 'scenario', 'verdict', 'groups', 'released', 'leaked', 'reports'];
  const rows = result.runs.map((run) => [
    run.iommu,
    run.scenario,
    run.verdict.toUpperCase() + (run.skippedSteps?.length ? ` (${run.skippedSteps.length} step(s) skipped)` : '') + caseSkips(run),
    String(run.groups.length),
    String(run.groups.filter((group) => group.released).length),
    String(run.leaks.length),
    String(run.reports.filter((report) => !report.known).length) + knownSuffix(run),
  ]);
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)));
  const line = (cells: string[]) => cells.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd();
  const out = [line(header), line(widths.map((width) => '-'.repeat(width))), ...rows.map(line)];
  const details = result.runs.flatMap(evidence);
  if (details.length) out.push('', ...details);
  for (const entry of result.unusedKnownIssues ?? []) out.push(`known issue matched nothing in this run (stale, or scoped too narrowly): ${entry}`);
  out.push(...seriesLines(result));
  const packageVersion = result.kernel.packageVersion ? ` (${result.kernel.packageVersion})` : '';
  out.push('', `kernel ${result.kernel.release} from ${result.kernel.source}${packageVersion}${result.kernel.patches.length ? ` + ${result.kernel.patches.length} patch(es)` : ''}`);
  if (result.kernel.preemption) out.push(describePreemption(result.kernel.preemption));
  // Files of the patch the kernel did not build or no selected machine ran: the verdict does not speak for them.
  for (const entry of result.patchCoverage?.files.filter((file) => file.note) ?? []) out.push(`patch file ${entry.file}: ${entry.note}`);
  for (const reason of result.inconclusive ?? []) out.push(`INCONCLUSIVE: ${reason}`);
  out.push(`verdict: ${result.verdict.toUpperCase()}`);
  return `${out.join('\n')}\n`;
}

/** A pass covers the cases that ran: the verdict says how many did not. */
function caseSkips(run: ScenarioRun): string {
  const skipped = (run.cases ?? []).filter((row) => row.result === 'skip').length;
  return skipped ? ` (${skipped} case(s) skipped)` : '';
}

function knownSuffix(run: ScenarioRun): string {
  const known = run.reports.filter((report) => report.known).length;
  return known ? ` (+${known} known)` : '';
}

function evidence(run: ScenarioRun): string[] {
  const where = `${run.iommu}/${run.scenario}`;
  const lines: string[] = [];
  if (run.error) lines.push(`${where}: error: ${run.error}`);
  // Shown whatever the verdict: a pass next to a blind check would be a claim without evidence.
  for (const reason of run.inconclusive) lines.push(`${where}: ${run.verdict === 'inconclusive' ? 'INCONCLUSIVE' : 'blind'}: ${reason}`);
  for (const leak of run.leaks) {
    lines.push(`${where}: LEAK: iommu group ${leak.group} (${leak.devices.join(', ')}) never released${leak.step ? ` after ${leak.step}` : ''}`);
    if (leak.introducedBy) lines.push(`    introduced by ${leak.introducedBy.subject}`);
  }
  for (const report of run.reports) {
    const fault = report.device ? ` (device ${report.device}${report.address ? `, address ${report.address}` : ''})` : '';
    const repeats = report.repeats ? ` (printed ${report.repeats + 1} times)` : '';
    lines.push(`${where}: ${report.known ? 'known' : report.kind.toUpperCase()}: ${report.title}${fault}${report.step ? ` [${report.step}]` : ''}${repeats}${report.known ? ` (${report.known})` : ''}`);
    if (report.known) continue;
    if (report.introducedBy) lines.push(`    introduced by ${report.introducedBy.subject}`);
    const located = report.frames?.filter((frame) => frame.location) ?? [];
    if (located.length) lines.push(...located.slice(0, 6).map((frame) => `    at ${frame.function} (${frame.location})`));
    else lines.push(...report.text.split('\n').slice(0, 6).map((text) => `    ${text}`));
  }
  for (const skipped of run.skippedSteps ?? []) lines.push(`${where}: skipped step ${skipped.step}: ${skipped.reason}`);
  lines.push(...caseLines(run, where));
  for (const check of run.failedChecks) lines.push(`${where}: CHECK FAILED: ${check}`);
  for (const note of run.notes) lines.push(`${where}: note: ${note}`);
  if (lines.length) lines.push(`${where}: console: ${run.logs.console}`);
  return lines;
}

/**
 * A suite-running scenario's cases: the counts per suite program with its time (and what the budget
 * left unreached), each skip reason once with how many cases gave it; a failing case is a report
 * above (SELFTEST: selftest failure in SUITE: CASE), named there.
 */
export function caseLines(run: ScenarioRun, where: string): string[] {
  if (!run.cases && !run.suites) return [];
  const cases = run.cases ?? [];
  const count = (list: typeof cases, result: string) => list.filter((row) => row.result === result).length;
  const lines = [`${where}: cases: ${count(cases, 'ok')} ok, ${count(cases, 'not ok')} not ok, ${count(cases, 'skip')} skipped, of ${cases.length}`];
  for (const suite of run.suites ?? []) {
    const own = cases.filter((row) => row.suite === suite.name);
    const budget = suite.notReached ? `, ${suite.notReached} not reached within the ${suite.budgetSeconds ?? 0} s budget` : '';
    lines.push(`${where}:   ${suite.name}: ${count(own, 'ok')} ok, ${count(own, 'not ok')} not ok, ${count(own, 'skip')} skipped of ${suite.planned} in ${suite.seconds.toFixed(1)} s${budget}`);
  }
  const reasons = new Map<string, number>();
  for (const row of cases.filter((candidate) => candidate.result === 'skip')) reasons.set(row.reason ?? 'skipped', (reasons.get(row.reason ?? 'skipped') ?? 0) + 1);
  for (const [reason, times] of reasons) lines.push(`${where}:   skipped (${times}): ${reason}`);
  return lines;
}

/** With --each-patch: each patch's verdict with the series up to it, and what it brought or took away. */
function seriesLines(result: HarnessResult): string[] {
  if (!result.series) return [];
  const lines = ['', 'patch by patch (--each-patch):'];
  for (const cover of result.series.skipped) lines.push(`  skipped ${cover} (cover letter)`);
  for (const step of result.series.patches) {
    lines.push(`  ${step.subject}: ${step.verdict.toUpperCase()}${step.introduced.length || step.gone.length ? '' : ' (nothing new)'}`);
    for (const finding of step.introduced) lines.push(`    brings ${finding}`);
    for (const finding of step.gone) lines.push(`    takes away ${finding}`);
  }
  return lines;
}
