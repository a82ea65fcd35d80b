// JUnit XML for CI dashboards: one <testcase classname="kernel.profile.iommu"
// name="scenario"> per matrix cell, a <failure> whose text is the evidence,
// an <error> when the harness could not judge the cell, <skipped> when it was
// inconclusive. A cell the same as in the baseline says so ("still erroring
// (as in the baseline)", "still inconclusive (as in the baseline)"). Pure.
import type { Finding, Night, NightCell } from './night.ts';
import { testcaseXml, xmlEscape, type JUnitCase } from '../report/junit-xml.ts';

export { xmlEscape };

const statusWords: Record<string, string> = { new: 'NEW', still: 'still failing' };

export function renderJUnit(night: Night): string {
  const bySignature = new Map(night.findings.map((finding) => [finding.signature, finding]));
  const seconds = (cell: NightCell) => night.runs.filter((run) => run.cell === cell.id).reduce((sum, run) => sum + run.seconds, 0);
  const suites = groupBy(night.cells, (cell) => `${cell.kernel}.${cell.profile}.${cell.iommu}`);
  const out = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const total = (predicate: (cell: NightCell) => boolean) => night.cells.filter(predicate).length;
  out.push(
    `<testsuites name="${xmlEscape(`iommu-harness nightly ${night.name}`)}" tests="${night.cells.length}" failures="${total((c) => c.verdict === 'fail')}" errors="${total((c) => c.verdict === 'error' || c.verdict === 'not-run')}" time="${night.cells.reduce((sum, cell) => sum + seconds(cell), 0).toFixed(1)}">`,
  );
  for (const [classname, cells] of suites) {
    const failures = cells.filter((cell) => cell.verdict === 'fail').length;
    const errors = cells.filter((cell) => cell.verdict === 'error' || cell.verdict === 'not-run').length;
    const time = cells.reduce((sum, cell) => sum + seconds(cell), 0);
    out.push(`  <testsuite name="${xmlEscape(classname)}" tests="${cells.length}" failures="${failures}" errors="${errors}" time="${time.toFixed(1)}" timestamp="${xmlEscape(night.startedAt)}">`);
    for (const cell of cells) out.push(...testcaseXml(nightCase(night, cell, classname, seconds(cell), bySignature)));
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return `${out.join('\n')}\n`;
}

function nightCase(night: Night, cell: NightCell, classname: string, seconds: number, bySignature: Map<string, Finding>): JUnitCase {
  const testcase = { classname, name: cell.scenario, seconds };
  const logs = logLines(night, cell);
  if (cell.verdict === 'fail') {
    const findings = cell.findings.map((signature) => bySignature.get(signature)).filter((finding): finding is Finding => Boolean(finding));
    const first = findings[0];
    const message = first ? first.title + (findings.length > 1 ? ` (+${findings.length - 1} more)` : '') : 'failed';
    const text = [
      `${statusWords[cell.status] ?? cell.status}; failed ${cell.failedCycles} of ${cell.runs.length} cycle(s)`,
      ...findings.flatMap((finding) => ['', `${finding.title}  [${night.diff.new.includes(finding.signature) ? 'new' : 'still failing'}]`, finding.evidence]),
      '',
      ...logs,
    ].join('\n');
    return { ...testcase, outcome: { element: 'failure', message, type: first?.reportKind ?? first?.kind ?? 'fail', text } };
  }
  if (cell.verdict === 'error' || cell.verdict === 'not-run') {
    const errors = night.runs.filter((run) => run.cell === cell.id && run.error).map((run) => `${run.unit}: ${run.error!.kind}: ${run.error!.message}${run.error!.log ? ` (log: ${run.error!.log})` : ''}`);
    const still = cell.status === 'still-error' || cell.status === 'still-not-run';
    const first = cell.verdict === 'not-run' ? 'not run' : (night.runs.find((run) => run.cell === cell.id && run.error)?.error?.message ?? 'could not be judged');
    const message = still ? `still ${cell.verdict === 'not-run' ? 'not run' : 'erroring'} (as in the baseline): ${first}` : first;
    const status = still ? `as in the baseline ${night.baseline?.name ?? ''}: ${(cell.errors ?? []).join('; ')}` : `new against ${night.baseline ? `the baseline ${night.baseline.name}` : 'no baseline'}`;
    return { ...testcase, outcome: { element: 'error', message, type: cell.verdict === 'not-run' ? 'not-run' : 'infrastructure', text: [status, ...errors, '', ...logs].join('\n') } };
  }
  if (cell.verdict === 'inconclusive') {
    // No finding, but a check the verdict relies on was blind: not a pass.
    const reasons = night.runs.filter((run) => run.cell === cell.id).flatMap((run) => run.results.flatMap((result) => (result.inconclusive ?? []).map((reason) => `${run.unit}: ${result.scenario}: ${reason}`)));
    const still = cell.status === 'still-inconclusive';
    const message = `${still ? 'still inconclusive (as in the baseline)' : 'inconclusive'}: ${reasons[0] ?? 'a check was blind'}`;
    const status = still ? `as in the baseline ${night.baseline?.name ?? ''}: ${(cell.inconclusive ?? []).join('; ')}` : `new against ${night.baseline ? `the baseline ${night.baseline.name}` : 'no baseline'}`;
    return { ...testcase, outcome: { element: 'skipped', message }, systemOut: [status, ...reasons, '', ...logs].join('\n') };
  }
  const known = night.known.filter((finding) => finding.cell === cell.id);
  return known.length ? { ...testcase, systemOut: known.map((finding) => `known: ${finding.title} (${finding.known})`).join('\n') } : testcase;
}

function logLines(night: Night, cell: NightCell): string[] {
  return night.runs
    .filter((run) => run.cell === cell.id)
    .flatMap((run) => [run.logs.console && `${run.unit} console: ${run.logs.console}`, run.logs.dmesg && `${run.unit} dmesg: ${run.logs.dmesg}`])
    .filter((line): line is string => Boolean(line));
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    groups.set(k, [...(groups.get(k) ?? []), item]);
  }
  return groups;
}
