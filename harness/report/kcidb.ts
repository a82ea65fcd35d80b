// KCIDB I/O schema 5.3 (KernelCI's common results database) for one run: the
// checkout (tree, base commit, patch files and their hash), the build, one
// test per vIOMMU x scenario with path `iommu.intel.vfio_bind_unbind` (and one
// per step a finding came in or that was skipped), the known issues as KCIDB
// issues and their incidents. Ids are `ORIGIN:RUN` and below, RUN a hash of
// the result unless given: the same result gives the same ids. Pure.
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { RenderContext } from './formats.ts';
import { hashOfHashes } from './provenance.ts';
import type { HarnessResult, ScenarioRun, Verdict } from './result.ts';
import { findingsOf, knownSteps, lostOrNotRun, machineName, notPassReason } from './run-facts.ts';

export const defaultOrigin = 'iommu_harness';

export type KcidbStatus = 'FAIL' | 'ERROR' | 'MISS' | 'PASS' | 'DONE' | 'SKIP';

/**
 * The harness's verdicts in KCIDB's words. Inconclusive is MISS ("the status of both the test and
 * the tested code is unknown"): DONE would rank below PASS in a summary and hide it; a run whose
 * guest was lost to the emulator, or never ran, is MISS too (a failure of the harness, not of the
 * test). The reason goes in `misc`.
 */
export function kcidbStatus(run: ScenarioRun): KcidbStatus {
  const map: Record<Verdict, KcidbStatus> = { pass: 'PASS', fail: 'FAIL', error: 'ERROR', inconclusive: 'MISS' };
  return lostOrNotRun(run) ? 'MISS' : map[run.verdict];
}

/** Why an origin cannot be used, or undefined: KCIDB takes lower-case letters, digits and underscores. */
export function checkOrigin(origin: string): string | undefined {
  return /^[a-z0-9_]+$/.test(origin) ? undefined : `a KCIDB origin is lower-case letters, digits and underscores: ${JSON.stringify(origin)}`;
}

/** A run's id within the origin: the given one, else the first 16 hex digits of the result's sha256. */
export function runIdOf(result: HarnessResult, context: RenderContext = {}): string {
  return context.runId ?? createHash('sha256').update(JSON.stringify(result)).digest('hex').slice(0, 16);
}

// KCIDB caps excerpts at 16 KiB; the report's start holds its title and where.
const excerptLimit = 16384;

export function kcidbOf(result: HarnessResult, context: RenderContext = {}) {
  const origin = context.origin ?? defaultOrigin;
  const invalid = checkOrigin(origin);
  if (invalid) throw new Error(invalid);
  const run = runIdOf(result, context);
  const checkoutId = `${origin}:${run}`;
  const buildId = `${origin}:${run}.build`;
  const { kernel, provenance } = result;
  const startTime = provenance?.startedAt;
  const patchHashes = provenance?.patches.map((patch) => patch.sha256);
  const mails = provenance?.patches.flatMap((patch) => patch.mails) ?? [];
  // The mail that introduces the series: its cover letter, else its first patch.
  const introducing = mails.find((mail) => mail.cover) ?? mails[0];
  const checkout = {
    id: checkoutId,
    origin,
    ...(context.treeName ? { tree_name: context.treeName } : {}),
    ...(context.gitUrl ? { git_repository_url: context.gitUrl } : {}),
    ...(/^[0-9a-f]{40}$/.test(kernel.commit) ? { git_commit_hash: kernel.commit } : {}),
    ...(provenance?.kernel.describe ? { git_commit_name: provenance.kernel.describe } : {}),
    ...(kernel.patches.length ? { patchset_files: kernel.patches.map((file) => ({ name: baseName(file), url: pathToFileURL(file).href })) } : {}),
    ...(patchHashes && patchHashes.length === kernel.patches.length ? { patchset_hash: hashOfHashes(patchHashes) } : kernel.patches.length === 0 ? { patchset_hash: '' } : {}),
    ...(introducing?.messageId && emailLike.test(introducing.messageId) ? { message_id: introducing.messageId } : {}),
    ...(introducing ? { comment: introducing.subject } : {}),
    ...(startTime ? { start_time: startTime } : {}),
    valid: true,
    misc: {
      tree: kernel.source,
      ...(kernel.packageVersion ? { package_version: kernel.packageVersion } : {}),
      ...(mails.length ? { patches: mails.map((mail) => ({ subject: mail.subject, ...(mail.messageId ? { message_id: mail.messageId } : {}) })) } : {}),
    },
  };
  const configName = [provenance?.profile ?? 'lockdep', ...(provenance?.fragments.filter((fragment) => !fragment.name.startsWith('kconfigs/')).map((fragment) => baseName(fragment.name)) ?? [])].join('+');
  const build = {
    id: buildId,
    checkout_id: checkoutId,
    origin,
    comment: `${kernel.release} for ${configName}`,
    ...(startTime ? { start_time: startTime } : {}),
    // A kernel from the cache was built by an earlier run: its duration is not this run's.
    ...(result.timings.buildSeconds > 0 ? { duration: result.timings.buildSeconds } : {}),
    architecture: provenance?.architecture ?? 'x86_64',
    ...(provenance?.compiler ? { compiler: provenance.compiler } : {}),
    config_name: configName,
    ...(context.configFile ? { config_url: pathToFileURL(context.configFile).href } : {}),
    ...(context.buildLog ? { log_url: pathToFileURL(context.buildLog).href } : {}),
    // A result exists only for a kernel that built and booted far enough to be judged.
    status: 'PASS' as KcidbStatus,
    misc: {
      release: kernel.release,
      from_cache: result.timings.buildSeconds === 0,
      ...(provenance ? { fragments: provenance.fragments, fragments_hash: provenance.fragmentsHash } : {}),
    },
  };
  const tests: Record<string, unknown>[] = [];
  const incidents: Record<string, unknown>[] = [];
  const issues = new Map<string, Record<string, unknown>>();
  for (const [index, scenarioRun] of result.runs.entries()) {
    const path = `iommu.${pathPart(scenarioRun.iommu)}.${pathPart(scenarioRun.scenario)}`;
    // Unique even when --cycles or a retry gives the same scenario twice.
    const testId = `${origin}:${run}.${index + 1}.${path}`;
    tests.push(scenarioTest(scenarioRun, { testId, buildId, origin, path, ...(startTime ? { startTime } : {}) }));
    for (const step of knownSteps(scenarioRun)) {
      const stepPath = `${path}.${step.name.split('/').map(pathPart).join('.')}`;
      tests.push({
        id: `${testId}.${step.name.split('/').map(pathPart).join('.')}`,
        build_id: buildId,
        origin,
        path: stepPath,
        status: step.status === 'skip' ? 'SKIP' : step.status === 'pass' ? 'PASS' : 'FAIL',
        comment: `${scenarioRun.scenario}/${step.name}${step.why.length ? `: ${step.why.join('; ')}` : ''}`,
        misc: step.status === 'skip' ? { skipped: step.why.join('; ') } : step.status === 'pass' ? {} : { findings: step.why },
      });
    }
    for (const report of scenarioRun.reports.filter((candidate) => candidate.known)) {
      const issueId = `${origin}:known.${createHash('sha256').update(report.known ?? report.title).digest('hex').slice(0, 16)}`;
      if (!issues.has(issueId)) {
        issues.set(issueId, {
          id: issueId,
          version: 1,
          origin,
          report_subject: report.title,
          comment: report.known ?? report.title,
          culprit: { code: true, tool: false, harness: false },
          misc: { kind: report.kind },
        });
      }
      incidents.push({
        id: `${testId}.known.${issueId.slice(issueId.indexOf('.') + 1)}`,
        origin,
        issue_id: issueId,
        issue_version: 1,
        build_id: buildId,
        test_id: testId,
        present: true,
        comment: `${report.title}${report.step ? ` in ${report.step}` : ''}`,
      });
    }
  }
  return {
    version: { major: 5, minor: 3 },
    checkouts: [checkout],
    builds: [build],
    tests,
    issues: [...issues.values()],
    incidents,
  };
}

