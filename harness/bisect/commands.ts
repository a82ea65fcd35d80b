// The `check` and `bisect` commands. main.ts hands over its program and the
// option parsers it shares with `run`, so the options mean the same everywhere.
import { writeFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ExitCode, HarnessError } from '../errors.ts';
import { createProgress } from '../log.ts';
import { iommuModels, type IommuModel } from '../machine/topology.ts';
import { renderTable } from '../report/table.ts';
import { selectScenarios } from '../../scenarios/index.ts';
import { bisectKernel } from './bisect.ts';
import { checkExitCode, checkTree } from './check.ts';
import { renderBisect, renderCheck, renderStep } from './render.ts';
import { parseSignature, SignatureSyntaxError } from './signature.ts';
import { writeHarnessError } from '../cli/report-error.ts';

export interface SharedParsers {
  parseIommus: (value: string) => IommuModel[];
  collect: (value: string, previous: string[]) => string[];
}

function parseRuns(value: string): number {
  const runs = Number(value);
  if (!Number.isInteger(runs) || runs < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return runs;
}

function parseExpect(value: string) {
  try {
    return parseSignature(value);
  } catch (error) {
    if (error instanceof SignatureSyntaxError) throw new InvalidArgumentError(error.message);
    throw error;
  }
}

/** The options `check` and `bisect` share with `run`. */
function addRunOptions(command: Command, parsers: SharedParsers): Command {
  return command
    .option('--kconfig <file>', 'extra kconfig fragment (repeatable)', parsers.collect, [])
    .option('--iommu <list>', 'vIOMMUs, comma-separated', parsers.parseIommus, [...iommuModels])
    .option('--scenario <name>', 'scenario to run (repeatable; default: all)', parsers.collect, [])
    .addOption(new Option('--accel <accel>', 'accelerator').choices(['auto', 'kvm', 'tcg']).default('auto'))
    .option('--known-issues <file>', 'known-issues file (default: scenarios/known-issues.txt)')
    .option('--runs <n>', 'runs per commit; any run showing the failure makes it bad', parseRuns, 1)
    .option('--json <file>', 'write the outcome as JSON')
    .option('--quiet', 'no progress on stderr');
}

export function addBisectCommands(program: Command, parsers: SharedParsers): void {
  addRunOptions(
    program
      .command('check')
      .description('git bisect run oracle: build HEAD, run the scenarios; exit 0 good, 1 bad, 125 skip, 128 abort')
      .option('--src <dir>', 'kernel git tree (default: the repository of the current directory)')
      .option('--ref <rev>', 'commit to test', 'HEAD')
      .option('--patch <file>', 'patch to apply on top (mbox or diff; repeatable, in order)', parsers.collect, [])
      .option('--expect <signature>', "the failure that makes a commit bad: a report title, or leak:SCENARIO/STEP:BDF (as `bisect` prints it); default: any failure", parseExpect),
    parsers,
  ).action(async (options) => {
    try {
      const outcome = await checkTree({
        ...(options.src ? { src: options.src } : {}),
        ref: options.ref,
        patches: options.patch,
        ...sharedRequest(options),
        ...(options.expect ? { expect: options.expect } : {}),
      });
      const last = outcome.results.at(-1);
      if (last) process.stdout.write(renderTable(last));
      process.stdout.write(renderCheck(outcome));
      if (options.json) await writeFile(options.json, `${JSON.stringify(outcome, null, 2)}\n`);
      process.exitCode = outcome.exitCode;
    } catch (error) {
      // Not the commit's fault: tell git bisect to stop rather than blame it.
      const code = checkExitCode(error);
      if (!(error instanceof HarnessError)) throw error;
      writeHarnessError(error);
      process.stderr.write(`iommu-harness: exit ${code}: git bisect run stops here\n`);
      process.exitCode = code;
    }
  });

  addRunOptions(
    program
      .command('bisect')
      .description("find the commit that introduced a leak or report, in the harness's own worktree")
      .requiredOption('--src <dir>', 'kernel git tree (its checkout is not touched)')
      .requiredOption('--good <rev>', 'a commit without the failure')
      .requiredOption('--bad <rev>', 'a later commit with it'),
    parsers,
  ).action(async (options) => {
    const result = await bisectKernel({
      src: options.src,
      good: options.good,
      bad: options.bad,
      patches: [],
      ...sharedRequest(options),
      onStep: (step) => process.stdout.write(renderStep(step)),
    });
    process.stdout.write(renderBisect(result));
    if (options.json) await writeFile(options.json, `${JSON.stringify(result, null, 2)}\n`);
    process.exitCode = result.culprit ? ExitCode.clean : ExitCode.findings;
  });
}

/** The options `check` and `bisect` share, as the request both take. */
function sharedRequest(options: Record<string, unknown>) {
  return {
    kconfigs: options.kconfig as string[],
    iommus: options.iommu as IommuModel[],
    scenarios: selectScenarios(options.scenario as string[]),
    accel: options.accel as 'auto' | 'kvm' | 'tcg',
    knownIssuesFile: options.knownIssues as string | undefined,
    runs: options.runs as number,
    progress: createProgress(process.stderr, Boolean(options.quiet)),
  };
}
