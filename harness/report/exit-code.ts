import { ExitCode } from '../errors.ts';
import type { HarnessResult } from './result.ts';

/** 1 when something was found, 3 when the harness could not judge, else 0. */
export function exitCodeOf(result: HarnessResult): ExitCode {
  if (result.verdict === 'fail') return ExitCode.findings;
  if (result.verdict === 'error') return ExitCode.infrastructure;
  return ExitCode.clean;
}
