// The library's public API: what a kernel developer's own ava test imports to
// build a kernel, boot machines with the topology they want, drive them
// through the typed guest API, and assert on the oracle's findings.
export { runHarness, prepareKernel, loadKnownIssues, type RunRequest, type PreparedKernel } from './run.ts';
export type { KernelRequest } from './build/index.ts';
export { Guest, type VfioOptions } from './scenario/guest.ts';
export type { Scenario } from './scenario/scenario.ts';
export { eduDevice, rootPort, iommuModels, type BootDevice, type IommuModel, type Topology } from './machine/topology.ts';
export type { HarnessResult, ScenarioRun, ResultReport, ResultLeak, ResultGroup, Verdict } from './report/result.ts';
export { renderTable } from './report/table.ts';
export { createProgress, silentProgress, type Progress } from './log.ts';
export { HarnessError, ExitCode } from './errors.ts';
export { parseKernelLog, accountGroups } from './oracle/index.ts';
export { everyScenario, namedOnlyScenarios, scenarios, scenarioByName } from '../scenarios/index.ts';
