// What every report format reads off a run the same way: its findings, the
// steps the result knows about, and the command that runs it again. Pure.
import type { HarnessResult, IntroducedBy, ResultReport, ScenarioRun } from './result.ts';

export interface Finding {
  kind: 'report' | 'leak' | 'check';
  /** One line: a report's title, "iommu group 4 (0000:01:00.0) never released", a failed check. */
  title: string;
  step?: string;
  report?: ResultReport;
  /** The patch of a series that first brought it (`run --each-patch`). */
  introducedBy?: IntroducedBy;
}

/** What fails the run: reports that are not known issues, leaks, failed checks. */
export function findingsOf(run: ScenarioRun): Finding[] {
  return [
    ...run.reports.filter((report) => !report.known).map((report): Finding => ({ kind: 'report', title: report.title, ...(report.step ? { step: report.step } : {}), report, ...(report.introducedBy ? { introducedBy: report.introducedBy } : {}) })),
    ...run.leaks.map((leak): Finding => ({
      kind: 'leak',
      title: `iommu group ${leak.group} (${leak.devices.join(', ')}) never released`,
      ...(leak.step ? { step: leak.step } : {}),
      ...(leak.introducedBy ? { introducedBy: leak.introducedBy } : {}),
    })),
    ...run.failedChecks.map((check): Finding => ({ kind: 'check', title: check, ...stepOfCheck(run, check) })),
  ];
}

// A failed check starts with its step when it has one ("vfio-bind-unbind/remove: iommu group 3 released twice").
function stepOfCheck(run: ScenarioRun, check: string): { step?: string } {
  const step = /^(\S+?\/\S+?): /.exec(check)?.[1];
  return step?.startsWith(`${run.scenario}/`) ? { step } : {};
}

export interface KnownStep {
  /** The step's name within the scenario ("remove", or "cycle2/remove" with --cycles). */
  name: string;
  status: 'fail' | 'skip' | 'pass';
  /** Finding titles of a failed step, the reason of a skipped one. */
  why: string[];
}

/**
 * The steps the result can speak for: those a finding was placed in, those skipped, and in a pass
 * or a fail the steps the scenario marked that found nothing, in the order they ran.
 */
export function knownSteps(run: ScenarioRun): KnownStep[] {
  const steps: KnownStep[] = [];
  const prefix = `${run.scenario}/`;
  for (const finding of findingsOf(run)) {
    if (!finding.step?.startsWith(prefix)) continue;
    const name = finding.step.slice(prefix.length);
    const step = steps.find((candidate) => candidate.name === name);
    if (step) step.why.push(finding.title);
    else steps.push({ name, status: 'fail', why: [finding.title] });
  }
  for (const skipped of run.skippedSteps ?? []) {
    const name = skipped.step.startsWith(prefix) ? skipped.step.slice(prefix.length) : skipped.step;
    if (!steps.some((step) => step.name === name)) steps.push({ name, status: 'skip', why: [skipped.reason] });
  }
  // The steps that ran with nothing found speak for themselves only when every check saw them: in a
  // pass, or beside a finding in a fail; in an inconclusive or an erroring run they claim nothing.
  if (run.verdict === 'pass' || run.verdict === 'fail') {
    for (const name of run.steps ?? []) if (!steps.some((step) => step.name === name)) steps.push({ name, status: 'pass', why: [] });
    const order = run.steps ?? [];
    const rank = (name: string) => (order.includes(name) ? order.indexOf(name) : order.length);
    steps.sort((a, b) => rank(a.name) - rank(b.name));
  }
  return steps;
}

/** Why a run is not a pass, in one line (a fail's first finding, an error, the first blind check). */
export function notPassReason(run: ScenarioRun): string | undefined {
  if (run.verdict === 'pass') return undefined;
  if (run.verdict === 'fail') {
    const findings = findingsOf(run);
    return findings.length ? `${findings[0]!.title}${findings.length > 1 ? ` (+${findings.length - 1} more)` : ''}` : 'failed';
  }
  if (run.verdict === 'error') return run.error ?? 'could not be judged';
  return run.inconclusive[0] ?? 'a check the verdict relies on was blind';
}

/**
 * A run whose scenario never ran or whose guest was lost to the emulator: nothing is known about
 * the kernel there, unlike an error the scenario itself hit.
 */
export function lostOrNotRun(run: ScenarioRun): boolean {
  if (run.verdict !== 'error' || !run.error) return false;
  return /^not run: /.test(run.error) || /stopped answering|QEMU (?:ended|died|exited|was killed)|the machine had ended|guest was lost/i.test(run.error);
}

/** The machines as QEMU builds them: the harness boots q35 behind each vIOMMU. */
export function machineName(iommu: string): string {
  return iommu === 'none' ? 'q35, no IOMMU' : `q35 + ${iommu}-iommu`;
}

/** `debian:linux-source-6.12` as --src takes it (`debian:6.12`); a tree's path as it is. */
export function srcOption(source: string): string {
  const debian = /^debian:linux-source-(.+)$/.exec(source);
  return debian ? `debian:${debian[1]}` : source;
}

/** The arguments of `iommu-harness run` that reproduce one run: same tree, commit, patches, config, machine and scenario. */
export function reproduceArgs(result: HarnessResult, run: ScenarioRun): string[] {
  const args = ['run', '--src', srcOption(result.kernel.source)];
  // Debian's tree is made by the harness, so its commit is the same on every host: the release names it.
  if (!result.kernel.source.startsWith('debian:') && result.kernel.commit) args.push('--ref', result.kernel.commit);
  for (const patch of result.kernel.patches) args.push('--patch', patch);
  const provenance = result.provenance;
  if (provenance?.profile && provenance.profile !== 'lockdep') args.push('--profile', provenance.profile);
  for (const fragment of provenance?.fragments ?? []) {
    // The harness's own fragments come with it; a user's (--kconfig) is named by its path.
    if (!fragment.name.startsWith('kconfigs/')) args.push('--kconfig', fragment.name);
  }
  args.push('--iommu', run.iommu);
  for (const scenario of scenariosToRerun(result, run)) args.push('--scenario', scenario);
  const cycles = optionValue(provenance?.commandLine ?? [], '--cycles');
  if (cycles && cycles !== '1') args.push('--cycles', cycles);
  return args;
}

// "boot" is what the kernel printed before the first scenario, "kmemleak" the scan after them:
// the scenarios of that machine are what brings them back.
function scenariosToRerun(result: HarnessResult, run: ScenarioRun): string[] {
  if (run.scenario === 'kmemleak') return result.runs.filter((other) => other.iommu === run.iommu && !['boot', 'kmemleak'].includes(other.scenario)).map((other) => other.scenario);
  if (run.scenario !== 'boot') return [run.scenario];
  const first = result.runs.find((other) => other.iommu === run.iommu && !['boot', 'kmemleak'].includes(other.scenario));
  return first ? [first.scenario] : [];
}

function optionValue(args: readonly string[], option: string): string | undefined {
  const index = args.findIndex((arg) => arg === option || arg.startsWith(`${option}=`));
  if (index < 0) return undefined;
  const arg = args[index]!;
  return arg.includes('=') ? arg.slice(arg.indexOf('=') + 1) : args[index + 1];
}

/** A shell word: left bare when safe, else single-quoted. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./~-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
