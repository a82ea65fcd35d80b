// The command line. Each command turns its options into a library call and
// the result into output and an exit code; failures end in one line with the
// cause, the log that shows it, and the exit code of their kind.
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, Option } from 'commander';
import { ExitCode, HarnessError } from '../errors.ts';
import { createProgress, type Progress } from '../log.ts';
import { installReaper } from '../machine/reaper.ts';
import { iommuModels } from '../machine/topology.ts';
import { cacheLayout, prepareCache } from '../cache.ts';
import { checkExitCode } from '../bisect/check.ts';
import { exitCodeOf } from '../report/exit-code.ts';
import { judgeLog } from '../report/verdict.ts';
import { viommuTracePath } from '../machine/qemu-args.ts';
import { withViommuLedger } from '../oracle/viommu-evidence.ts';
import { renderTable } from '../report/table.ts';
import { runHarness } from '../run.ts';
import { runEachPatch } from '../series.ts';
import { describeSeries, readSeries, seriesBaseFor } from '../source/series.ts';
import { everyScenario, scenarios, selectScenarios } from '../../scenarios/index.ts';
import { renderChecks, runChecks } from './doctor.ts';
import { profileFragment } from '../build/index.ts';
import { setup } from './setup.ts';
import { writeFailure } from './report-error.ts';
import { readLog, requireKernelLog, stdinName } from './read-log.ts';
import { checkOutputFile, checkRunOptions, parseIommus, parsePositive } from './options.ts';
import { reportFormat, reportFormats, type RenderContext } from '../report/formats.ts';
import { checkOrigin, defaultOrigin } from '../report/kcidb.ts';
import { harnessVersionLine } from '../report/provenance.ts';
import type { HarnessResult } from '../report/result.ts';
import { selectMachines } from '../machine/select.ts';
import { machines } from '../machine/machines.ts';
import { filesTouched } from '../source/patch.ts';
import { kernelTreeAt } from '../source/tree-here.ts';
import { runShell } from './shell.ts';
import { addNightlyCommands } from '../nightly/commands.ts';
import { addBisectCommands } from '../bisect/commands.ts';

const collect = (value: string, previous: string[]) => [...previous, value];

const program = new Command('iommu-harness')
  .description('Boot a kernel under emulated intel-iommu/virtio-iommu and tell whether IOMMU groups leak or the kernel warns.')
  .version(await harnessVersionLine(), '--version', 'print the harness version')
  .option('--debug', 'print the stack trace of an unexpected error (or set IOMMU_HARNESS_DEBUG=1)')
  .showHelpAfterError()
  .exitOverride((error) => {
    process.exit(error.exitCode === 0 ? ExitCode.clean : ExitCode.usage);
  });

/** The command being run, so a failure gets that command's exit code (`check` speaks git bisect's). */
let running: string | undefined;
program.hook('preAction', (_program, action) => {
  running = action.name();
});

