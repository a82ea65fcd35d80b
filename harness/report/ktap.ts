// KTAP version 1 (the kernel's Documentation/dev-tools/ktap.rst, what kselftest
// and KUnit print) for one run: one test line per vIOMMU x scenario, subtests
// for the steps the result knows (a step a finding came in, a skipped step
// with `# SKIP` and its reason). Only a pass is `ok`: inconclusive and error
// are `not ok` with the reason. Pure.
import type { RenderContext } from './formats.ts';
import type { HarnessResult, ScenarioRun } from './result.ts';
import { findingsOf, knownSteps, notPassReason } from './run-facts.ts';

export function renderKtap(result: HarnessResult, _context: RenderContext = {}): string {
  const out = ['KTAP version 1', `# iommu-harness${result.provenance ? ` ${result.provenance.harness.version}` : ''}: kernel ${result.kernel.release} from ${result.kernel.source}`];
  for (const reason of result.inconclusive ?? []) out.push(`# inconclusive: ${oneLine(reason)}`);
  out.push(`1..${result.runs.length}`);
  result.runs.forEach((run, index) => out.push(...testLines(run, index + 1)));
  return `${out.join('\n')}\n`;
}

function testLines(run: ScenarioRun, number: number): string[] {
  const name = `${run.iommu}.${run.scenario}`;
  const lines: string[] = [];
  const steps = knownSteps(run);
  if (run.cases?.length) {
    // A suite-running scenario's subtests are its cases, as the suites printed them.
    lines.push('    KTAP version 1', `    # Subtest: ${name}`, `    1..${run.cases.length}`);
    run.cases.forEach((row, index) => {
      const caseName = testName(`${row.suite}.${row.name}`);
      if (row.result === 'skip') lines.push(`    ok ${index + 1} ${caseName} # SKIP ${oneLine(row.reason ?? 'skipped')}`);
      else if (row.result === 'ok') lines.push(`    ok ${index + 1} ${caseName}`);
      else {
        const known = run.reports.find((report) => report.kind === 'selftest' && report.known && report.step === row.step && report.title.endsWith(`: ${row.name}`))?.known;
        lines.push(...(row.reason ? [`    # ${oneLine(row.reason)}`] : []), `    not ok ${index + 1} ${caseName}${known ? ` # TODO known: ${oneLine(known)}` : ''}`);
      }
    });
  } else if (steps.length) {
    lines.push('    KTAP version 1', `    # Subtest: ${name}`, `    1..${steps.length}`);
    steps.forEach((step, index) => {
      if (step.status === 'skip') lines.push(`    ok ${index + 1} ${testName(step.name)} # SKIP ${oneLine(step.why.join('; '))}`);
      else if (step.status === 'pass') lines.push(`    ok ${index + 1} ${testName(step.name)}`);
      else lines.push(...step.why.map((why) => `    # ${oneLine(why)}`), `    not ok ${index + 1} ${testName(step.name)}`);
    });
  }
  for (const finding of findingsOf(run)) lines.push(`# ${name}: ${oneLine(finding.title)}${finding.step ? ` [${finding.step}]` : ''}`);
  for (const report of run.reports.filter((candidate) => candidate.known)) lines.push(`# ${name}: known: ${oneLine(report.title)} (${oneLine(report.known ?? '')})`);
  for (const reason of run.inconclusive) lines.push(`# ${name}: ${run.verdict === 'inconclusive' ? 'inconclusive' : 'blind'}: ${oneLine(reason)}`);
  if (run.retried) lines.push(`# ${name}: retried: ${oneLine(run.retried)}`);
  lines.push(`# ${name}: console: ${run.logs.console}`);
  const reason = notPassReason(run);
  if (reason === undefined) lines.push(`ok ${number} ${name}`);
  else lines.push(`not ok ${number} ${name} # ${run.verdict === 'fail' ? 'FAIL' : run.verdict.toUpperCase()}: ${oneLine(reason)}`);
  return lines;
}

// A KTAP line is one line, and `#` starts its directive: a name keeps neither.
function testName(name: string): string {
  return name.replace(/#/g, '_').replace(/\s+/g, '_');
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' / ');
}
