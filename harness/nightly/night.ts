// One night's results: the shape of night.json, which the JUnit, HTML, merge
// and the next night's baseline all read. Field names are stable: dashboards
// and scripts depend on them. Pure.
import { blindness, type Sought } from '../bisect/blindness.ts';
import type { IommuModel } from '../machine/topology.ts';
import { oneShotMessage, type ReportKind } from '../oracle/index.ts';
import type { ScenarioRun, Verdict } from '../report/result.ts';
import type { MatrixCell, Shard } from './matrix.ts';
import type { Plan } from './plan.ts';

export const nightSchemaId = 'iommu-harness/night/1';

/** Why a run or a build could not be judged: a harness error kind, "timeout" or "not-run". */
export interface NightError {
  kind: string;
  message: string;
  /** The log that shows it, relative to the night folder when it was copied there. */
  log?: string;
}

/** One boot of one cell (a cycle); also written alone to units/UNIT.json as soon as it ends. */
export interface NightRun {
  /** `kernel.profile.iommu.scenario.cN`. */
  unit: string;
  /** `kernel.profile.iommu.scenario`. */
  cell: string;
  cycle: number;
  kernel: string;
  profile: string;
  iommu: IommuModel;
  scenario: string;
  verdict: Verdict;
  /** Present when the run could not be judged (verdict "error"). */
  error?: NightError;
  startedAt: string;
  seconds: number;
  /** What `iommu-harness run --json` holds in `runs`: the "boot" run, then the scenario's; log paths relative to the night folder. */
  results: ScenarioRun[];
  /** Relative to the night folder. */
  logs: { console?: string; dmesg?: string; config?: string; buildLog?: string };
}

/** One kernel x profile build. */
export interface NightBuild {
  kernel: string;
  profile: string;
  source?: string;
  commit?: string;
  patches: string[];
  release?: string;
  /** 0 when the kernel came from the cache. */
  buildSeconds?: number;
  /** Relative to the night folder. */
  config?: string;
  buildLog?: string;
  error?: NightError;
}

export type FindingKind = 'report' | 'leak' | 'check';

/** A failure, keyed by a signature that is stable from night to night. */
export interface Finding {
  /** `CELL | report: TITLE`, `CELL | leak: DEVICES` or `CELL | check: TEXT`: no group numbers, addresses or times. */
  signature: string;
  cell: string;
  kind: FindingKind;
  /** The report title, `iommu group leak: DEVICES`, or the failed check. */
  title: string;
  /** The report kind (warning, lockdep...) for reports. */
  reportKind?: string;
  /** What a reader needs to see first: the report's lines, the leaked group and step. */
  evidence: string;
  /** Units it appeared in. */
  runs: string[];
  /** The known-issues reason, for known reports (which never fail). */
  known?: string;
}

/**
 * What a cell is against the baseline. "inconclusive", "error" and "not-run" are new tonight (no
 * baseline, the baseline's cell was not so, or it was for other reasons or errors); their "still-"
 * twins are the same as in the baseline and do not change the exit code.
 */
export type CellStatus = 'new' | 'still' | 'fixed' | 'pass' | 'inconclusive' | 'still-inconclusive' | 'error' | 'still-error' | 'not-run' | 'still-not-run';

export interface NightCell extends MatrixCell {
  /** "not-run" when no unit of the cell has a result (another shard, an interrupted night). */
  verdict: Verdict | 'not-run';
  /** The headline: new failures beat still-failing ones; "fixed" passes where the baseline failed; "still-inconclusive", "still-error" and "still-not-run" are as in the baseline's cell (they do not change the exit code). */
  status: CellStatus;
  /** Units of this cell with results. */
  runs: string[];
  /** Signatures of its failures today. */
  findings: string[];
  /** How many cycles failed, of those run: a cell failing 1 of 5 is flaky. */
  failedCycles: number;
  /**
   * On an inconclusive cell: why its checks were blind, `SCENARIO: REASON` for every run's results,
   * normalized (normalizeReason), de-duplicated and sorted. The next night compares its own with these.
   */
  inconclusive?: string[];
  /**
   * On an error or not-run cell: `KIND: FIRST LINE OF THE MESSAGE` for every run that could not be
   * judged, normalized, de-duplicated and sorted; `not-run` for a cell with no result at all.
   */
  errors?: string[];
}