program
  .command('run')
  .description('build, boot and run scenarios; print a verdict table')
  .option('--src <dir>', 'kernel git tree, or debian:6.12 / debian:6.1 (Debian 12) or debian:7.2 / debian:unstable (Debian unstable, downloaded) for Debian\'s packaged source (default: the kernel git tree you are in, else debian:6.12, unpacked into the cache)')
  .option('--ref <rev>', 'commit of --src to test', 'HEAD')
  .option('--patch <file>', 'patch to apply (mbox or diff; repeatable, in order); a b4 or format-patch series too: an .mbx (or .mbx.gz) or a folder of format-patch output, its cover letter skipped, its base-commit the base when --ref is not given', collect, [])
  .option('--each-patch', 'build and judge the series patch by patch (1, 1..2, ...; incremental builds) and name, for every finding, the first patch that brings it')
  .option('--kconfig <file>', 'extra kconfig fragment (repeatable)', collect, [])
  .option('--profile <name>', 'kconfig profile from kconfigs/profiles: lockdep (default), leakcheck (kmemleak), kasan', 'lockdep')
  .option('--iommu <list>', `machines, comma-separated: ${iommuModels.join(', ')} (none: no IOMMU, vfio no-iommu mode); default: chosen by the patches' files (one driver's change: its machine; anything else: every machine)`, parseIommus)
  .option('--scenario <name>', 'scenario to run (repeatable; default: all but the kernel\'s own test suites, which run when named)', collect, [])
  .option('--cycles <n>', 'repeat each scenario n times in its boot', parsePositive, 1)
  .option('--selftest-budget <seconds>', 'seconds each selftest program may spend starting cases; the cases it does not reach are listed as skipped, not reached (default: no budget)', parsePositive)
  .option('--parallel <n>', 'boots at once (default: one per core, as memory allows)', parsePositive)
  .addOption(new Option('--accel <accel>', 'accelerator').choices(['auto', 'kvm', 'tcg']).default('auto'))
  .option('--known-issues <file>', 'known-issues file (default: scenarios/known-issues.txt)')
  .option('--json <file>', 'write the result as JSON')
  .option('--report <file>', 'write a plain-text report to paste into a reply on the list (80 columns: each finding decoded with the command that reproduces it, Reported-by:/Closes: placeholders; a pass as a Tested-by: summary)')
  .option('--kcidb <file>', 'write the result as KCIDB 5.3 JSON (checkout, build, a test per scenario, known issues as issues)')
  .option('--kcidb-origin <name>', 'KCIDB origin: lower-case letters, digits and _', defaultOrigin)
  .option('--junit <file>', 'write JUnit XML, a testcase per machine x scenario')
  .option('--tap <file>', 'write KTAP version 1, a test per machine x scenario with steps as subtests')
  .option('--quiet', 'print only the table')
  .action(async (options, command: Command) => {
    const kconfigs = [await profileFragment(options.profile), ...options.kconfig];
    const selected = selectScenarios(options.scenario);
    const progress = createProgress(process.stderr, options.quiet);
    const invalidOrigin = checkOrigin(options.kcidbOrigin);
    if (invalidOrigin) throw new HarnessError('usage', `--kcidb-origin: ${invalidOrigin}`);
    options.src ??= await treeYouStandIn(progress, 'testing');
    for (const option of ['report', 'kcidb', 'junit', 'tap'] as const) if (options[option]) await checkOutputFile(options[option], `--${option}`);
    // A b4 series: its cover letter skipped, one file per patch for --each-patch, its base-commit as the base.
    const series = await readSeries(options.patch, { splitDir: path.join(cacheLayout().root, 'series'), split: Boolean(options.eachPatch) });
    for (const line of describeSeries(series)) progress.step(line);
    options.patch = series.patches.map((patch) => patch.file);
    const base = await seriesBaseFor({ series, src: options.src, ref: options.ref, refGiven: command.getOptionValueSource('ref') === 'cli', layout: cacheLayout(), progress });
    if (base.line) progress.step(base.line);
    options.ref = base.ref;
    if (!options.iommu) {
      const selection = selectMachines(await patchedFiles(options.patch));
      progress.step(`machines: ${selection.machines.join(', ')} (${selection.reason}; --iommu to choose)`);
      options.iommu = selection.machines;
    }
    await checkRunOptions({
      ...(options.src ? { src: options.src } : {}),
      refs: [{ option: '--ref', ref: options.ref }],
      patches: options.patch,
      kconfigs: options.kconfig,
      knownIssues: options.knownIssues,
      json: options.json,
      iommus: options.iommu,
      scenarios: selected,
      accel: options.accel,
    });
    await prepareCache(cacheLayout());
    const request = {
      src: options.src,
      ref: options.ref,
      patches: options.patch,
      kconfigs,
      iommus: options.iommu,
      scenarios: selected,
      accel: options.accel,
      knownIssuesFile: options.knownIssues,
      cycles: options.cycles,
      ...(options.parallel ? { parallelBoots: options.parallel } : {}),
      ...(options.selftestBudget ? { selftestBudgetSeconds: options.selftestBudget } : {}),
      profile: options.profile,
      commandLine: process.argv.slice(2),
      progress,
    };
    const result = options.eachPatch ? await runEachPatch(request, series) : await runHarness(request);
    process.stdout.write(renderTable(result));
    if (options.json) await writeFile(options.json, `${JSON.stringify(result, null, 2)}\n`);
    await writeFormats(result, options);
    process.exitCode = exitCodeOf(result);
  });

