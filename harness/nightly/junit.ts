// JUnit XML for CI dashboards: one <testcase classname="kernel.profile.iommu"
// name="scenario"> per matrix cell, a <failure> whose text is the evidence,
// an <error> when the harness could not judge the cell. Pure.
import type { Finding, Night, NightCell } from './night.ts';

// XML 1.0 cannot carry most control characters even escaped; kernel consoles have them.
export function xmlEscape(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

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
    for (const cell of cells) {
      const open = `    <testcase classname="${xmlEscape(classname)}" name="${xmlEscape(cell.scenario)}" time="${seconds(cell).toFixed(1)}"`;
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
        out.push(`${open}>`, `      <failure message="${xmlEscape(message)}" type="${xmlEscape(first?.reportKind ?? first?.kind ?? 'fail')}">${xmlEscape(text)}</failure>`, '    </testcase>');
      } else if (cell.verdict === 'error' || cell.verdict === 'not-run') {
        const errors = night.runs.filter((run) => run.cell === cell.id && run.error).map((run) => `${run.unit}: ${run.error!.kind}: ${run.error!.message}${run.error!.log ? ` (log: ${run.error!.log})` : ''}`);
        const message = cell.verdict === 'not-run' ? 'not run' : (night.runs.find((run) => run.cell === cell.id && run.error)?.error?.message ?? 'could not be judged');
        out.push(`${open}>`, `      <error message="${xmlEscape(message)}" type="${cell.verdict === 'not-run' ? 'not-run' : 'infrastructure'}">${xmlEscape([...errors, '', ...logs].join('\n'))}</error>`, '    </testcase>');
      } else if (cell.verdict === 'inconclusive') {
        // No finding, but a check the verdict relies on was blind: not a pass.
        const reasons = night.runs.filter((run) => run.cell === cell.id).flatMap((run) => run.results.flatMap((result) => (result.inconclusive ?? []).map((reason) => `${run.unit}: ${result.scenario}: ${reason}`)));
        out.push(`${open}>`, `      <skipped message="${xmlEscape(`inconclusive: ${reasons[0] ?? 'a check was blind'}`)}"/>`, `      <system-out>${xmlEscape([...reasons, '', ...logs].join('\n'))}</system-out>`, '    </testcase>');
      } else {
        const known = night.known.filter((finding) => finding.cell === cell.id);
        if (known.length) {
          out.push(`${open}>`, `      <system-out>${xmlEscape(known.map((finding) => `known: ${finding.title} (${finding.known})`).join('\n'))}</system-out>`, '    </testcase>');
        } else {
          out.push(`${open}/>`);
        }
      }
    }
    out.push('  </testsuite>');
  }
  out.push('</testsuites>');
  return `${out.join('\n')}\n`;
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