export interface NightDiff {
  /** Signatures failing tonight and not in the baseline. */
  new: string[];
  /** Failing tonight and in the baseline. */
  still: string[];
  /** In the baseline, and their cell ran and was judged tonight without them. */
  fixed: Finding[];
  /** In the baseline and absent tonight, but tonight's runs of their cell could not have shown them (neither fixed nor still); absent when none. */
  unseen?: { signature: string; reason: string }[];
  /** Cells inconclusive tonight and not in the baseline, or for a reason the baseline's cell did not give (exit 4). */
  newInconclusive: string[];
  /** Cells inconclusive tonight for reasons the baseline's cell gave too ("still-inconclusive"). */
  stillInconclusive: string[];
  /** Cells that errored or did not run tonight and not in the baseline, or with another error (exit 3). */
  newErrors: string[];
  /** Cells that errored or did not run with errors the baseline's cell had too ("still-error", "still-not-run"). */
  stillErrors: string[];
  /** `KERNEL.PROFILE` builds that failed tonight and not in the baseline, or with another error (exit 3). */
  newBuildErrors: string[];
}

export interface Night {
  schema: typeof nightSchemaId;
  /** The night's name: its folder name, by default the UTC date. */
  name: string;
  title?: string;
  startedAt: string;
  finishedAt: string;
  /** Present on a shard's own results; a merge or a whole night has none. */
  shard?: Shard;
  /** The shard results a merge joined (their folders, as given). */
  mergedFrom?: string[];
  plan: Plan;
  /** fail when a failure (new or not) exists, else error when a run could not be judged, else inconclusive when a cell was, else pass: what tonight is, whatever the baseline. */
  verdict: Verdict;
  /**
   * What is new against the baseline: 1 a new failure; else 3 a new error (a cell that errored or
   * did not run and did not in the baseline, or with another error; a build that failed and did not,
   * or otherwise); else 4 a cell that became inconclusive or is for a reason the baseline's did not
   * give; else 0. Still failing, still-inconclusive and still-error cells do not count. Without a
   * baseline, everything is new.
   */
  exitCode: 0 | 1 | 3 | 4;
  builds: NightBuild[];
  cells: NightCell[];
  runs: NightRun[];
  /** Tonight's failures (known issues excluded), in matrix order. */
  findings: Finding[];
  /** Reports the known-issues file matched: shown, never failing. */
  known: Finding[];
  /** The night compared against; null when there was none (every failure is then new). */
  baseline: { name: string; file: string } | null;
  diff: NightDiff;
  /** Cells by verdict; new, still, fixed and known count findings (signatures). */
  summary: { cells: number; pass: number; inconclusive: number; fail: number; error: number; notRun: number; new: number; still: number; fixed: number; known: number };
}

/** A run's failures, known reports included (marked). */
export function findingsOfRun(run: NightRun): Finding[] {
  const findings: Finding[] = [];
  for (const result of run.results) {
    for (const report of result.reports) {
      findings.push({
        signature: `${run.cell} | report: ${report.title}`,
        cell: run.cell,
        kind: 'report',
        title: report.title,
        reportKind: report.kind,
        evidence: [report.step ? `in ${report.step}` : `in ${result.scenario}`, ...report.text.split('\n').slice(0, 40)].join('\n'),
        runs: [run.unit],
        ...(report.known ? { known: report.known } : {}),
      });
    }
    for (const leak of result.leaks) {
      // The group number depends on probe order; the devices are fixed by the scenario's topology.
      const devices = [...leak.devices].sort().join(', ');
      findings.push({
        signature: `${run.cell} | leak: ${devices}`,
        cell: run.cell,
        kind: 'leak',
        title: `iommu group leak: ${devices}`,
        evidence: `iommu group ${leak.group} (${leak.devices.join(', ')}) was never released${leak.step ? ` after ${leak.step}` : ''}`,
        runs: [run.unit],
      });
    }
    for (const check of failedChecksOf(result)) {
      findings.push({ signature: `${run.cell} | check: ${check}`, cell: run.cell, kind: 'check', title: check, evidence: `check failed: ${check}`, runs: [run.unit] });
    }
  }
  return findings;
}

