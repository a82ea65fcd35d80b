// Boots one machine per vIOMMU, runs the scenarios that apply to it in that
// one boot, collects console and dmesg, and judges them.
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ensureDir } from '../cache.ts';
import { HarnessError } from '../errors.ts';
import type { HarnessKeys } from '../image/keys.ts';
import type { Progress } from '../log.ts';
import type { BootTimeline } from '../machine/boot-timeline.ts';
import { Machine } from '../machine/machine.ts';
import { harnessNicId, viommuTracePath, type Accel } from '../machine/qemu-args.ts';
import { captureVcpus } from '../machine/vcpu-state.ts';
import { machineOf } from '../machine/machines.ts';
import { mergeTopologies, type IommuModel } from '../machine/topology.ts';
import { accountGroups, parseKernelLog, type KnownIssue } from '../oracle/index.ts';
import { consoleTraceEvent } from '../oracle/viommu-trace.ts';
import type { ScenarioRun } from '../report/result.ts';
import { judgeBoot, type ScenarioOutcome } from '../report/verdict.ts';
import type { KernelFeature } from './features.ts';
import { Guest, type SelftestContext } from './guest.ts';
import { addCosts, noCost } from './guest-cost.ts';
import { blockedTasksScript, hungTaskReportedWithinMs, hungTaskTimeoutSecs, parseBlockedTasks, setHungTaskTimeoutScript, type BlockedTask } from './hang.ts';
import type { Scenario } from './scenario.ts';

export interface BootPlan {
  /** Names the boot's log folder: the vIOMMU, with a suffix for its second and later boots. */
  id: string;
  iommu: IommuModel;
  scenarios: Scenario[];
  /** A fresh-boot scenario's cycle this boot runs (once): set when --cycles gave it a boot per cycle. */
  cycle?: number;
  /** The cycle the first scenario starts at: a boot that takes over from one that lost its guest. */
  firstCycle?: number;
}

/** Where and why a boot lost its guest to something other than the kernel under test's own report. */
export interface LostGuest {
  scenario: string;
  /** The cycle the guest was lost in (1 without --cycles). */
  cycle: number;
  /** The step it was lost in: a release the kernel had yet to print there was never seen. */
  step: string;
  why: string;
}

export interface RunnerOptions {
  bzImage: string;
  /** The kernel's symbols, to name where a lost guest's vCPUs were. */
  vmlinux?: string;
  initrd: string;
  keys: HarnessKeys;
  accel: Accel;
  /** The probe chose the accelerator: a silent KVM boot falls back to TCG. */
  accelAutomatic?: boolean;
  runDir: string;
  known: KnownIssue[];
  progress: Progress;
  bootTimeoutMs?: number;
  stepTimeoutMs?: number;
  /** How long a group may take to be released after its last device left. */
  releaseGraceMs?: number;
  /** Each scenario runs this many times in its boot, for bugs that need repetition. */
  cycles?: number;
  /** The kernel has kmemleak: scan after the scenarios and report what it finds. */
  kmemleak?: boolean;
  /** What the kernel can do; steps needing a missing feature are skipped with the reason (default: all). */
  features?: ReadonlySet<KernelFeature>;
  /** The kernel's own test programs the image carries, for the selftest scenarios (harness/selftest/). */
  selftests?: SelftestContext;
}

/** The pseudo-scenario kmemleak's findings are reported under: they cannot be placed in a step. */
export const kmemleakScenario = 'kmemleak';

/**
 * The kmemleak pseudo-scenario of a boot whose scan never ran: blind, with the reason, so the boot's
 * scenarios are never called free of memory leaks on the strength of no scan at all.
 */
export function kmemleakNotScanned(why: string): ScenarioOutcome {
  return { scenario: kmemleakScenario, goneDevices: [], devices: [], inconclusive: [`no kmemleak scan after the scenarios (${why}): a memory leak in them could not be reported`] };
}

/**
 * Why a boot's scenarios are blind to hangs when hung_task_timeout_secs could not be set: left at
 * its default, a task blocked in a step is reported after the step gave up (in a later scenario, or
 * not at all once the boot ends).
 */
export function hungTaskTimeoutNotSet(detail: string): string {
  return `the hung-task timeout could not be set to ${hungTaskTimeoutSecs} s (${detail}): a task blocked in this scenario's steps may never have been reported`;
}

