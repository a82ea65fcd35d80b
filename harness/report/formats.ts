// The report formats, one row each: a name, what it is for, and a pure
// renderer from the result. The CLI's --report, --kcidb, --junit and --tap
// (and `iommu-harness report RESULT.json --format NAME`) look a row up here;
// adding a format is adding a row.
import { renderKcidb } from './kcidb.ts';
import { renderKtap } from './ktap.ts';
import { renderMailReport } from './mail-report.ts';
import { renderRunJUnit } from './junit-run.ts';
import type { HarnessResult } from './result.ts';

/** What a renderer may be told beyond the result; every field is optional. */
export interface RenderContext {
  /** KCIDB: the submitting CI system's name, lower-case letters, digits, '_' (default iommu_harness). */
  origin?: string;
  /** KCIDB: the run's id under the origin (default: a hash of the result, so the same result gives the same ids). */
  runId?: string;
  /** KCIDB: the tree's widely known name (mainline, iommu-next), when the user gives one. */
  treeName?: string;
  /** KCIDB: the tree's https:// URL, when the user gives one. */
  gitUrl?: string;
  /** KCIDB: the kernel's .config and build log as saved beside the result. */
  configFile?: string;
  buildLog?: string;
  /** Mail report: the trailers' values; placeholders the user fills in by default. */
  reportedBy?: string;
  closes?: string;
  testedBy?: string;
}

export type ReportFormatName = 'report' | 'kcidb' | 'junit' | 'tap' | 'json';

export interface ReportFormat {
  name: ReportFormatName;
  /** The CLI option that writes it to a file. */
  option: string;
  description: string;
  render(result: HarnessResult, context: RenderContext): string;
}

export const reportFormats: readonly ReportFormat[] = [
  { name: 'report', option: '--report', description: 'a plain-text report to paste into a reply on the list (80 columns)', render: renderMailReport },
  { name: 'kcidb', option: '--kcidb', description: 'KCIDB 5.3 JSON: checkout, build, a test per scenario, known issues and incidents', render: renderKcidb },
  { name: 'junit', option: '--junit', description: 'JUnit XML: a testcase per vIOMMU x scenario, skipped steps as skipped testcases, a selftest scenario\'s cases as testcases', render: renderRunJUnit },
  { name: 'tap', option: '--tap', description: 'KTAP version 1: a test per vIOMMU x scenario, subtests per known step (a selftest scenario\'s: per case)', render: renderKtap },
  { name: 'json', option: '--json', description: 'the result itself, as JSON', render: (result) => `${JSON.stringify(result, null, 2)}\n` },
];

export function reportFormat(name: string): ReportFormat | undefined {
  return reportFormats.find((format) => format.name === name);
}
