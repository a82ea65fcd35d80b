// What a bisect prints: a line per judged commit as it happens, then the
// culprit with its evidence. Pure.
import { coverageNotes } from '../build/patch-coverage.ts';
import type { BisectResult, BisectStep } from './bisect.ts';
import type { CheckOutcome } from './check.ts';
import { describeSignature } from './signature.ts';

export function renderStep(step: BisectStep): string {
  const build = step.build === 'cached' ? 'cached' : step.build === 'failed' ? `failed after ${step.buildSeconds.toFixed(0)} s` : `${step.buildSeconds.toFixed(0)} s`;
  const runs = step.runs === 1 ? '1 run' : `${step.runs} runs`;
  return `${step.role.padEnd(8)}  ${step.commit.slice(0, 12)}  ${step.subject}\n          build ${build}, ${runs}, ${step.totalSeconds.toFixed(0)} s in all: ${step.verdict.toUpperCase()}: ${step.reason}\n`;
}

export function renderBisect(result: BisectResult): string {
  const out: string[] = [''];
  out.push(`signature: ${describeSignature(result.signature)} (check --expect '${result.expect}')`);
  if (result.culprit) {
    out.push(`culprit: ${result.culprit.commit} ${result.culprit.subject}`);
  } else {
    out.push('no single culprit: commits that could not be judged sit between the last good and the first bad; it is one of:');
    for (const candidate of result.candidates ?? []) out.push(`  ${candidate.commit} ${candidate.subject}`);
  }
  out.push(`evidence${result.culprit ? '' : ' (at the first bad commit)'}:`);
  out.push(...result.evidence.map((line) => `  ${line}`));
  const judged = result.steps.length;
  out.push(
    `${result.rangeLength} commit(s) in range, ${judged} judged (the ends included), ${result.builds} build(s), ${result.totalSeconds.toFixed(0)} s`,
  );
  return `${out.join('\n')}\n`;
}

export function renderCheck(outcome: CheckOutcome): string {
  const out = [`check: ${outcome.verdict.toUpperCase()} (exit ${outcome.exitCode}) at ${outcome.commit.slice(0, 12)}: ${outcome.reason}`];
  for (const line of outcome.evidence) out.push(`  ${line}`);
  for (const other of outcome.otherFailures) out.push(`  not the expected failure: ${other}`);
  // The patch's files outside the test: the verdict does not speak for them.
  const notes = new Set(outcome.results.flatMap((result) => coverageNotes(result.patchCoverage)));
  for (const note of notes) out.push(`  patch file ${note}`);
  return `${out.join('\n')}\n`;
}
