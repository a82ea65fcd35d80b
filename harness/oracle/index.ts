// The oracle: pure functions from kernel console text to findings. No I/O here.
export { accountGroups } from './groups.ts';
export {
  appliesToRelease,
  applyKnownIssues,
  compareReleases,
  KnownIssuesError,
  matchesKnownIssue,
  parseKnownIssues,
  releaseMatches,
  scenarioOfStep,
  type MatchableReport,
} from './known-issues.ts';
export { oneShotMessage, parseKernelLog } from './parse.ts';
export { holdLedgerAgainstSysfs, type SysfsSnapshot, type WitnessDisagreement, type WitnessFindings } from './witness.ts';
export type * from './types.ts';
