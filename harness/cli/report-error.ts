import { describeError, HarnessError } from '../errors.ts';

/**
 * The one-line cause, the evidence and the log that shows it, on stderr. An
 * error that is not a HarnessError is a failure the harness did not foresee:
 * one line too, its stack only when asked (`--debug`, IOMMU_HARNESS_DEBUG=1).
 */
export function writeFailure(error: unknown, debug: boolean, stream: NodeJS.WritableStream = process.stderr): void {
  stream.write(failureText(error, debug));
}

export function failureText(error: unknown, debug: boolean): string {
  const lines: string[] = [];
  if (error instanceof HarnessError) {
    lines.push(`iommu-harness: ${error.kind} error: ${error.message}`);
    for (const line of error.excerpt) lines.push(`  | ${line}`);
    if (error.logPath) lines.push(`  log: ${error.logPath}`);
  } else {
    lines.push(`iommu-harness: unexpected error: ${describeError(error)}${debug ? '' : ' (--debug or IOMMU_HARNESS_DEBUG=1 shows the stack)'}`);
  }
  if (debug) {
    const stack = error instanceof Error ? error.stack : undefined;
    if (stack) lines.push(stack);
    const cause = error instanceof Error ? error.cause : undefined;
    if (cause instanceof Error && cause.stack) lines.push(`caused by: ${cause.stack}`);
  }
  return `${lines.join('\n')}\n`;
}
