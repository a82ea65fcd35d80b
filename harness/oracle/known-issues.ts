// scenarios/known-issues.txt: reports the project has already triaged, so a run that only hits
// them is not a finding. One entry a line: `TITLE  # reason` or `/REGEX/flags  # reason`.
import type { KernelReport, KnownIssue } from './types.ts';

export class KnownIssuesError extends Error {
  /** 1-based line number in the file. */
  readonly line: number;

  constructor(line: number, message: string) {
    super(`known issues, line ${line}: ${message}`);
    this.name = 'KnownIssuesError';
    this.line = line;
  }
}

// The reason is mandatory: an entry nobody can explain is a finding someone stopped looking at.
const regexEntryRe = /^\/(.+)\/([a-z]*)\s+#\s*(.*)$/;
const titleEntryRe = /^(.+?)\s+#\s*(.*)$/;

export function parseKnownIssues(text: string): KnownIssue[] {
  const issues: KnownIssue[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const lineNo = i + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('/')) {
      const m = regexEntryRe.exec(line);
      if (!m?.[1] || !m[3]) throw new KnownIssuesError(lineNo, `expected "/REGEX/  # reason", got ${JSON.stringify(line)}`);
      let title: RegExp;
      try {
        // 'g' and 'y' make test() stateful across reports.
        title = new RegExp(m[1], (m[2] ?? '').replace(/[gy]/g, ''));
      } catch (err) {
        throw new KnownIssuesError(lineNo, `bad regular expression: ${(err as Error).message}`);
      }
      issues.push({ title, reason: m[3].trim() });
      continue;
    }
    const m = titleEntryRe.exec(line);
    if (!m?.[1] || !m[2]?.trim()) throw new KnownIssuesError(lineNo, `expected "TITLE  # reason", got ${JSON.stringify(line)}`);
    issues.push({ title: m[1].trim(), reason: m[2].trim() });
  }
  return issues;
}

export function applyKnownIssues(reports: KernelReport[], known: KnownIssue[]): KernelReport[] {
  return reports.map((report) => {
    const issue = known.find((k) => (typeof k.title === 'string' ? k.title === report.title : k.title.test(report.title)));
    return issue ? { ...report, known: { reason: issue.reason } } : report;
  });
}