// Scenario expectations that did not hold; older results have none.
function failedChecksOf(result: ScenarioRun): string[] {
  return (result as { failedChecks?: string[] }).failedChecks ?? [];
}

/** Same signature, several cycles: one finding listing every run. */
function mergeFindings(findings: Finding[]): Finding[] {
  const bySignature = new Map<string, Finding>();
  for (const finding of findings) {
    const seen = bySignature.get(finding.signature);
    if (seen) seen.runs = [...new Set([...seen.runs, ...finding.runs])];
    else bySignature.set(finding.signature, { ...finding, runs: [...finding.runs] });
  }
  return [...bySignature.values()];
}

export interface AssembleInput {
  name: string;
  plan: Plan;
  /** Every cell of the part of the matrix this night covers, in order. */
  cells: MatrixCell[];
  runs: NightRun[];
  builds: NightBuild[];
  startedAt: string;
  finishedAt: string;
  shard?: Shard;
  mergedFrom?: string[];
  /** The previous night.json; older ones may lack cells' inconclusive and errors (their cells then compare as new). */
  baseline?: { name: string; file: string; night: Pick<Night, 'findings' | 'cells'> & Partial<Pick<Night, 'builds'>> };
}

/**
 * A reason or an error as compared from night to night: what changes from boot to boot goes, so
 * that only a different cause looks new. Printk timestamps (`[   12.345678]`) are dropped; hex
 * numbers (`0x1f`, addresses of 8 or more hex digits) become `0xN` and `N`; every other run of
 * decimal digits (group ids, PIDs, CPUs, counts, seconds, dates, cycles) becomes `N`, except in a
 * PCI address (`0000:01:00.0`), which the scenario's topology fixes and which names the device;
 * runs of white space become one space.
 */
