// scenarios/known-issues.txt: reports the project has already triaged, so a run that only hits
// them is not a finding. One entry a line:
//
//   TITLE [| key=value]...  # reason
//
// TITLE is the whole report title, or /REGEX/flags matching the whole title (anchored: a
// regression whose title merely contains a known one is not known). The optional scopes narrow
// where the entry applies, each must hold: kind=KIND, scenario=NAME[,NAME], step=STEP (the step
// name, or SCENARIO/STEP), iommu=intel|virtio|none[,...], release=PREFIX or release=/REGEX/ (the
// kernel release the boot printed: 6.12 covers 6.12.117+ but not 6.1).
//
// An upstream bug is scoped by what it is, not by a list of the releases it was seen on: since=X.Y
// (the release it appeared in) and, once fixed upstream, until=X.Y (the first release with the
// fix), compared as version numbers, so a new release inherits an unfixed upstream report and a
// fixed one stops matching. Its title names only the function that took the lock or warned, so
// locks=CLASS[,CLASS] (lock classes the report names, as lockdep prints them:
// pci_rescan_remove_lock, &ctrl->reset_lock) and text=STRING or text=/REGEX/ (a frame or a line of
// its text) say which report of that function it is: another inversion there stays a finding.
// The reason is mandatory: an entry nobody can explain is a finding someone stopped looking at.
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
const scopeKeys = ['kind', 'scenario', 'step', 'iommu', 'release', 'since', 'until', 'locks', 'text'] as const;
const versionRe = /^(\d+)\.(\d+)(?:\.(\d+))?/;

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
    if (issue.since !== undefined && issue.until !== undefined && compareReleases(issue.since, issue.until) >= 0) {
      throw new KnownIssuesError(lineNo, `since=${issue.since} is not before until=${issue.until}`);
    }
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
    case 'since':
    case 'until':
      if (!/^\d+\.\d+(?:\.\d+)?$/.test(value)) throw new KnownIssuesError(lineNo, `${key}= takes a kernel version like 6.1 or 6.12.30, got "${value}"`);
      issue[key] = value;
      break;
    case 'locks':
      issue.locks = value.split(',').filter((lock) => lock !== '');
      break;
    case 'text': {
      const re = regexRe.exec(value);
      issue.text = re?.[1] ? searching(re[1], re[2] ?? '', lineNo) : value;
      break;
    }
    default:
      issue[key] = value;
  }
}

/** A pattern looked for anywhere in a report's text (unlike a title, which is matched whole). */
function searching(source: string, flags: string, lineNo: number): RegExp {
  try {
    return new RegExp(source, flags.replace(/[gy]/g, ''));
  } catch (err) {
    throw new KnownIssuesError(lineNo, `bad regular expression: ${(err as Error).message}`);
  }
}

/** A report as the oracle cut it (its lines) or as a run holds it (its text). */
export type MatchableReport = Pick<KernelReport, 'title' | 'kind' | 'step'> & { lines?: readonly string[]; text?: string };

/** Whether the entry covers this report, seen in this scenario, machine and kernel. */
export function matchesKnownIssue(issue: KnownIssue, report: MatchableReport, scope: ReportScope): boolean {
  if (typeof issue.title === 'string' ? issue.title !== report.title : !issue.title.test(report.title)) return false;
  if (issue.kind !== undefined && issue.kind !== report.kind) return false;
  if (issue.scenario !== undefined && !listed(issue.scenario, scope.scenario)) return false;
  if (issue.iommu !== undefined && !listed(issue.iommu, scope.iommu)) return false;
  if (issue.step !== undefined && !stepMatches(issue.step, report.step)) return false;
  if (!appliesToRelease(issue, scope.release)) return false;
  if (issue.locks !== undefined || issue.text !== undefined) {
    const body = report.text ?? report.lines?.join('\n') ?? '';
    if (issue.locks !== undefined && !issue.locks.every((lock) => namesLock(body, lock))) return false;
    if (issue.text !== undefined && !(typeof issue.text === 'string' ? body.includes(issue.text) : issue.text.test(body))) return false;
  }
  return true;
}

/**
 * Whether the entry's release scopes (release=, since=, until=) hold for this kernel; an unknown
 * release holds none of them. Also what tells an entry for another kernel from a stale one.
 */
export function appliesToRelease(issue: Pick<KnownIssue, 'release' | 'since' | 'until'>, release: string | undefined): boolean {
  if (issue.release !== undefined && !releaseMatches(issue.release, release)) return false;
  if (issue.since === undefined && issue.until === undefined) return true;
  if (release === undefined || !versionRe.test(release)) return false;
  if (issue.since !== undefined && compareReleases(release, issue.since) < 0) return false;
  if (issue.until !== undefined && compareReleases(release, issue.until) >= 0) return false;
  return true;
}

/**
 * Orders two kernel releases by their numbers: 6.1 < 6.1.192 < 6.12 < 7.2.13 < 7.3. A missing
 * sublevel is 0 and what follows the numbers (+, -rc1, -amd64) is ignored, so a 7.3 release
 * candidate counts as 7.3.
 */
export function compareReleases(a: string, b: string): number {
  const numbers = (release: string) => {
    const m = versionRe.exec(release);
    return [Number(m?.[1] ?? 0), Number(m?.[2] ?? 0), Number(m?.[3] ?? 0)];
  };
  const [x, y] = [numbers(a), numbers(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

/**
 * Lockdep prints a lock class in parentheses, with a #N name version or /N subclass when it has
 * one: "(&ctrl->reset_lock){.+.+}", "lock(pci_rescan_remove_lock);", "(&dev->mutex/1)".
 */
function namesLock(body: string, lock: string): boolean {
  const escaped = lock.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`\\(${escaped}(?:[#/]\\d+)*\\)`).test(body);
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
