// The plain-text report a developer pastes into a reply on the list, in the
// shape the 0-day robot's mails made familiar: what was tested (tree, base,
// patches with their Message-IDs, config, compiler, QEMU, machines), then each
// finding decoded (a lockdep report whole, a WARNING with its symbolized
// stack, a leak with its group's ledger), the step it came in and the one
// command that brings it back, then the suggested trailers. A pass is a short
// summary fit for a Tested-by: reply. Every line fits 80 columns. Pure.
import type { RenderContext } from './formats.ts';
import type { HarnessResult, ResultReport, ScenarioRun } from './result.ts';
import { findingsOf, machineName, reproduceArgs, shellQuote, type Finding } from './run-facts.ts';

export const mailWidth = 80;

export function renderMailReport(result: HarnessResult, context: RenderContext = {}): string {
  const findings = result.runs.flatMap((run) => findingsOf(run).map((finding) => ({ run, finding })));
  const out: string[] = [...headline(result, findings.length), '', ...tested(result, context)];
  if (findings.length) {
    findings.forEach(({ run, finding }, index) => out.push('', rule(), ...findingBlock(result, run, finding, index + 1, findings.length)));
    out.push('', rule());
  }
  const notJudged = notJudgedLines(result);
  if (notJudged.length) out.push('', ...notJudged);
  const known = knownLines(result);
  if (known.length) out.push('', ...known);
  if (findings.length) out.push('', ...trailers(context));
  else if (result.verdict === 'pass') out.push('', ...testedBy(result, context));
  return `${out.flatMap((line) => wrap(line, mailWidth)).join('\n')}\n`;
}

function headline(result: HarnessResult, findings: number): string[] {
  const subject = result.kernel.patches.length ? `the patch${result.kernel.patches.length > 1 ? 'es' : ''} below` : 'the kernel below';
  if (findings) return [`iommu-harness found ${findings} issue${findings > 1 ? 's' : ''} testing ${subject} (verdict: ${result.verdict.toUpperCase()}).`];
  if (result.verdict === 'pass') return [`iommu-harness tested ${subject}: every scenario passed.`];
  if (result.verdict === 'inconclusive') return [`iommu-harness could not decide on ${subject}: no finding, but a check the verdict relies on was blind (INCONCLUSIVE).`];
  return [`iommu-harness could not judge ${subject}: a run stopped before it could be judged (ERROR).`];
}

/** Key-value lines; a value too long wraps under itself. */
function field(key: string, value: string): string {
  return `${(key ? `${key}:` : '').padEnd(12)}${value}`;
}

