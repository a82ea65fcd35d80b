// The command line. Each command turns its options into a library call and
// the result into output and an exit code; failures end in one line with the
// cause, the log that shows it, and the exit code of their kind.
import { readFile, writeFile } from 'node:fs/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ExitCode, HarnessError } from '../errors.ts';
import { createProgress } from '../log.ts';
import { installReaper } from '../machine/reaper.ts';
import { iommuModels, type IommuModel } from '../machine/topology.ts';
import { parseKernelLog, accountGroups } from '../oracle/index.ts';
import { exitCodeOf } from '../report/exit-code.ts';
import { toResultReport } from '../report/verdict.ts';
import { renderTable } from '../report/table.ts';
import { runHarness } from '../run.ts';
import { scenarios, selectScenarios } from '../../scenarios/index.ts';
import { renderChecks, runChecks } from './doctor.ts';
import { profileFragment } from '../build/index.ts';
import { setup } from './setup.ts';
import { writeHarnessError } from './report-error.ts';
import { addNightlyCommands } from '../nightly/commands.ts';
import { addBisectCommands } from '../bisect/commands.ts';

const collect = (value: string, previous: string[]) => [...previous, value];

function parseIommus(value: string): IommuModel[] {
  const models = value.split(',').map((model) => model.trim());
  for (const model of models) {
    if (!iommuModels.includes(model as IommuModel)) throw new InvalidArgumentError(`unknown vIOMMU "${model}" (known: ${iommuModels.join(', ')})`);
  }
  return models as IommuModel[];
}

function parsePositive(value: string): number {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1) throw new InvalidArgumentError('expected a whole number of at least 1');
  return number;
}

const program = new Command('iommu-harness')
  .description('Boot a kernel under emulated intel-iommu/virtio-iommu and tell whether IOMMU groups leak or the kernel warns.')
  .showHelpAfterError()
  .exitOverride((error) => {
    process.exit(error.exitCode === 0 ? ExitCode.clean : ExitCode.usage);
  });

program
  .command('run')
  .description('build, boot and run scenarios; print a verdict table')
  .option('--src <dir>', 'kernel git tree (default: Debian linux-source-6.12, unpacked into the cache)')
  .option('--ref <rev>', 'commit of --src to test', 'HEAD')
  .option('--patch <file>', 'patch to apply (mbox or diff; repeatable, in order)', collect, [])
  .option('--kconfig <file>', 'extra kconfig fragment (repeatable)', collect, [])
  .option('--profile <name>', 'kconfig profile from kconfigs/profiles: lockdep (default), leakcheck (kmemleak), kasan', 'lockdep')
  .option('--iommu <list>', 'machines: intel, virtio, none (no IOMMU: vfio no-iommu mode), comma-separated', parseIommus, [...iommuModels])
  .option('--scenario <name>', 'scenario to run (repeatable; default: all)', collect, [])
  .option('--cycles <n>', 'repeat each scenario n times in its boot', parsePositive, 1)
  .addOption(new Option('--accel <accel>', 'accelerator').choices(['auto', 'kvm', 'tcg']).default('auto'))
  .option('--known-issues <file>', 'known-issues file (default: scenarios/known-issues.txt)')
  .option('--json <file>', 'write the result as JSON')
  .option('--quiet', 'print only the table')
  .action(async (options) => {
    const result = await runHarness({
      src: options.src,
      ref: options.ref,
      patches: options.patch,
      kconfigs: [await profileFragment(options.profile), ...options.kconfig],
      iommus: options.iommu,
      scenarios: selectScenarios(options.scenario),
      accel: options.accel,
      knownIssuesFile: options.knownIssues,
      cycles: options.cycles,
      progress: createProgress(process.stderr, options.quiet),
    });
    process.stdout.write(renderTable(result));
    if (options.json) await writeFile(options.json, `${JSON.stringify(result, null, 2)}\n`);
    process.exitCode = exitCodeOf(result);
  });

program
  .command('parse')
  .description('run the oracle on saved console or dmesg logs; exit 1 when a report is found')
  .argument('<file...>', 'log files')
  .option('--json', 'print JSON')
  .action(async (files: string[], options) => {
    const results = [];
    for (const file of files) {
      const text = await readFile(file, 'utf8').catch(() => {
        throw new HarnessError('usage', `cannot read ${file}`);
      });
      const parsed = parseKernelLog(text);
      const accounting = accountGroups(parsed.groupEvents);
      // The same report objects as `run --json` writes.
      results.push({
        file,
        reports: parsed.reports.map(toResultReport),
        groups: accounting.groups.map((group) => ({ id: group.id, devices: group.devices, released: group.released })),
        leaks: accounting.leaks,
        anomalies: accounting.anomalies,
        ...(parsed.lockdepOff ? { lockdepOff: parsed.lockdepOff } : {}),
      });
    }
    if (options.json) {
      process.stdout.write(`${JSON.stringify(results.length === 1 ? results[0] : results, null, 2)}\n`);
    } else {
      for (const result of results) {
        process.stdout.write(`${result.file}: ${result.reports.length} report(s), ${result.groups.length} group(s), ${result.leaks.length} leak(s)\n`);
        for (const report of result.reports) process.stdout.write(`  ${report.kind}: ${report.title}${report.corrupted ? ' (corrupted)' : ''}\n`);
        for (const leak of result.leaks) process.stdout.write(`  leak: group ${leak.group} (${leak.devices.join(', ')})\n`);
      }
    }
    process.exitCode = results.some((result) => result.reports.length > 0) ? ExitCode.findings : ExitCode.clean;
  });

program
  .command('scenarios')
  .description('list the scenarios and what each proves')
  .action(() => {
    const width = Math.max(...scenarios.map((scenario) => scenario.name.length));
    for (const scenario of scenarios) {
      process.stdout.write(`${scenario.name.padEnd(width)}  [${scenario.iommus.join(',')}]  ${scenario.proves}\n`);
    }
  });

program
  .command('doctor')
  .description('check every prerequisite and name what is missing')
  .action(async () => {
    const checks = await runChecks();
    process.stdout.write(renderChecks(checks));
    process.exitCode = checks.some((check) => check.required && !check.ok) ? ExitCode.infrastructure : ExitCode.clean;
  });

program
  .command('setup')
  .description('install the Debian packages the harness needs (as root; otherwise prints the command)')
  .action(setup);

addNightlyCommands(program);
addBisectCommands(program, { parseIommus, collect });

installReaper((signal) => process.stderr.write(`\niommu-harness: interrupted by ${signal}; QEMU stopped\n`));

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof HarnessError) {
    writeHarnessError(error);
    process.exitCode = error.exitCode;
  } else {
    throw error;
  }
}