export function normalizeReason(text: string): string {
  const pciAddress = /\b[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\b/gi;
  const numbers = (part: string) =>
    part
      .replace(/\[\s*\d+\.\d+\]/g, ' ')
      .replace(/\b0x[0-9a-f]+\b|\b(?=[0-9a-f]*\d)[0-9a-f]{8,}\b|\d+/gi, (number) => (/^0x/i.test(number) ? '0xN' : 'N'));
  const addresses = text.match(pciAddress) ?? [];
  const parts = text.split(pciAddress).map(numbers);
  return parts
    .flatMap((part, index) => (index < addresses.length ? [part, addresses[index]!] : [part]))
    .join('')
    .replace(/\s+/g, ' ')
    .trim();
}

/** An error as compared from night to night: its kind and the normalized first line of its message. */
export function normalizeError(error: NightError): string {
  return normalizeReason(`${error.kind}: ${error.message.split('\n')[0] ?? ''}`);
}

const sortedUnique = (values: string[]) => [...new Set(values)].sort();

function inconclusiveOf(cellRuns: NightRun[]): string[] {
  return sortedUnique(cellRuns.flatMap((run) => run.results.flatMap((result) => (result.inconclusive ?? []).map((reason) => `${result.scenario}: ${normalizeReason(reason)}`))));
}

function errorsOf(cellRuns: NightRun[]): string[] {
  if (cellRuns.length === 0) return ['not-run'];
  return sortedUnique(
    cellRuns.flatMap((run) => {
      if (run.error) return [normalizeError(run.error)];
      // Older unit files may hold an error run without its error: name what its results say.
      if (run.verdict !== 'error') return [];
      const judged = run.results.find((result) => result.verdict === 'error' && result.error);
      return [normalizeError({ kind: 'guest', message: judged ? `${judged.scenario}: ${judged.error}` : 'could not be judged' })];
    }),
  );
}

/** Whether tonight's reasons (or errors) are all among those the baseline's cell recorded; false when it recorded none (an older night.json). */
function coveredBy(tonight: string[] | undefined, baseline: string[] | undefined): boolean {
  if (!tonight || !Array.isArray(baseline)) return false;
  const known = new Set(baseline);
  return tonight.every((entry) => known.has(entry));
}

export function assembleNight(input: AssembleInput): Night {
  const order = new Map(input.cells.map((cell, index) => [cell.id, index]));
  const runs = [...input.runs].sort((a, b) => (order.get(a.cell) ?? 0) - (order.get(b.cell) ?? 0) || a.cycle - b.cycle);
  const all = mergeFindings(runs.flatMap(findingsOfRun));
  const findings = all.filter((finding) => !finding.known);
  const known = all.filter((finding) => finding.known);
  const baselineFindings = new Map((input.baseline?.night.findings ?? []).map((finding) => [finding.signature, finding]));
  const isNew = (signature: string) => !baselineFindings.has(signature);

  const cells: NightCell[] = input.cells.map((cell) => {
    const cellRuns = runs.filter((run) => run.cell === cell.id);
    const cellFindings = findings.filter((finding) => finding.cell === cell.id).map((finding) => finding.signature);
    const verdict: NightCell['verdict'] = cellRuns.length === 0 ? 'not-run' : worst(cellRuns.map((run) => run.verdict));
    return {
      ...cell,
      verdict,
      status: 'pass',
      runs: cellRuns.map((run) => run.unit),
      findings: cellFindings,
      failedCycles: cellRuns.filter((run) => run.verdict === 'fail').length,
      ...(verdict === 'inconclusive' ? { inconclusive: inconclusiveOf(cellRuns) } : {}),
      ...(verdict === 'error' || verdict === 'not-run' ? { errors: errorsOf(cellRuns) } : {}),
    };
  });
  const baselineCells = new Map((input.baseline?.night.cells ?? []).map((cell) => [cell.id, cell]));
  // Same as in the baseline: its cell was so too, and gave (at least) every reason or error tonight gives.
  const stillInconclusive = (cell: NightCell) => {
    const before = baselineCells.get(cell.id);
    return before?.verdict === 'inconclusive' && coveredBy(cell.inconclusive, before.inconclusive);
  };
  const stillError = (cell: NightCell) => {
    const before = baselineCells.get(cell.id);
    return (before?.verdict === 'error' || before?.verdict === 'not-run') && coveredBy(cell.errors, before.errors);
  };

  // A baseline failure is fixed only where tonight judged its cell (an error or a cell not run
  // proves nothing) and every run of it could have shown the failure: a cell failing on another
  // report with lockdep off proves nothing about last night's lock inversion.
  const judged = new Set(cells.filter((cell) => cell.verdict === 'pass' || cell.verdict === 'fail').map((cell) => cell.id));
  const tonight = new Set(findings.map((finding) => finding.signature));
  const gone = [...baselineFindings.values()].filter((finding) => judged.has(finding.cell) && !tonight.has(finding.signature));
  const unseen = gone.flatMap((finding) => {
    const reason = blindness(
      runs.filter((run) => run.cell === finding.cell).flatMap((run) => run.results),
      soughtOf(finding),
    );
    return reason === undefined ? [] : [{ signature: finding.signature, reason }];
  });
  const diff: NightDiff = {
    new: findings.filter((finding) => isNew(finding.signature)).map((finding) => finding.signature),
    still: findings.filter((finding) => !isNew(finding.signature)).map((finding) => finding.signature),
    fixed: gone.filter((finding) => !unseen.some((blind) => blind.signature === finding.signature)),
    ...(unseen.length ? { unseen } : {}),
    newInconclusive: [],
    stillInconclusive: [],
    newErrors: [],
    stillErrors: [],
    newBuildErrors: [],
  };
  const newSet = new Set(diff.new);
  const fixedCells = new Set(diff.fixed.map((finding) => finding.cell));
  const unseenCells = new Set(gone.filter((finding) => unseen.some((blind) => blind.signature === finding.signature)).map((finding) => finding.cell));
  for (const cell of cells) {
    if (cell.findings.some((signature) => newSet.has(signature))) cell.status = 'new';
    else if (cell.findings.length) cell.status = 'still';
    else if (cell.verdict === 'error' || cell.verdict === 'not-run') {
      const still = stillError(cell);
      cell.status = still ? (cell.verdict === 'error' ? 'still-error' : 'still-not-run') : cell.verdict;
      (still ? diff.stillErrors : diff.newErrors).push(cell.id);
    } else if (cell.verdict === 'inconclusive') {
      const still = stillInconclusive(cell);
      cell.status = still ? 'still-inconclusive' : 'inconclusive';
      (still ? diff.stillInconclusive : diff.newInconclusive).push(cell.id);
    }
    else if (cell.verdict === 'fail') cell.status = 'new'; // failed without a finding the oracle could name: treat as new
    // Passed, but blind to what failed last night (a refcount type already spent): not fixed.
    else if (unseenCells.has(cell.id)) cell.status = 'inconclusive';
    else if (fixedCells.has(cell.id)) cell.status = 'fixed';
    else cell.status = 'pass';
  }

  const count = (verdict: NightCell['verdict']) => cells.filter((cell) => cell.verdict === verdict).length;
  const summary = {
    cells: cells.length,
    pass: count('pass'),
    inconclusive: count('inconclusive'),
    fail: count('fail'),
    error: count('error'),
    notRun: count('not-run'),
    new: diff.new.length,
    still: diff.still.length,
    fixed: diff.fixed.length,
    known: known.length,
  };
  // A build error is new unless the baseline's build of the same kernel x profile failed the same way.
  const baselineBuilds = new Map((input.baseline?.night.builds ?? []).map((build) => [`${build.kernel}.${build.profile}`, build]));
  for (const build of input.builds) {
    if (!build.error) continue;
    const before = baselineBuilds.get(`${build.kernel}.${build.profile}`);
    if (!before?.error || normalizeError(before.error) !== normalizeError(build.error)) diff.newBuildErrors.push(`${build.kernel}.${build.profile}`);
  }
  const hasNew = cells.some((cell) => cell.status === 'new');
  const infrastructure = summary.error > 0 || summary.notRun > 0 || input.builds.some((build) => build.error);
  const newError = diff.newErrors.length > 0 || diff.newBuildErrors.length > 0;
  const verdict: Verdict = summary.fail > 0 ? 'fail' : infrastructure ? 'error' : summary.inconclusive > 0 ? 'inconclusive' : 'pass';
  return {
    schema: nightSchemaId,
    name: input.name,
    ...(input.plan.title ? { title: input.plan.title } : {}),
    startedAt: input.startedAt,
    finishedAt: input.finishedAt,
    ...(input.shard ? { shard: input.shard } : {}),
    ...(input.mergedFrom ? { mergedFrom: input.mergedFrom } : {}),
    plan: input.plan,
    verdict,
    exitCode: hasNew ? 1 : newError ? 3 : diff.newInconclusive.length > 0 ? 4 : 0,
    builds: input.builds,
    cells,
    runs,
    findings,
    known,
    baseline: input.baseline ? { name: input.baseline.name, file: input.baseline.file } : null,
    diff,
    summary,
  };
}

/** What tonight's runs must have been able to see for a baseline finding's absence to mean fixed. */
function soughtOf(finding: Finding): Sought {
  if (finding.kind !== 'report') return { kind: finding.kind };
  const reportKind = finding.reportKind as ReportKind | undefined;
  // The evidence holds the report's first lines, where a one-shot message is printed.
  const message = reportKind ? oneShotMessage({ kind: reportKind, lines: finding.evidence.split('\n') }) : undefined;
  return { kind: 'report', title: finding.title, ...(reportKind ? { reportKind } : {}), ...(message ? { message } : {}) };
}

function worst(verdicts: Verdict[]): Verdict {
  if (verdicts.includes('fail')) return 'fail';
  if (verdicts.includes('error')) return 'error';
  if (verdicts.includes('inconclusive')) return 'inconclusive';
  return 'pass';
}
