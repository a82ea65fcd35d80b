// scenarios/known-issues.txt: reports the project has already triaged, so a run that only hits
// them is not a finding. One entry a line:
//
//   TITLE [| key=value]...  # reason
//
// TITLE is the whole report title, or /REGEX/flags matching the whole title (anchored: a
// regression whose title merely contains a known one is not known). The optional scopes narrow
// where the entry applies, each must hold: kind=KIND, scenario=NAME[,NAME], step=STEP (the step
// name, or SCENARIO/STEP), iommu=intel|virtio|none[,...], release=PREFIX or release=/REGEX/ (the
// kernel release the boot printed: 6.12 covers 6.12.117+ but not 6.1). The reason is mandatory:
// an entry nobody can explain is a finding someone stopped looking at.
import type { KernelReport, KnownIssue, ReportKind, ReportScope } from './types.ts';
import { reportKinds } from './kinds.ts';

export class KnownIssuesError extends Error {
  /** 1-based line number in the file. */
  readonly line: number;

  constructor(line: number, message: string) {
    super(`known issues, line ${line}: ${message}`);
    this.name = 'KnownIssuesError';
    this.line = line;
  }
}

const entryRe = /^(.+?)\s+#\s*(.*)$/;
const regexRe = /^\/(.+)\/([a-z]*)$/;
const scopeRe = /^([a-z]+)=(\S+)$/;
const scopeKeys = ['kind', 'scenario', 'step', 'iommu', 'release'] as const;

export function parseKnownIssues(text: string): KnownIssue[] {
  const issues: KnownIssue[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const lineNo = i + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = entryRe.exec(line);
    if (!m?.[1] || !m[2]?.trim()) throw new KnownIssuesError(lineNo, `expected "TITLE [| key=value]...  # reason", got ${JSON.stringify(line)}`);
    const [titleText, ...scopes] = m[1].split(/\s+\|\s+/).map((part) => part.trim());
    const issue: KnownIssue = { title: parseTitle(titleText ?? '', lineNo), reason: m[2].trim(), entry: m[1].trim() };
    for (const scope of scopes) applyScope(issue, scope, lineNo);
    issues.push(issue);
  }
  return issues;
}

function parseTitle(text: string, lineNo: number): string | RegExp {
  if (!text.startsWith('/')) return text;
  const m = regexRe.exec(text);
  if (!m?.[1]) throw new KnownIssuesError(lineNo, `expected "/REGEX/flags", got ${JSON.stringify(text)}`);
  return anchored(m[1], m[2] ?? '', lineNo);
}

/** The whole title must match: an unanchored pattern would also cover new bugs that share words with a known one. */
function anchored(source: string, flags: string, lineNo: number): RegExp {
  try {
    // 'g' and 'y' make test() stateful across reports.
    return new RegExp(`^(?:${source})$`, flags.replace(/[gy]/g, ''));
  } catch (err) {
    throw new KnownIssuesError(lineNo, `bad regular expression: ${(err as Error).message}`);
  }
}

function applyScope(issue: KnownIssue, text: string, lineNo: number): void {
  const m = scopeRe.exec(text);
  const key = m?.[1] as (typeof scopeKeys)[number] | undefined;
  const value = m?.[2];
  if (!key || !value || !scopeKeys.includes(key)) {
    throw new KnownIssuesError(lineNo, `expected a scope ${scopeKeys.map((k) => `${k}=...`).join(', ')}, got ${JSON.stringify(text)}`);
  }
  if (issue[key] !== undefined) throw new KnownIssuesError(lineNo, `${key} given twice`);
  switch (key) {
    case 'kind':
      if (!reportKinds.includes(value as ReportKind)) throw new KnownIssuesError(lineNo, `unknown kind "${value}" (known: ${reportKinds.join(', ')})`);
      issue.kind = value as ReportKind;
      break;
    case 'step':
      issue.step = value;
      break;
    case 'release': {
      const re = regexRe.exec(value);
      issue.release = re?.[1] ? anchored(re[1], re[2] ?? '', lineNo) : value;
      break;
    }
    default:
      issue[key] = value;
  }
}

/** Whether the entry covers this report, seen in this scenario, machine and kernel. */
export function matchesKnownIssue(issue: KnownIssue, report: Pick<KernelReport, 'title' | 'kind' | 'step'>, scope: ReportScope): boolean {
  if (typeof issue.title === 'string' ? issue.title !== report.title : !issue.title.test(report.title)) return false;
  if (issue.kind !== undefined && issue.kind !== report.kind) return false;
  if (issue.scenario !== undefined && !listed(issue.scenario, scope.scenario)) return false;
  if (issue.iommu !== undefined && !listed(issue.iommu, scope.iommu)) return false;
  if (issue.step !== undefined && !stepMatches(issue.step, report.step)) return false;
  if (issue.release !== undefined && !releaseMatches(issue.release, scope.release)) return false;
  return true;
}

function listed(list: string, value: string | undefined): boolean {
  return value !== undefined && list.split(',').includes(value);
}

function stepMatches(step: string, reportStep: string | undefined): boolean {
  if (reportStep === undefined) return false;
  // Under --cycles a step is SCENARIO/cycleN/STEP: the cycle does not change which step it is.
  const plain = reportStep.replace(/\/cycle\d+\//, '/');
  return step.includes('/') ? step === plain : plain.slice(plain.indexOf('/') + 1) === step;
}

/** "6.12" covers 6.12, 6.12.117 and 6.12.117+, not 6.120; a regular expression must match the whole release. */
export function releaseMatches(release: string | RegExp, actual: string | undefined): boolean {
  if (actual === undefined) return false;
  if (typeof release !== 'string') return release.test(actual);
  return actual === release || (actual.startsWith(release) && /^[.+-]/.test(actual.slice(release.length)));
}

/**
 * Marks each report a known issue covers. `scope` gives the machine and kernel; the scenario is the
 * report's step's, "boot" before the first step.
 */
export function applyKnownIssues(reports: KernelReport[], known: KnownIssue[], scope: Omit<ReportScope, 'scenario'> = {}): KernelReport[] {
  return reports.map((report) => {
    const where = { ...scope, scenario: scenarioOfStep(report.step) };
    const issue = known.find((k) => matchesKnownIssue(k, report, where));
    return issue ? { ...report, known: { reason: issue.reason } } : report;
  });
}

/** The scenario a step belongs to: steps are marked SCENARIO/STEP; before the first mark it is the boot. */
export function scenarioOfStep(step: string | undefined): string {
  return step === undefined || !step.includes('/') ? 'boot' : step.slice(0, step.indexOf('/'));
}