/**
 * kmemleak reports only objects older than its minimum age (5 s) that two
 * scans in a row found unreferenced, so it waits, then scans twice.
 */
async function scanKmemleak(machine: Machine): Promise<string> {
  await new Promise((resolve) => setTimeout(resolve, 6000));
  const control = '/sys/kernel/debug/kmemleak';
  for (let scan = 0; scan < 2; scan++) {
    const result = await machine.shell.run(['sh', '-c', 'echo scan > "$1"', 'sh', control], 120_000);
    if (result.exitCode !== 0) throw new HarnessError('guest', `kmemleak scan failed: ${result.stderr.trim()}`, { logPath: machine.consoleLog });
  }
  const dump = await machine.shell.run(['cat', control], 60_000);
  return dump.stdout;
}

/**
 * Why the guest stopped answering when its own network is the cause: the
 * kernel's transmit watchdog fired on the harness's NIC. Said in the error, so
 * nobody reads a stalled virtio-net queue (a QEMU or guest network problem, seen
 * about once in 300 remove/rescan cycles under TCG) as the IOMMU code hanging.
 */
export function guestNetworkStall(console: string): string {
  const watchdog = /NETDEV WATCHDOG: .*transmit queue \d+ timed out[^\n]*/.exec(console)?.[0];
  return watchdog ? ` (the guest's network had stopped: "${watchdog.trim()}"; the harness's own NIC, not the IOMMU code)` : '';
}

/**
 * When the guest stopped answering because QEMU ended (a crash, or a signal
 * from outside), or QEMU does not answer QMP either (the emulator hung, seen
 * rarely right after a PCI rescan under TCG): said in the error, so nobody
 * reads it as the kernel under test hanging.
 */
async function emulatorState(machine: Machine): Promise<string> {
  const ended = await machine.ended(1000);
  if (ended) {
    const said = (await readFile(machine.qemuLog, 'utf8').catch(() => '')).trim().split('\n').at(-1)?.trim();
    return ` (QEMU itself had ended, ${ended}${said ? `, saying "${said}"` : ', saying nothing'}: the emulator, not the kernel under test)`;
  }
  const answered = await machine.qmp.execute('query-status', {}, { timeoutMs: 3000 }).then(
    () => true,
    () => false,
  );
  return answered ? '' : ' (QEMU itself no longer answered QMP: the emulator hung, not the kernel under test)';
}

/**
 * What the vCPUs of a guest that stopped answering were doing, from QEMU:
 * written beside the console as lost-guest.txt; the one-line summary names it.
 */
async function recordLostGuest(machine: Machine, vmlinux: string | undefined): Promise<string | undefined> {
  if (machine.exit) return undefined;
  const vcpus = await captureVcpus(machine.qmp, vmlinux);
  if (!vcpus) return undefined;
  // The NIC's rings as QEMU sees them: a completion QEMU made but never signalled, or one the guest never took.
  const queues: string[] = [];
  for (const [queue, name] of [[0, 'receive'], [1, 'transmit']] as const) {
    const status = await machine.qmp.hmp(`info virtio-queue-status /machine/peripheral/${harnessNicId}/virtio-backend ${queue}`, { timeoutMs: 3000 }).catch(() => 'not answered');
    queues.push(`--- the harness NIC's ${name} queue (virtio-net queue ${queue}) ---`, status.replaceAll('\r\n', '\n').trim(), '');
  }
  const record = path.join(path.dirname(machine.consoleLog), 'lost-guest.txt');
  const written = await writeFile(record, [vcpus.record, ...queues].join('\n')).then(() => true, () => false);
  return written ? `${vcpus.summary}; registers and stacks in ${record}` : vcpus.summary;
}

/** Whether a group emptied by a removal has not been released (yet) in this log. */
function releasePending(log: string): boolean {
  return accountGroups(parseKernelLog(log).groupEvents).leaks.length > 0;
}

/** Tasks in uninterruptible sleep now. */
async function blockedTasks(machine: Machine): Promise<BlockedTask[]> {
  return parseBlockedTasks((await machine.shell.runScript(blockedTasksScript, 30_000)).stdout);
}

/**
 * The tasks that stay blocked for `forMs` (a second at least), so a task
 * merely waiting on I/O is not counted. After a scenario that ended normally
 * the wait is as long as the hung-task detector takes, so a hang its last
 * step caused is reported there, not in the next scenario.
 */