function tested(result: HarnessResult, context: RenderContext): string[] {
  const { kernel, provenance } = result;
  const lines: string[] = [];
  const tree = kernel.source.startsWith('debian:') ? `${kernel.source}${kernel.packageVersion ? ` ${kernel.packageVersion}` : ''} (Debian's source)` : kernel.source;
  lines.push(field('tree', tree));
  const describe = provenance?.kernel.describe;
  lines.push(field('base', describe && describe !== kernel.commit.slice(0, describe.length) ? `${describe} (${kernel.commit})` : kernel.commit));
  for (const [index, file] of kernel.patches.entries()) {
    const patch = provenance?.patches.find((candidate) => candidate.file === file) ?? provenance?.patches[index];
    const mails = patch?.mails ?? [];
    if (mails.length === 0) lines.push(field('patch', file));
    for (const mail of mails) {
      lines.push(field(mail.cover ? 'cover' : 'patch', mail.subject));
      if (mail.messageId) lines.push(field('', `Message-ID: <${mail.messageId}>`));
    }
    if (mails.length) lines.push(field('', `(${file})`));
  }
  lines.push(field('kernel', kernel.release));
  if (provenance) {
    const fragments = provenance.fragments.map((fragment) => fragment.name.replace(/^kconfigs\//, '')).join(', ');
    lines.push(field('config', `profile ${provenance.profile ?? 'lockdep'}; fragments ${fragments} (sha256 ${provenance.fragmentsHash.slice(0, 16)})`));
    // The whole .config, saved beside the report by the CLI: what the 0-day robot attaches.
    if (context.configFile) lines.push(field('', `full .config: ${context.configFile.split('/').pop()}`));
    lines.push(field('compiler', provenance.compiler ?? 'unknown'));
    lines.push(field('qemu', provenance.qemu ?? 'unknown'));
  }
  const machines = [...new Set(result.runs.map((run) => run.iommu))].map(machineName).join(', ');
  lines.push(field('machines', machines || 'none booted'));
  lines.push(field('accel', `${result.accelerator.accel} (${result.accelerator.reason})`));
  if (provenance) lines.push(field('harness', `iommu-harness ${provenance.harness.version}${provenance.harness.describe ? ` (${provenance.harness.describe})` : ''}`));
  return lines;
}

function findingBlock(result: HarnessResult, run: ScenarioRun, finding: Finding, number: number, total: number): string[] {
  const lines = [`[${number}/${total}] ${finding.title}`];
  const where = [`machine ${machineName(run.iommu)} (${run.accel})`, `scenario ${run.scenario}`, ...(finding.step ? [`step ${finding.step}`] : [])];
  lines.push(`      ${where.join(', ')}`);
  if (finding.introducedBy) lines.push(`      introduced by ${finding.introducedBy.subject}`);
  if (run.retried) lines.push(`      from a second boot: ${run.retried}`);
  lines.push('', 'reproduce:', ...commandLines(['iommu-harness', ...reproduceArgs(result, run)]), '');
  if (finding.kind === 'report' && finding.report) lines.push(...decodedReport(finding.report));
  else if (finding.kind === 'leak') lines.push(...leakLedger(run, finding));
  else lines.push(`check failed: ${finding.title}`);
  lines.push('', `console: ${run.logs.console}`);
  if (run.logs.dmesg) lines.push(`dmesg:   ${run.logs.dmesg}`);
  return lines;
}

/** The command, broken into shell continuation lines that fit the width. */
function commandLines(words: string[]): string[] {
  const lines: string[] = [];
  let current = '   ';
  // An option stays on the line of its value.
  const units = words.map(shellQuote).reduce<string[]>((all, word) => (all.length && /^--/.test(all.at(-1)!) && !all.at(-1)!.includes(' ') ? [...all.slice(0, -1), `${all.at(-1)} ${word}`] : [...all, word]), []);
  for (const word of units) {
    if (current.trim() && current.length + 1 + word.length + 2 > mailWidth) {
      lines.push(`${current} \\`);
      current = '       ';
    }
    current += ` ${word}`;
  }
  lines.push(current);
  return lines;
}

// Register dumps and the code bytes say little in a reply; the call trace, decoded, says where.
const registerLine = /^(?:Code|RSP|RAX|RDX|RBP|R10|R13|FS|CS|CR2|DR0|DR3|DR6):/;

function decodedReport(report: ResultReport): string[] {
  const lines: string[] = [];
  if (report.corrupted) lines.push('(the report\'s lines were interleaved with other output: its title is a best effort)');
  if (report.device) lines.push(`device ${report.device}${report.address ? `, address ${report.address}` : ''}`);
  if (report.repeats) lines.push(`(the kernel printed it ${report.repeats + 1} times)`);
  const text = report.text.split('\n');
  const located = report.frames?.filter((frame) => frame.location) ?? [];
  // A lockdep report is its chain: every line of it is the evidence, so it goes whole.
  if (report.kind === 'lockdep' || located.length === 0) return [...lines, ...text];
  const trace = text.findIndex((line) => /^Call Trace:/.test(line.trim()));
  const header = (trace < 0 ? text.slice(0, 1) : text.slice(0, trace)).filter((line) => !registerLine.test(line.trim()));
  const frames = report.frames!.map((frame) => ` ${frame.function}${frame.location ? ` (${frame.location})` : ''}`);
  return [...lines, ...header, 'Call Trace (symbolized):', ...frames];
}

function leakLedger(run: ScenarioRun, finding: Finding): string[] {
  const leak = run.leaks.find((candidate) => finding.title.startsWith(`iommu group ${candidate.group} `));
  if (!leak) return [finding.title];
  const instances = run.groups.filter((group) => group.id === leak.group);
  const made = instances.find((group) => !group.released)?.madeIn ?? instances.at(-1)?.madeIn;
  // The steps between the group's making and its last device's departure: what used it.
  const steps = run.steps ?? [];
  const from = made && made !== 'boot' ? steps.indexOf(made.slice(run.scenario.length + 1)) : 0;
  const to = leak.step ? steps.indexOf(leak.step.slice(run.scenario.length + 1)) : steps.length - 1;
  const used = steps.slice(Math.max(from, 0), to >= 0 ? to : steps.length);
  return [
    `iommu group ${leak.group}, its ledger from the kernel log:`,
    `  added:        ${leak.devices.join(', ')}${made ? ` (group made ${made === 'boot' ? 'at boot' : `in step ${made}`})` : ''}${instances.length > 1 ? ` (group ${leak.group} was made ${instances.length} times in this scenario)` : ''}`,
    `  used by:      scenario ${run.scenario}${used.length ? `, steps ${used.join(', ')}` : ''}`,
    `  device gone:  ${leak.step ? `in step ${leak.step}` : 'in a step the log does not name'}`,
    '  released:     never ("Releasing iommu group" did not follow)',
  ];
}

function notJudgedLines(result: HarnessResult): string[] {
  const lines: string[] = [];
  for (const run of result.runs) {
    const where = `${run.iommu}/${run.scenario}`;
    if (run.verdict === 'inconclusive') for (const reason of run.inconclusive) lines.push(`${where}: INCONCLUSIVE: ${reason}`);
    if (run.verdict === 'error') lines.push(`${where}: ERROR: ${run.error ?? 'could not be judged'}`);
  }
  for (const reason of result.inconclusive ?? []) lines.push(`the whole run: INCONCLUSIVE: ${reason}`);
  return lines.length ? ['Not judged (neither a pass nor a finding):', ...lines] : [];
}

function knownLines(result: HarnessResult): string[] {
  const known = result.runs.flatMap((run) => run.reports.filter((report) => report.known).map((report) => `${run.iommu}/${run.scenario}: ${report.title} (${report.known})`));
  return known.length ? ['Known issues seen, not failing this run:', ...known.map((line) => `  ${line}`)] : [];
}

function trailers(context: RenderContext): string[] {
  return [
    'If you fix the issue in a separate patch/commit (i.e. not just a new version of',
    'the same patch/commit), kindly add following tags',
    `| Reported-by: ${context.reportedBy ?? 'NAME <EMAIL>'}`,
    `| Closes: ${context.closes ?? 'LINK-TO-THIS-REPORT'}`,
  ];
}

function testedBy(result: HarnessResult, context: RenderContext): string[] {
  const lines = ['What ran:'];
  for (const iommu of [...new Set(result.runs.map((run) => run.iommu))]) {
    const scenarios = result.runs.filter((run) => run.iommu === iommu && run.scenario !== 'boot').map((run) => run.scenario);
    lines.push(`  ${machineName(iommu)}: ${scenarios.join(', ') || 'boot only'}`);
  }
  const groups = result.runs.reduce((sum, run) => sum + run.groups.filter((group) => group.released).length, 0);
  lines.push(
    `No lockdep report, WARNING, BUG, refcount or KASAN report, IOMMU fault or leaked iommu group${result.runs.some((run) => run.reports.some((report) => report.known)) ? ' beyond the known issues above' : ''}; ${groups} iommu group${groups === 1 ? '' : 's'} made and released as the scenarios expect.`,
  );
  for (const run of result.runs) for (const skipped of run.skippedSteps ?? []) lines.push(`Skipped: ${run.iommu}/${skipped.step}: ${skipped.reason}`);
  return [...lines, '', `Tested-by: ${context.testedBy ?? 'NAME <EMAIL>'}`];
}

const rule = () => '-'.repeat(mailWidth);

/**
 * A line longer than the width breaks at a space where it can, else at the width; what follows is
 * indented two more than the line, so a kernel line cut in two still reads as one.
 */
export function wrap(line: string, width: number): string[] {
  if (line.length <= width) return [line];
  const indent = ' '.repeat(Math.min((/^\s*/.exec(line)?.[0].length ?? 0) + 2, 24));
  // Key-value lines ("config:     ...") wrap under their value.
  const keyed = /^[a-z-]*:\s{2,}/.exec(line)?.[0].length ?? /^ {12}/.exec(line)?.[0].length;
  const continuation = keyed ? ' '.repeat(keyed) : indent;
  const lines: string[] = [];
  let rest = line;
  let prefix = '';
  while ((prefix + rest).length > width) {
    const room = width - prefix.length;
    const space = rest.lastIndexOf(' ', room);
    const cut = space > Math.max(room / 3, 1) && rest.slice(0, space).trim() ? space : room;
    lines.push((prefix + rest.slice(0, cut)).trimEnd());
    rest = rest.slice(cut).trimStart();
    prefix = continuation;
  }
  if (rest) lines.push(prefix + rest);
  return lines;
}
