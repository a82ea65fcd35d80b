// The oracle: pure functions from kernel console text to findings. No I/O here.
export { accountGroups } from './groups.ts';
export { applyKnownIssues, KnownIssuesError, parseKnownIssues } from './known-issues.ts';
export { parseKernelLog } from './parse.ts';
export type * from './types.ts';