/**
 * --report, --kcidb, --junit, --tap: each a row of harness/report/formats.ts.
 * The report gets the kernel's whole .config beside it (REPORT.config), to
 * attach to the reply as the 0-day robot does.
 */
async function writeFormats(result: HarnessResult, options: Record<string, string | undefined>): Promise<void> {
  for (const name of ['report', 'kcidb', 'junit', 'tap'] as const) {
    const file = options[name];
    if (!file) continue;
    let configFile = result.kernel.config;
    if (name === 'report' && result.kernel.config) {
      configFile = `${file}.config`;
      await copyFile(result.kernel.config, configFile);
    }
    const context: RenderContext = { ...(options.kcidbOrigin ? { origin: options.kcidbOrigin } : {}), ...(configFile ? { configFile } : {}), ...(result.kernel.buildLog ? { buildLog: result.kernel.buildLog } : {}) };
    await writeFile(file, reportFormat(name)!.render(result, context));
  }
}

/** Without --src, standing in a kernel tree means "this tree", as `check` reads it; said, since the default is otherwise Debian's 6.12. */
async function treeYouStandIn(progress: Progress, doing: string): Promise<string | undefined> {
  const here = await kernelTreeAt(process.cwd());
  if (here) progress.step(`${doing} the kernel tree you are in: ${here} (--src debian:6.12 for Debian's source)`);
  return here;
}

/** The files the --patch files change, for choosing machines before anything is built. */
async function patchedFiles(patches: string[]): Promise<string[]> {
  const texts = await Promise.all(patches.map((patch) => readFile(patch, 'utf8').catch(() => '')));
  return [...new Set(texts.flatMap(filesTouched))];
}

program
  .command('report')
  .description('render a saved result (run --json) in another format, to stdout')
  .argument('<result.json>', 'a result written by run --json')
  .addOption(new Option('--format <name>', 'output format').choices(reportFormats.map((format) => format.name)).default('report'))
  .option('--kcidb-origin <name>', 'KCIDB origin: lower-case letters, digits and _', defaultOrigin)
  .action(async (file: string, options) => {
    const text = await readFile(file, 'utf8').catch(() => {
      throw new HarnessError('usage', `cannot read ${file}`);
    });
    let result: HarnessResult;
    try {
      result = JSON.parse(text) as HarnessResult;
    } catch {
      throw new HarnessError('usage', `${file}: not JSON`);
    }
    if (!result || typeof result !== 'object' || !Array.isArray(result.runs) || !result.kernel) throw new HarnessError('usage', `${file}: not a result written by run --json (no runs or kernel)`);
    const invalidOrigin = checkOrigin(options.kcidbOrigin);
    if (invalidOrigin) throw new HarnessError('usage', `--kcidb-origin: ${invalidOrigin}`);
    process.stdout.write(reportFormat(options.format)!.render(result, { origin: options.kcidbOrigin }));
  });

