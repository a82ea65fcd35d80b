// Boots one machine per vIOMMU, runs the scenarios that apply to it in that
// one boot, collects console and dmesg, and judges them.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ensureDir } from '../cache.ts';
import { HarnessError } from '../errors.ts';
import type { HarnessKeys } from '../image/keys.ts';
import type { Progress } from '../log.ts';
import { Machine } from '../machine/machine.ts';
import type { Accel } from '../machine/qemu-args.ts';
import { mergeTopologies, type IommuModel } from '../machine/topology.ts';
import type { KnownIssue } from '../oracle/index.ts';
import type { ScenarioRun } from '../report/result.ts';
import { judgeBoot, type ScenarioOutcome } from '../report/verdict.ts';
import { Guest } from './guest.ts';
import type { Scenario } from './scenario.ts';

export interface BootPlan {
  iommu: IommuModel;
  scenarios: Scenario[];
}

export interface RunnerOptions {
  bzImage: string;
  initrd: string;
  keys: HarnessKeys;
  accel: Accel;
  runDir: string;
  known: KnownIssue[];
  progress: Progress;
  bootTimeoutMs?: number;
  stepTimeoutMs?: number;
  /** How long a group may take to be released after its last device left. */
  releaseGraceMs?: number;
}

export interface BootOutcome {
  runs: ScenarioRun[];
  bootSeconds?: number;
}

/** One boot per plan entry; scenarios in an entry share the machine. */
export function planBoots(iommus: IommuModel[], scenarios: readonly Scenario[]): BootPlan[] {
  return iommus
    .map((iommu) => ({ iommu, scenarios: scenarios.filter((scenario) => scenario.iommus.includes(iommu)) }))
    .filter((plan) => plan.scenarios.length > 0);
}

export async function runBoot(plan: BootPlan, options: RunnerOptions): Promise<BootOutcome> {
  const runDir = await ensureDir(path.join(options.runDir, plan.iommu));
  const consolePath = path.join(runDir, 'console.log');
  const outcomes: ScenarioOutcome[] = [];
  let machine: Machine | undefined;
  let bootError: string | undefined;
  let dmesg: string | undefined;
  let dmesgPath: string | undefined;
  try {
    machine = await Machine.boot({
      iommu: plan.iommu,
      accel: options.accel,
      bzImage: options.bzImage,
      initrd: options.initrd,
      topology: mergeTopologies(plan.scenarios.map((scenario) => scenario.topology)),
      runDir,
      privateKey: options.keys.clientPrivateKey,
      hostKeyBlob: options.keys.hostKeyBlob,
      bootTimeoutMs: options.bootTimeoutMs ?? (options.accel === 'kvm' ? 60_000 : 180_000),
      progress: options.progress,
    });
    for (const scenario of plan.scenarios) {
      if (machine.exit) {
        outcomes.push({ scenario: scenario.name, error: `not run: the machine had ended (${machine.exit})`, goneDevices: [], devices: [] });
        continue;
      }
      options.progress.step(`${plan.iommu}: ${scenario.name}`);
      const guest = new Guest(machine, scenario.name, options.stepTimeoutMs);
      let error: string | undefined;
      try {
        await scenario.run(guest);
      } catch (caught) {
        if (!(caught instanceof HarnessError)) throw caught;
        error = caught.message;
        options.progress.warn(`${plan.iommu}: ${scenario.name}: ${caught.message}`);
        // A timed-out command leaves the SSH channel in an unknown state.
        if (!machine.exit) await machine.reconnect().catch(() => undefined);
      }
      outcomes.push({ scenario: scenario.name, ...(error ? { error } : {}), goneDevices: guest.goneDevices, devices: [...guest.devices], observedGroups: Object.fromEntries(guest.observedGroups) });
    }
    if (!machine.exit) {
      await new Promise((resolve) => setTimeout(resolve, options.releaseGraceMs ?? 1000));
      const result = await machine.shell.run(['dmesg'], 30_000).catch(() => undefined);
      if (result?.exitCode === 0) {
        dmesg = result.stdout;
        dmesgPath = path.join(runDir, 'dmesg.txt');
        await writeFile(dmesgPath, dmesg);
      }
    } else {
      bootError = `the machine ended during the scenarios (${machine.exit})`;
    }
  } catch (caught) {
    if (!(caught instanceof HarnessError)) throw caught;
    bootError = `${caught.message}${caught.logPath ? ` (see ${caught.logPath})` : ''}`;
    options.progress.warn(`${plan.iommu}: ${bootError}`);
    for (const scenario of plan.scenarios.slice(outcomes.length)) {
      outcomes.push({ scenario: scenario.name, error: `not run: ${caught.message}`, goneDevices: [], devices: [] });
    }
  } finally {
    await machine?.stop();
  }
  const console = await readFile(consolePath, 'utf8').catch(() => '');
  const runs = judgeBoot({
    iommu: plan.iommu,
    accel: options.accel,
    console,
    ...(dmesg ? { dmesg } : {}),
    consolePath,
    ...(dmesgPath ? { dmesgPath } : {}),
    outcomes,
    ...(bootError ? { bootError } : {}),
    known: options.known,
  });
  return { runs, ...(machine ? { bootSeconds: machine.bootSeconds } : {}) };
}
