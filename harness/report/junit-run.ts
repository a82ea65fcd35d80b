// JUnit XML for one run (`--junit FILE`): a <testsuite> per vIOMMU, a
// <testcase classname="iommu.intel" name="vfio-bind-unbind"> per scenario run
// and one per skipped step (<skipped> with the reason). A finding is a
// <failure> whose text is the evidence; an error an <error>; an inconclusive
// run a <failure type="inconclusive"> with its reasons: never a pass, as the
// exit code says (4). The nightly's JUnit is harness/nightly/junit.ts. Pure.
import type { RenderContext } from './formats.ts';
import { testcaseXml, xmlEscape, type JUnitCase } from './junit-xml.ts';
import type { HarnessResult, ScenarioRun } from './result.ts';
import { findingsOf, notPassReason } from './run-facts.ts';

export function renderRunJUnit(result: HarnessResult, _context: RenderContext = {}): string {
  const cases = result.runs.flatMap(casesOf);
  const totals = (list: JUnitCase[]) =>
    `tests="${list.length}" failures="${list.filter((c) => c.outcome?.element === 'failure').length}" errors="${list.filter((c) => c.outcome?.element === 'error').length}" skipped="${list.filter((c) => c.outcome?.element === 'skipped').length}" time="${list.reduce((sum, c) => sum + c.seconds, 0).toFixed(1)}"`;
  const out = ['<?xml version="1.0" encoding="UTF-8"?>'];
  out.push(`<testsuites name="${xmlEscape(`iommu-harness ${result.kernel.release}`)}" ${totals(cases)}>`);
  const timestamp = result.provenance ? ` timestamp="${xmlEscape(result.provenance.startedAt)}"` : '';
  for (const iommu of [...new Set(result.runs.map((run) => run.iommu))]) {
    const suite = cases.filter((testcase) => testcase.classname === `iommu.${iommu}` || testcase.classname.startsWith(`iommu.${iommu}.`));
    out.push(`  <testsuite name="iommu.${xmlEscape(iommu)}" ${totals(suite)}${timestamp}>`);
    for (const testcase of suite) out.push(...testcaseXml(testcase));
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return `${out.join('\n')}\n`;
}

function casesOf(run: ScenarioRun): JUnitCase[] {
  const classname = `iommu.${run.iommu}`;
  const seconds = run.cost?.seconds ?? 0;
  const logs = [`console: ${run.logs.console}`, ...(run.logs.dmesg ? [`dmesg: ${run.logs.dmesg}`] : [])];
  const known = run.reports.filter((report) => report.known).map((report) => `known: ${report.title} (${report.known})`);
  const notes = [...(run.retried ? [`retried: ${run.retried}`] : []), ...run.notes.map((note) => `note: ${note}`)];
  const testcase: JUnitCase = { classname, name: run.scenario, seconds };
  const reason = notPassReason(run) ?? '';
  let main: JUnitCase;
  if (run.verdict === 'fail') {
    const findings = findingsOf(run);
    const text = findings.flatMap((finding) => [`${finding.title}${finding.step ? ` [${finding.step}]` : ''}`, ...(finding.report ? [finding.report.text, ''] : [])]);
    main = { ...testcase, outcome: { element: 'failure', message: reason, type: findings[0]?.report?.kind ?? findings[0]?.kind ?? 'fail', text: [...text, ...known, ...notes, ...logs].join('\n') } };
  } else if (run.verdict === 'error') {
    main = { ...testcase, outcome: { element: 'error', message: reason, type: 'error', text: [run.error ?? reason, ...notes, ...logs].join('\n') } };
  } else if (run.verdict === 'inconclusive') {
    main = { ...testcase, outcome: { element: 'failure', message: `inconclusive: ${reason}`, type: 'inconclusive', text: [...run.inconclusive, ...known, ...notes, ...logs].join('\n') } };
  } else {
    const out = [...known, ...run.inconclusive.map((reason) => `blind: ${reason}`), ...notes];
    main = out.length ? { ...testcase, systemOut: out.join('\n') } : testcase;
  }
  const skipped = (run.skippedSteps ?? []).map((step): JUnitCase => ({
    classname: `${classname}.${run.scenario}`,
    name: step.step.startsWith(`${run.scenario}/`) ? step.step.slice(run.scenario.length + 1) : step.step,
    seconds: 0,
    outcome: { element: 'skipped', message: step.reason },
  }));
  // A suite-running scenario's cases, each a testcase of its own under the scenario's class.
  const cases = (run.cases ?? []).map((row): JUnitCase => {
    const base = { classname: `${classname}.${run.scenario}.${row.suite}`, name: row.name, seconds: row.seconds ?? 0 };
    if (row.result === 'skip') return { ...base, outcome: { element: 'skipped', message: row.reason ?? 'skipped' } };
    if (row.result === 'ok') return base;
    const report = run.reports.find((candidate) => candidate.kind === 'selftest' && candidate.step === row.step && candidate.title.endsWith(`: ${row.name}`));
    if (report?.known) return { ...base, systemOut: `known: ${report.title} (${report.known})` };
    return { ...base, outcome: { element: 'failure', message: row.reason ?? 'not ok', type: 'selftest', text: [report?.text ?? row.reason ?? 'not ok', ...(report?.known ? [`known: ${report.known}`] : [])].join('\n') } };
  });
  return [main, ...skipped, ...cases];
}