program
  .command('parse')
  .description('run the oracle on saved console or dmesg logs; exit 1 on a report, a leak or a double release, 4 when lines were dropped or kmemleak was off')
  .argument('<file...>', 'log files, plain, gzip or xz; - for stdin')
  .option('--json', 'print JSON')
  .option('--viommu-trace <file>', 'the boot\'s vIOMMU trace (default: viommu-trace.log beside each log, when there)')
  .action(async (files: string[], options) => {
    if (files.filter((file) => file === stdinName).length > 1) throw new HarnessError('usage', 'stdin (-) can be read once');
    const texts = [];
    // Every input is read and checked before any is judged: a wrong file among them is exit 2, not a verdict on the rest.
    for (const file of files) {
      const text = await readLog(file);
      requireKernelLog(text, file);
      texts.push({ file, text });
    }
    const results = [];
    for (const { file, text } of texts) {
      // The same report objects as `run --json` writes.
      // stdin has no folder for a trace to be beside (dirname('-') is the current folder).
      const tracePath = options.viommuTrace ?? (file === stdinName ? undefined : viommuTracePath(file));
      const trace = tracePath === undefined ? undefined : await readLog(tracePath).catch((error: unknown) => {
        if (options.viommuTrace) throw error;
      });
      results.push({ file, ...(trace === undefined || tracePath === undefined ? judgeLog(text) : withViommuLedger(judgeLog(text), trace, tracePath)) });
    }
    if (options.json) {
      process.stdout.write(`${JSON.stringify(results.length === 1 ? results[0] : results, null, 2)}\n`);
    } else {
      for (const result of results) {
        const doubleReleases = result.anomalies.filter((anomaly) => anomaly.kind === 'double-release');
        process.stdout.write(`${result.file}: ${result.verdict.toUpperCase()}: ${result.reports.length} report(s), ${result.groups.length} group(s), ${result.leaks.length} leak(s), ${doubleReleases.length} double release(s)\n`);
        for (const report of result.reports) process.stdout.write(`  ${report.kind}: ${report.title}${report.corrupted ? ' (corrupted)' : ''}\n`);
        for (const leak of result.leaks) process.stdout.write(`  leak: group ${leak.group} (${leak.devices.join(', ')})${leak.step ? ` after ${leak.step}` : ''}\n`);
        for (const anomaly of doubleReleases) process.stdout.write(`  double release: group ${anomaly.group} (log line ${anomaly.line + 1})\n`);
        for (const reason of result.inconclusive) process.stdout.write(`  inconclusive: ${reason}\n`);
      }
    }
    const verdicts = results.map((result) => result.verdict);
    process.exitCode = verdicts.includes('fail') ? ExitCode.findings : verdicts.includes('inconclusive') ? ExitCode.inconclusive : ExitCode.clean;
  });

program
  .command('scenarios')
  .description('list the scenarios and what each proves')
  .action(() => {
    const width = Math.max(...everyScenario.map((scenario) => scenario.name.length));
    for (const scenario of everyScenario) {
      process.stdout.write(`${scenario.name.padEnd(width)}  [${scenario.iommus.join(',')}]  ${scenario.proves}\n`);
      if (scenario.onlyWhenNamed) process.stdout.write(`${''.padEnd(width)}  runs only when named (--scenario ${scenario.name}): ${scenario.onlyWhenNamed}\n`);
      // Where it does not run, and why (Scenario.notOn).
      for (const [machine, why] of Object.entries(scenario.notOn ?? {})) process.stdout.write(`${''.padEnd(width)}  not on ${machine}: ${why}\n`);
    }
  });

