// The `check` and `bisect` commands. main.ts hands over its program and the
// option parsers it shares with `run`, so the options mean the same everywhere.
import { writeFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { cacheLayout, prepareCache } from '../cache.ts';
import { ExitCode } from '../errors.ts';
import { createProgress } from '../log.ts';
import { iommuModels, type IommuModel } from '../machine/topology.ts';
import { renderTable } from '../report/table.ts';
import { selectScenarios } from '../../scenarios/index.ts';
import { bisectKernel } from './bisect.ts';
import { abortBisect, checkTree } from './check.ts';
import { repositoryOf } from './history.ts';
import { renderBisect, renderCheck, renderStep } from './render.ts';
import { parseSignature, SignatureSyntaxError } from './signature.ts';
import { checkRunOptions } from '../cli/options.ts';

export interface SharedParsers {
  parseIommus: (value: string) => IommuModel[];
  parsePositive: (value: string) => number;
  collect: (value: string, previous: string[]) => string[];
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
    .option('--runs <n>', 'runs per commit; any run showing the failure makes it bad', parsers.parsePositive, 1)
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
  )
    // A bad option is not the commit's fault either: git bisect run must stop, not mark it bad.
    .exitOverride((error) => {
      process.exit(error.exitCode === 0 ? ExitCode.clean : abortBisect);
    })
    .action(async (options) => {
      // Failures (a bad option included) are answered by the CLI's one writer, in git bisect's codes.
      const request = await checkedRequest(options, options.src ?? (await repositoryOf(process.cwd())), [{ option: '--ref', ref: options.ref }], options.patch);
      const outcome = await checkTree({
        ...(options.src ? { src: options.src } : {}),
        ref: options.ref,
        patches: options.patch,
        ...request,
        ...(options.expect ? { expect: options.expect } : {}),
      });
      const last = outcome.results.at(-1);
      if (last) process.stdout.write(renderTable(last));
      process.stdout.write(renderCheck(outcome));
      if (options.json) await writeFile(options.json, `${JSON.stringify(outcome, null, 2)}\n`);
      process.exitCode = outcome.exitCode;
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
    const request = await checkedRequest(options, options.src, [
      { option: '--good', ref: options.good },
      { option: '--bad', ref: options.bad },
    ], []);
    const result = await bisectKernel({
      src: options.src,
      good: options.good,
      bad: options.bad,
      patches: [],
      ...request,
      onStep: (step) => process.stdout.write(renderStep(step)),
    });
    process.stdout.write(renderBisect(result));
    if (options.json) await writeFile(options.json, `${JSON.stringify(result, null, 2)}\n`);
    process.exitCode = result.culprit ? ExitCode.clean : ExitCode.findings;
  });
}

/** The options `check` and `bisect` share, checked before any work (the cache included), as the request both take. */
async function checkedRequest(options: Record<string, unknown>, src: string, refs: { option: string; ref: string }[], patches: string[]) {
  const request = sharedRequest(options);
  await checkRunOptions({
    src,
    refs,
    patches,
    kconfigs: request.kconfigs,
    knownIssues: request.knownIssuesFile,
    json: options.json as string | undefined,
    iommus: request.iommus,
    scenarios: request.scenarios,
    accel: request.accel,
  });
  await prepareCache(cacheLayout());
  return request;
}

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