export function renderKcidb(result: HarnessResult, context: RenderContext = {}): string {
  return `${JSON.stringify(kcidbOf(result, context), null, 2)}\n`;
}

function scenarioTest(run: ScenarioRun, ids: { testId: string; buildId: string; origin: string; path: string; startTime?: string }): Record<string, unknown> {
  const status = kcidbStatus(run);
  const findings = findingsOf(run);
  const excerpt = findings.map((finding) => finding.report?.text ?? finding.title).join('\n\n') || run.error || run.inconclusive.join('\n');
  const reason = notPassReason(run);
  return {
    id: ids.testId,
    build_id: ids.buildId,
    origin: ids.origin,
    path: ids.path,
    status,
    comment: `${run.iommu}/${run.scenario}: ${run.verdict}${reason ? `: ${reason}` : ''}`,
    environment: { comment: `${machineName(run.iommu)} (${run.accel})`, misc: { iommu: run.iommu, accel: run.accel } },
    ...(ids.startTime ? { start_time: ids.startTime } : {}),
    ...(run.cost ? { duration: run.cost.seconds } : {}),
    log_url: pathToFileURL(run.logs.console).href,
    ...(excerpt ? { log_excerpt: excerpt.slice(0, excerptLimit) } : {}),
    ...(run.logs.dmesg ? { output_files: [{ name: 'dmesg.log', url: pathToFileURL(run.logs.dmesg).href }] } : {}),
    misc: {
      verdict: run.verdict,
      ...(status === 'MISS' ? { unknown_because: reason } : {}),
      ...(run.error ? { error: run.error } : {}),
      ...(run.inconclusive.length ? { inconclusive: run.inconclusive } : {}),
      ...(run.retried ? { retried: run.retried } : {}),
      ...(findings.length ? { findings: findings.map((finding) => ({ kind: finding.report?.kind ?? finding.kind, title: finding.title, ...(finding.step ? { step: finding.step } : {}) })) } : {}),
      ...(run.leaks.length ? { leaks: run.leaks } : {}),
      ...(run.notes.length ? { notes: run.notes } : {}),
      groups: run.groups.length,
    },
  };
}

// A KCIDB path node is letters, digits, '_' and '-'; ours use underscores: iommu.intel.vfio_bind_unbind.
function pathPart(name: string): string {
  return name.replace(/[^a-zA-Z0-9_]/g, '_') || '_';
}

function baseName(file: string): string {
  return file.split('/').filter(Boolean).at(-1) ?? file;
}

// The schema's "email" format, as validators check it: a Message-ID that is not one goes to misc only.
const emailLike = /^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/i;