async function stillBlocked(machine: Machine, forMs: number): Promise<BlockedTask[]> {
  let blocked = await blockedTasks(machine);
  const deadline = Date.now() + Math.max(forMs, 1000);
  while (blocked.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const now = await blockedTasks(machine);
    blocked = now.filter((task) => blocked.some((earlier) => earlier.pid === task.pid));
  }
  return blocked;
}

export interface BootOutcome {
  runs: ScenarioRun[];
  /** Set when the guest stopped answering SSH or QEMU ended mid-scenario. */
  lost?: LostGuest;
  bootSeconds?: number;
  /** Where the boot's seconds went (absent when QEMU never got to SSH). */
  bootTimeline?: BootTimeline;
}

/**
 * As few boots as correctness allows: per vIOMMU, the scenarios that can
 * share a machine share one, running `cycles` times in it; a scenario that
 * needs a fresh boot gets one per cycle, since what it spends (a device
 * present from boot, lockdep's one report) is gone after its first run.
 */
export function planBoots(iommus: IommuModel[], scenarios: readonly Scenario[], cycles = 1): BootPlan[] {
  const plans: BootPlan[] = [];
  for (const iommu of iommus) {
    const applicable = scenarios.filter((scenario) => scenario.iommus.includes(iommu));
    const needsFresh = (scenario: Scenario) => scenario.freshBoot ?? scenario.freshBootOn?.[iommu];
    const shared = applicable.filter((scenario) => !needsFresh(scenario));
    const fresh = applicable.filter((scenario) => needsFresh(scenario));
    const groups: { scenarios: Scenario[]; cycle?: number }[] = [
      ...(shared.length ? [{ scenarios: shared }] : []),
      ...fresh.flatMap((scenario) =>
        cycles > 1 ? Array.from({ length: cycles }, (_, index) => ({ scenarios: [scenario], cycle: index + 1 })) : [{ scenarios: [scenario] }],
      ),
    ];
    for (const group of groups) {
      const count = plans.filter((plan) => plan.iommu === iommu).length;
      plans.push({ id: count === 0 ? iommu : `${iommu}-${count + 1}`, iommu, scenarios: group.scenarios, ...(group.cycle ? { cycle: group.cycle } : {}) });
    }
  }
  return plans;
}

