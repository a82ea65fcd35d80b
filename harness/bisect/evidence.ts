// The lines that show a finding, for the culprit's verdict: a reader should
// see the leak or the report without opening the log. Pure: the caller reads
// the console.
import { describeFinding, type MatchedFinding } from './signature.ts';

const maxReportLines = 12;

/**
 * For a leak: the console lines where its devices joined the group, the step
 * mark, the devices going away, and no "Releasing group N" after them. For a
 * report: its first lines as the kernel printed them.
 */
export function evidenceLines(finding: MatchedFinding, consoleText: string): string[] {
  const out = [describeFinding(finding)];
  if (finding.report) {
    out.push(...finding.report.text.split('\n').slice(0, maxReportLines).map((line) => `    ${line}`));
    return out;
  }
  const { leak } = finding;
  if (!leak) return out;
  const group = new RegExp(`iommu group ${leak.group}\\b|Releasing group ${leak.group}\\b`);
  const mark = leak.step ? `iommu-harness: step ${leak.step}` : undefined;
  const lines = consoleText.split('\n').filter((line) => {
    const ofDevice = leak.devices.some((device) => line.includes(device));
    return (ofDevice && (group.test(line) || line.includes('device-gone'))) || (mark !== undefined && line.includes(mark));
  });
  out.push(...lines.map((line) => `    ${line.trimEnd()}`));
  out.push(`    (no "Releasing group ${leak.group}" after ${leak.devices.join(', ')} left)`);
  return out;
}
