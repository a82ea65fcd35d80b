import type { HarnessError } from '../errors.ts';

/** The one-line cause, the evidence and the log that shows it, on stderr. */
export function writeHarnessError(error: HarnessError): void {
  process.stderr.write(`iommu-harness: ${error.kind} error: ${error.message}\n`);
  for (const line of error.excerpt) process.stderr.write(`  | ${line}\n`);
  if (error.logPath) process.stderr.write(`  log: ${error.logPath}\n`);
}