program
  .command('shell')
  .description('boot one machine with the kernel a run would build (and a scenario\'s devices) and open a shell in the guest, vfio-helper on its PATH; QEMU ends with the shell')
  .option('--src <dir>', 'kernel git tree, or debian:6.12 / debian:6.1 / debian:7.2 / debian:unstable (default: the kernel git tree you are in, else debian:6.12)')
  .option('--ref <rev>', 'commit of --src to boot', 'HEAD')
  .option('--patch <file>', 'patch to apply (repeatable, in order)', collect, [])
  .option('--kconfig <file>', 'extra kconfig fragment (repeatable)', collect, [])
  .option('--profile <name>', 'kconfig profile: lockdep (default), leakcheck, kasan', 'lockdep')
  .option('--iommu <machine>', `the machine: ${iommuModels.join(', ')}`, 'intel')
  .option('--scenario <name>', "boot with this scenario's devices (repeatable; default: none)", collect, [])
  .addOption(new Option('--accel <accel>', 'accelerator').choices(['auto', 'kvm', 'tcg']).default('auto'))
  .option('--gdb', "open QEMU's gdbstub on 127.0.0.1 and print the gdb command line")
  .action(async (options) => {
    const [iommu, ...more] = parseIommus(options.iommu);
    if (!iommu || more.length) throw new HarnessError('usage', '--iommu: shell boots one machine');
    const kconfigs = [await profileFragment(options.profile), ...options.kconfig];
    const progress = createProgress(process.stderr, false);
    options.src ??= await treeYouStandIn(progress, 'booting');
    const scenarioList = options.scenario.length ? selectScenarios(options.scenario) : [];
    // The machine alone is fine here: checked against a scenario that runs on it, or on its own.
    await checkRunOptions({ ...(options.src ? { src: options.src } : {}), refs: [{ option: '--ref', ref: options.ref }], patches: options.patch, kconfigs: options.kconfig, iommus: [iommu], scenarios: scenarioList.length ? scenarioList : scenarios.filter((scenario) => scenario.iommus.includes(iommu)), accel: options.accel });
    await prepareCache(cacheLayout());
    process.exitCode = await runShell({
      ...(options.src ? { src: options.src } : {}),
      ref: options.ref,
      patches: options.patch,
      kconfigs,
      iommu,
      scenarios: scenarioList,
      accel: options.accel,
      gdb: Boolean(options.gdb),
      progress,
    });
  });

program
  .command('machines')
  .description('list the machines (harness/machine/machines.ts): what each boots and what it cannot show')
  .action(() => {
    for (const [name, machine] of Object.entries(machines)) {
      process.stdout.write(`${name}: ${machine.summary} (${machine.arch}; -machine ${machine.machineOption}${'iommuDevice' in machine && machine.iommuDevice ? ` -device ${machine.iommuDevice}` : ''})\n`);
      if (machine.driverPaths.length) process.stdout.write(`  runs only here: ${machine.driverPaths.join(', ')}\n`);
      for (const limit of machine.cannot) process.stdout.write(`  cannot: ${limit}\n`);
    }
  });

program
  .command('doctor')
  .description('check every prerequisite and name what is missing')
  .action(async () => {
    const checks = await runChecks();
    process.stdout.write(renderChecks(checks));
    // A missing prerequisite is the user's to install: exit 2, as a run that lacks it.
    process.exitCode = checks.some((check) => check.required && !check.ok) ? ExitCode.usage : ExitCode.clean;
  });

program
  .command('setup')
  .description('install the Debian packages the harness needs (as root; otherwise prints the command)')
  .action(setup);

addNightlyCommands(program);
addBisectCommands(program, { parseIommus, parsePositive, collect });

installReaper((signal) => process.stderr.write(`\niommu-harness: interrupted by ${signal}; QEMU stopped\n`));

/**
 * Every failure ends here: one line with its cause and log, and the exit code
 * of its kind. Anything that is not a HarnessError is the harness's own
 * failure (exit 3; for `check`, 128 so git bisect stops instead of blaming
 * the commit), never 1, which means findings.
 */
function fail(error: unknown): void {
  const check = running === 'check';
  const code = check ? checkExitCode(error) : error instanceof HarnessError ? error.exitCode : ExitCode.infrastructure;
  writeFailure(error, Boolean(program.opts().debug) || process.env.IOMMU_HARNESS_DEBUG === '1');
  if (check && code !== ExitCode.interrupted) process.stderr.write(`iommu-harness: exit ${code}: not the commit's fault; git bisect run stops here\n`);
  process.exitCode = code;
}

// Errors thrown outside the awaited chain (a timer, a stream) end the same way, not in node's exit 1.
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (error: unknown) => {
    fail(error);
    process.exit();
  });
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  fail(error);
}
