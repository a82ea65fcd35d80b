import { ExitCode } from '../errors.ts';
import type { HarnessResult } from './result.ts';

/**
 * 1 only for findings (git bisect blames a commit on 1); 3 when a run could not be judged; 4 when
 * nothing was found but a check the verdict relies on was off or blind; 0 when everything passed.
 */
export function exitCodeOf(result: HarnessResult): ExitCode {
  switch (result.verdict) {
    case 'fail':
      return ExitCode.findings;
    case 'error':
      return ExitCode.infrastructure;
    case 'inconclusive':
      return ExitCode.inconclusive;
    case 'pass':
      return ExitCode.clean;
  }
}