export async function runBoot(plan: BootPlan, options: RunnerOptions): Promise<BootOutcome> {
  const runDir = await ensureDir(path.join(options.runDir, plan.id));
  const consolePath = path.join(runDir, 'console.log');
  const outcomes: ScenarioOutcome[] = [];
  let machine: Machine | undefined;
  let bootError: string | undefined;
  let dmesg: string | undefined;
  let dmesgPath: string | undefined;
  let kmemleakDump: string | undefined;
  let lost: LostGuest | undefined;
  try {
    machine = await Machine.boot({
      iommu: plan.iommu,
      accel: options.accel,
      accelAutomatic: options.accelAutomatic ?? false,
      bzImage: options.bzImage,
      initrd: options.initrd,
      topology: mergeTopologies(plan.scenarios.map((scenario) => scenario.topology)),
      runDir,
      privateKey: options.keys.clientPrivateKey,
      hostKeyBlob: options.keys.hostKeyBlob,
      // A scenario whose tests run during the boot (KUnit) allows the boot that much longer.
      bootTimeoutMs: options.bootTimeoutMs ?? (options.accel === 'kvm' ? 60_000 : 180_000) + Math.max(0, ...plan.scenarios.map((scenario) => scenario.extraBootMs ?? 0)),
      progress: options.progress,
    });
    // The vIOMMU ledger places trace events in steps by the console's bytes, traced from here on.
    if (machineOf(plan.iommu).ledger) {
      await machine.qmp.execute('trace-event-set-state', { name: consoleTraceEvent, enable: true }).catch((error: Error) => options.progress.warn(`${plan.id}: console not traced, the vIOMMU ledger is blind: ${error.message}`));
    }
    const hungTask = await machine.shell.run(['sh', '-c', setHungTaskTimeoutScript, 'sh', String(hungTaskTimeoutSecs)], 30_000);
    /** Checks every scenario of this boot runs without. */
    const blindForAll: string[] = [];
    if (hungTask.exitCode !== 0) {
      blindForAll.push(hungTaskTimeoutNotSet(hungTask.stderr.trim() || `exit ${hungTask.exitCode}`));
      options.progress.warn(`${plan.id}: ${blindForAll.at(-1)}`);
    }
    /** Why the rest of the boot cannot run: a task an earlier scenario left blocked. */
    let blockedBy: string | undefined;
    for (const scenario of plan.scenarios) {
      if (machine.exit || blockedBy) {
        const why = machine.exit ? `the machine had ended (${machine.exit})` : blockedBy;
        outcomes.push({ scenario: scenario.name, error: `not run: ${why}`, goneDevices: [], devices: [] });
        continue;
      }
      const cycles = plan.cycle ? 1 : (options.cycles ?? 1);
      const outcome: ScenarioOutcome = { scenario: scenario.name, goneDevices: [], devices: [], observedGroups: {}, failedChecks: [], sysfsGroups: [], skippedSteps: [], cost: noCost, inconclusive: [...blindForAll], ...(scenario.selftests?.length || scenario.kconfig ? { runsSuites: true } : {}) };
      const firstCycle = scenario === plan.scenarios[0] && !plan.cycle ? (plan.firstCycle ?? 1) : 1;
      for (let cycle = firstCycle; cycle <= cycles && !outcome.error && !machine.exit && !blockedBy; cycle++) {
        const cycleNumber = plan.cycle ?? (cycles > 1 ? cycle : undefined);
        options.progress.step(`${plan.id}: ${scenario.name}${cycleNumber ? ` (cycle ${cycleNumber}/${plan.cycle ? options.cycles : cycles})` : ''}`);
        const guest = new Guest(machine, scenario.name, { stepTimeoutMs: options.stepTimeoutMs, cycle: cycleNumber, features: options.features, selftests: options.selftests });
        let blocked: BlockedTask[] = [];
        const cycleStarted = performance.now();
        try {
          await scenario.run(guest);
          await guest.finish();
          blocked = await stillBlocked(machine, hungTaskReportedWithinMs);
        } catch (caught) {
          if (!(caught instanceof HarnessError)) throw caught;
          const stall = guestNetworkStall(await machine.console());
          const emulator = await emulatorState(machine);
          outcome.error = `${caught.message}${stall}${emulator}`;
          options.progress.warn(`${plan.id}: ${scenario.name}: ${outcome.error}`);
          // A timed-out command leaves the SSH channel in an unknown state.
          // A guest that no longer accepts SSH cannot run the boot's other scenarios: they are not run, with the reason.
          if (machine.exit) {
            lost ??= { scenario: scenario.name, cycle: cycleNumber ?? 1, step: guest.step, why: outcome.error };
            outcome.lostInStep = guest.step;
          } else if (!(await machine.reconnect().then(() => true, () => false))) {
            blockedBy ??= `the guest stopped answering SSH after ${guest.step}`;
            lost ??= { scenario: scenario.name, cycle: cycleNumber ?? 1, step: guest.step, why: outcome.error };
            outcome.lostInStep = guest.step;
            const vcpus = await recordLostGuest(machine, options.vmlinux);
            if (vcpus) {
              outcome.error += ` (when it was lost: ${vcpus})`;
              lost.why = outcome.error;
              options.progress.warn(`${plan.id}: the lost guest's ${vcpus}`);
            }
          } else if (stall === '' && emulator === '') {
            // Whether the error is then the kernel's is the verdict's to say (harness/report/verdict.ts).
            outcome.guestAnswered = true;
          }
          // The step gave up after the detector's time already (blockingWaitMs).
          blocked = machine.exit ? [] : await stillBlocked(machine, 1000).catch(() => []);
        }
        // A task left blocked is re-reported by the hung-task detector and may
        // hold locks every later scenario needs: they would be blamed for it.
        if (blocked.length > 0) {
          blockedBy = `${guest.step} left ${blocked.map((task) => `${task.name} (pid ${task.pid})`).join(', ')} blocked in the kernel`;
          outcome.error ??= blockedBy;
          options.progress.warn(`${plan.id}: ${blockedBy}; the boot's remaining scenarios are not run`);
        }
        outcome.cost = addCosts(outcome.cost ?? noCost, guest.meter.total((performance.now() - cycleStarted) / 1000));
        outcome.goneDevices.push(...guest.goneDevices);
        outcome.sysfsGroups?.push(...guest.sysfsGroups);
        outcome.devices.push(...[...guest.devices].filter((device) => !outcome.devices.includes(device)));
        Object.assign(outcome.observedGroups ?? {}, Object.fromEntries(guest.observedGroups));
        outcome.failedChecks?.push(...guest.failedChecks);
        outcome.skippedSteps?.push(...guest.skippedSteps);
        if (guest.cases.length || guest.suites.length) {
          (outcome.cases ??= []).push(...guest.cases);
          (outcome.suites ??= []).push(...guest.suites);
          (outcome.caseReports ??= []).push(...guest.caseReports);
          (outcome.faultInjectionSteps ??= []).push(...guest.faultInjectionSteps);
        }
      }
      outcomes.push(outcome);
    }
    if (!machine.exit) {
      let dmesgFailure = '';
      const booted = machine;
      const readDmesg = () =>
        booted.shell.run(['dmesg'], 30_000).catch((error: Error) => {
          dmesgFailure = error.message;
          return undefined;
        });
      let result = await readDmesg();
      // A group whose last device left may print its release a moment later:
      // wait for it only when the log has such a group (a leak, so far).
      if (result?.exitCode === 0 && releasePending(result.stdout)) {
        await new Promise((resolve) => setTimeout(resolve, options.releaseGraceMs ?? 1000));
        result = await readDmesg();
      }
      if (result?.exitCode === 0) {
        dmesg = result.stdout;
        let saved = dmesg;
        if (options.kmemleak) {
          options.progress.step(`${plan.id}: kmemleak scan`);
          try {
            kmemleakDump = await scanKmemleak(machine);
            await writeFile(path.join(runDir, 'kmemleak.txt'), kmemleakDump);
            // Saved after a mark of its own, so `iommu-harness parse dmesg.txt` places its reports; judged apart (BootEvidence.kmemleak).
            saved += `iommu-harness: step ${kmemleakScenario}/scan\n${kmemleakDump}`;
            outcomes.push({ scenario: kmemleakScenario, goneDevices: [], devices: [] });
          } catch (caught) {
            if (!(caught instanceof HarnessError)) throw caught;
            // The harness failed at the check itself: the kmemleak run's error, not the boot's.
            outcomes.push({ scenario: kmemleakScenario, goneDevices: [], devices: [], error: caught.message });
          }
        }
        dmesgPath = path.join(runDir, 'dmesg.txt');
        await writeFile(dmesgPath, saved);
      } else {
        const why = lost ? `the guest was lost in ${lost.step}` : `dmesg could not be read: ${dmesgFailure || result?.stderr.trim() || `exit ${result?.exitCode}`}`;
        options.progress.warn(`${plan.id}: ${why}`);
        if (options.kmemleak) outcomes.push(kmemleakNotScanned(why));
      }
    } else {
      bootError = `the machine ended during the scenarios (${machine.exit})`;
      if (options.kmemleak) outcomes.push(kmemleakNotScanned(bootError));
    }
  } catch (caught) {
    if (!(caught instanceof HarnessError)) throw caught;
    bootError = `${caught.message}${caught.logPath ? ` (see ${caught.logPath})` : ''}`;
    options.progress.warn(`${plan.id}: ${bootError}`);
    for (const scenario of plan.scenarios.slice(outcomes.length)) {
      outcomes.push({ scenario: scenario.name, error: `not run: ${caught.message}`, goneDevices: [], devices: [] });
    }
    if (options.kmemleak && !outcomes.some((outcome) => outcome.scenario === kmemleakScenario)) outcomes.push(kmemleakNotScanned(caught.message));
  } finally {
    await machine?.stop();
  }
  const console = await readFile(consolePath, 'utf8').catch(() => '');
  const viommuTrace = !machineOf(plan.iommu).ledger ? undefined : await readFile(viommuTracePath(consolePath), 'utf8').catch(() => '');
  const runs = judgeBoot({
    iommu: plan.iommu,
    accel: machine?.accel ?? options.accel,
    console,
    ...(dmesg ? { dmesg } : {}),
    ...(kmemleakDump !== undefined ? { kmemleak: kmemleakDump } : {}),
    consolePath,
    ...(dmesgPath ? { dmesgPath } : {}),
    outcomes,
    ...(bootError ? { bootError } : {}),
    known: options.known,
    ...(viommuTrace !== undefined ? { viommuTrace } : {}),
  });
  return { runs, ...(lost ? { lost } : {}), ...(machine ? { bootSeconds: machine.bootSeconds, bootTimeline: machine.bootTimeline } : {}) };
}
