// The typed guest API scenarios are written against: PCI, VFIO, hotplug and
// step marks. Every call has a timeout and every value reaches the guest's
// shell as a quoted argument, never spliced into a command.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { HarnessError } from '../errors.ts';
import type { Machine } from '../machine/machine.ts';
import { deviceAdd, deviceDel } from '../machine/qmp.ts';
import type { CommandResult } from '../machine/ssh.ts';
import { CostMeter } from './guest-cost.ts';
import { allFeatures, missingFeatureReason, type KernelFeature } from './features.ts';
import { blockingWaitMs } from './hang.ts';
import { bdfOfQdevId, type QueryPciBus } from './pci-address.ts';
import { parseSysfsGroups, sysfsGroupsScript, type SysfsGroups } from './sysfs-groups.ts';
import type { ResultCase, ResultReport, ResultSuite } from '../report/result.ts';
import { caseLoopScript, parseCaseLoop, parseKselftestList, type SuiteRun } from '../selftest/cases.ts';
import { guestSelftestDir, type SelftestDir } from '../selftest/suites.ts';

/** The kernel's own test programs this guest carries (harness/selftest/), and how long each may run. */
export interface SelftestContext {
  /** Per tools/testing/selftests folder: the programs built into the image, or why there are none. */
  suites: Partial<Record<SelftestDir, { programs: readonly string[] } | { missing: string }>>;
  /** Seconds each program may spend starting cases; the rest are listed as not reached. Undefined: no budget. */
  budgetSeconds?: number;
}

const bdfPattern = /^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/;
const idPattern = /^[0-9a-f]{4}:[0-9a-f]{4}$/;

export interface VfioOptions {
  /** Check real DMA through the vIOMMU with the edu device's DMA engine. */
  dma?: boolean;
}

export class Guest {
  private currentStep = 'boot';
  /** Devices the scenario saw leave, in order; each must have had a group. */
  readonly goneDevices: string[] = [];
  /** Every device the scenario used, so its groups can be reported. */
  readonly devices = new Set<string>();
  /** The group sysfs showed for a device once bound: independent evidence to check the log against. */
  readonly observedGroups = new Map<string, number>();
  /** Expectations about the kernel that did not hold: findings, like a leak. */
  readonly failedChecks: string[] = [];
  /**
   * sysfs's iommu groups as they stood at the end of each step, read before
   * the next step's mark is written: everything the kernel logged before that
   * mark had happened when sysfs was read.
   */
  readonly sysfsGroups: { step: string; groups: SysfsGroups }[] = [];
  /** Steps not run because the kernel lacks a feature they need, each with the reason. */
  readonly skippedSteps: { step: string; reason: string }[] = [];
  /** Round trips, QMP commands and waits, for the benchmark's breakdown of a scenario. */
  readonly meter = new CostMeter();
  /** The cases of the in-tree suites the scenario ran, in order (harness/selftest/). */
  readonly cases: ResultCase[] = [];
  /** Per suite program: its time and how much of it ran. */
  readonly suites: ResultSuite[] = [];
  /** A `not ok` case's report (kind `selftest`), placed in the case's step. */
  readonly caseReports: ResultReport[] = [];
  /** Steps whose cases inject allocation failures on purpose (the oracle then reads silent group releases as their own). */
  readonly faultInjectionSteps: string[] = [];
  /** Devices marked gone and not seen since; a BDF comes back after a rescan. */
  private readonly markedGone = new Set<string>();

  private readonly stepTimeoutMs: number;
  private readonly cycle: number | undefined;
  private readonly features: ReadonlySet<KernelFeature>;
  private readonly selftestContext: SelftestContext;

  constructor(
    private readonly machine: Machine,
    private readonly scenario: string,
    options: { stepTimeoutMs?: number | undefined; cycle?: number | undefined; features?: ReadonlySet<KernelFeature> | undefined; selftests?: SelftestContext | undefined } = {},
  ) {
    this.stepTimeoutMs = options.stepTimeoutMs ?? 60_000;
    this.cycle = options.cycle;
    this.features = options.features ?? allFeatures;
    this.selftestContext = options.selftests ?? { suites: {} };
  }

  /** Whether the kernel has this .config option set (`y`), as the built kernel's config says. */
  hasFeature(feature: KernelFeature): boolean {
    return this.features.has(feature);
  }

  get step(): string {
    return this.currentStep;
  }

  /**
   * Marks the start of a step in the kernel log, so the oracle places every
   * event in it; first records sysfs's groups at the end of the step before.
   */
  async mark(step: string): Promise<void> {
    const next = this.stepName(step);
    // One round trip: the groups are read before the mark is written. A read
    // that failed writes no mark: a partial list would read as groups gone.
    const script = `(${sysfsGroupsScript}) || exit 2; printf "%s\\n" "$1" > /dev/kmsg`;
    const result = await this.guard(this.shell(['sh', '-c', script, 'sh', `iommu-harness: step ${next}`], this.stepTimeoutMs));
    if (result.exitCode === 2) {
      throw new HarnessError('guest', `${this.currentStep}: reading /sys/kernel/iommu_groups failed: ${result.stderr.trim()}`, { logPath: this.machine.consoleLog });
    }
    if (result.exitCode !== 0) {
      throw new HarnessError('guest', `${this.currentStep}: writing the mark of ${next} failed: ${result.stderr.trim()}`, { logPath: this.machine.consoleLog });
    }
    if (this.currentStep !== 'boot') this.sysfsGroups.push({ step: this.currentStep, groups: parseSysfsGroups(result.stdout) });
    this.currentStep = next;
  }

  /**
   * A step that needs a kernel feature (iommufd, VFIO's cdev): marked and run
   * when the kernel has it, otherwise skipped with the reason in the results.
   */
  async stepNeeding(step: string, feature: KernelFeature, body: () => Promise<unknown>): Promise<void> {
    if (!this.features.has(feature)) {
      this.skippedSteps.push({ step: this.stepName(step), reason: missingFeatureReason(feature) });
      return;
    }
    await this.mark(step);
    await body();
  }

  /**
   * Records steps the scenario cannot run on this kernel (a capability it lacks,
   * shown by the kernel's own refusal), with the reason: skipped, not passed.
   */
  skip(steps: string[], reason: string): void {
    for (const step of steps) this.skippedSteps.push({ step: this.stepName(step), reason });
  }

  private stepName(step: string): string {
    return `${this.scenario}/${this.cycle ? `cycle${this.cycle}/` : ''}${step}`;
  }

  /** Ends the scenario: sysfs's groups at the end of its last step. */
  async finish(): Promise<void> {
    await this.recordSysfsGroups();
  }

  /** Runs argv in the guest; a non-zero exit is an error naming the step. */
  async run(argv: string[], timeoutMs = this.stepTimeoutMs): Promise<CommandResult> {
    const result = await this.guard(this.shell(argv, timeoutMs));
    if (result.exitCode !== 0) {
      throw new HarnessError('guest', `${this.currentStep}: \`${argv.join(' ')}\` exited ${result.exitCode}: ${(result.stderr || result.stdout).trim().split('\n').slice(-1)[0] ?? ''}`, {
        logPath: this.machine.consoleLog,
        excerpt: [...result.stdout.split('\n'), ...result.stderr.split('\n')].filter(Boolean).slice(-10),
      });
    }
    return result;
  }

  /** Writes `value` to a sysfs or proc file. */
  async write(file: string, value: string): Promise<void> {
    await this.run(['sh', '-c', 'printf "%s\\n" "$1" > "$2"', 'sh', value, file]);
  }

  /**
   * Writes `value` to a sysfs file the kernel may refuse: undefined when it took
   * it, otherwise the kernel log lines the refusal printed (read from dmesg).
   */
  async writeRefused(file: string, value: string): Promise<string[] | undefined> {
    const script = 'n=$(dmesg | wc -l); printf "%s\\n" "$1" > "$2" && exit 0; dmesg | tail -n +$((n + 1)); exit 1';
    const result = await this.guard(this.shell(['sh', '-c', script, 'sh', value, file], this.stepTimeoutMs));
    return result.exitCode === 0 ? undefined : result.stdout.split('\n').filter(Boolean);
  }

  async read(file: string): Promise<string> {
    return (await this.run(['cat', file])).stdout.trim();
  }

  async exists(file: string): Promise<boolean> {
    const result = await this.guard(this.shell(['test', '-e', file], this.stepTimeoutMs));
    return result.exitCode === 0;
  }

  /**
   * Records a finding when the kernel did not behave as the scenario expects
   * (a group released while a member remains, a driver that does not rebind).
   * The scenario goes on: later steps may show more.
   */
  check(condition: boolean, expectation: string): void {
    if (!condition) this.failedChecks.push(`${this.currentStep}: expected ${expectation}`);
  }

  // PCI -------------------------------------------------------------------

  /** Whether iommu group `id` exists in sysfs right now. */
  async groupExists(id: number): Promise<boolean> {
    return this.exists(`/sys/kernel/iommu_groups/${id}`);
  }

  /** BDFs of the devices with this vendor:device id, e.g. "1234:11e8". */
  async findPci(vendorDevice: string): Promise<string[]> {
    if (!idPattern.test(vendorDevice)) throw new HarnessError('usage', `not a vendor:device id: ${vendorDevice}`);
    const [vendor, device] = vendorDevice.split(':');
    const script =
      'for d in /sys/bus/pci/devices/*; do [ "$(cat $d/vendor)" = "0x$1" ] && [ "$(cat $d/device)" = "0x$2" ] && basename $d; done; true';
    const result = await this.run(['sh', '-c', script, 'sh', vendor ?? '', device ?? '']);
    return result.stdout.split('\n').filter((line) => bdfPattern.test(line));
  }

  /** Waits until a device with this id appears, returning the new BDFs. */
  async waitForPci(vendorDevice: string, known: string[], timeoutMs = blockingWaitMs): Promise<string> {
    return this.poll(`${vendorDevice} to appear`, timeoutMs, async () => {
      const found = (await this.findPci(vendorDevice)).filter((bdf) => !known.includes(bdf));
      return found[0];
    }).then((bdf) => {
      this.seen(bdf);
      return bdf;
    });
  }

  /** The device's group as sysfs shows it, kept as evidence to check the log against. */
  async iommuGroup(bdf: string): Promise<number | undefined> {
    const result = await this.guard(this.shell(['readlink', `/sys/bus/pci/devices/${checkBdf(bdf)}/iommu_group`], this.stepTimeoutMs));
    const id = /(\d+)\s*$/.exec(result.stdout)?.[1];
    if (result.exitCode !== 0 || !id) return undefined;
    this.observedGroups.set(bdf, Number(id));
    return Number(id);
  }

  async driver(bdf: string): Promise<string | undefined> {
    const result = await this.guard(this.shell(['readlink', `/sys/bus/pci/devices/${checkBdf(bdf)}/driver`], this.stepTimeoutMs));
    return result.exitCode === 0 ? result.stdout.trim().split('/').pop() : undefined;
  }

  /** Binds through driver_override, the way vfio-pci is bound to a device no driver claims. */
  async bind(bdf: string, driver: string): Promise<void> {
    this.seen(checkBdf(bdf));
    // One round trip: override, probe, then the driver and group the kernel chose.
    const script =
      'd=/sys/bus/pci/devices/$1; printf "%s\\n" "$2" > "$d/driver_override" && printf "%s\\n" "$1" > /sys/bus/pci/drivers_probe || exit 1; ' +
      'echo "driver $(readlink "$d/driver")"; echo "group $(readlink "$d/iommu_group")"';
    const result = await this.run(['sh', '-c', script, 'sh', bdf, driver]);
    const bound = /^driver .*\/([^/\s]+)$/m.exec(result.stdout)?.[1];
    if (bound !== driver) {
      throw new HarnessError('guest', `${this.currentStep}: ${bdf} is bound to ${bound ?? 'no driver'}, not ${driver}`, { logPath: this.machine.consoleLog });
    }
    const group = /^group .*\/(\d+)$/m.exec(result.stdout)?.[1];
    if (group) this.observedGroups.set(bdf, Number(group));
  }

  async unbind(bdf: string): Promise<void> {
    // One round trip: unbind from whatever driver has it, and clear the override.
    const script = 'd=/sys/bus/pci/devices/$1; [ -e "$d/driver" ] || exit 0; printf "%s\\n" "$1" > "$d/driver/unbind" && printf "\\n" > "$d/driver_override"';
    await this.run(['sh', '-c', script, 'sh', checkBdf(bdf)]);
  }

  /** sysfs remove: the same iommu release path as a hot unplug, without QEMU. */
  async remove(bdf: string): Promise<void> {
    await this.write(`/sys/bus/pci/devices/${checkBdf(bdf)}/remove`, '1');
    this.seen(bdf);
    await this.deviceGone(bdf);
  }

  async rescan(): Promise<void> {
    await this.write('/sys/bus/pci/rescan', '1');
  }

  /**
   * The BDF of a boot-time device, rescanning the bus first when an earlier
   * step or cycle removed it.
   */
  async present(id: string): Promise<string> {
    const buses = await this.guard(this.queryPci());
    const bdf = bdfOfQdevId(buses, id);
    if (!bdf || !(await this.exists(`/sys/bus/pci/devices/${bdf}`))) await this.rescan();
    return this.bdfOf(id);
  }

  /**
   * Records that a device has left, once it really has. 6.12 prints nothing
   * when a device leaves its group, so this mark is what tells the oracle
   * that the group must now be released. Every removal path (remove, unplug)
   * calls it; a second call for a device not seen since writes nothing.
   */
  async deviceGone(bdf: string, timeoutMs = blockingWaitMs): Promise<void> {
    checkBdf(bdf);
    if (this.markedGone.has(bdf)) return;
    // One round trip: the guest polls every 50 ms and writes the mark the moment the device is gone.
    const script =
      'n=0; while [ -e "/sys/bus/pci/devices/$1" ]; do n=$((n + 1)); [ "$n" -gt "$2" ] && exit 3; sleep 0.05; done; ' +
      'printf "%s\\n" "iommu-harness: device-gone $1" > /dev/kmsg';
    const result = await this.guard(this.shell(['sh', '-c', script, 'sh', bdf, String(Math.ceil(timeoutMs / 50))], timeoutMs + this.stepTimeoutMs));
    if (result.exitCode === 3) {
      throw new HarnessError('guest', `${this.currentStep}: timed out after ${timeoutMs / 1000} s waiting for ${bdf} to disappear`, { logPath: this.machine.consoleLog });
    }
    if (result.exitCode !== 0) {
      throw new HarnessError('guest', `${this.currentStep}: marking ${bdf} gone failed: ${result.stderr.trim()}`, { logPath: this.machine.consoleLog });
    }
    this.goneDevices.push(bdf);
    this.devices.add(bdf);
    this.markedGone.add(bdf);
  }

  // VFIO ------------------------------------------------------------------

  /** Opens the device through the legacy container/group path, maps and unmaps DMA, closes. */
  async vfioContainer(bdf: string, options: VfioOptions = {}): Promise<string> {
    return (await this.run(['vfio-helper', 'container', checkBdf(bdf), ...(options.dma ? ['--dma'] : [])])).stdout;
  }

  /** vfio no-iommu mode: the group is /dev/vfio/noiommu-N and nothing is translated. */
  async vfioNoiommu(bdf: string): Promise<string> {
    return (await this.run(['vfio-helper', 'noiommu', checkBdf(bdf)])).stdout;
  }

  /**
   * Opens the device through the container path and keeps every fd open for
   * `holdMs` (with `untilRequest`: until the kernel asks for the device back
   * through VFIO's device request IRQ, as QEMU releases it, at most `holdMs`);
   * resolves once the device fd is open, with the helper's eventual result, so
   * a step can act while userspace holds the device.
   */
  async vfioHold(bdf: string, holdMs: number, options: { untilRequest?: boolean } = {}): Promise<{ done: Promise<CommandResult> }> {
    const argv = ['vfio-helper', 'container', checkBdf(bdf), '--hold-ms', String(holdMs), ...(options.untilRequest ? ['--until-request'] : [])];
    const done = this.guard(this.shell(argv, holdMs + this.stepTimeoutMs));
    // The device fd is an anonymous inode; its presence means the hold has begun.
    const script = 'for p in $(pidof vfio-helper); do ls -l /proc/$p/fd; done 2>/dev/null | grep -q "vfio-device"';
    await this.poll('the VFIO device fd to be open', blockingWaitMs, async () => ((await this.shell(['sh', '-c', script], this.stepTimeoutMs)).exitCode === 0 ? true : undefined));
    return { done };
  }

  /** The same through the iommufd cdev path. */
  async vfioIommufd(bdf: string, options: VfioOptions = {}): Promise<string> {
    return (await this.run(['vfio-helper', 'iommufd', checkBdf(bdf), ...(options.dma ? ['--dma'] : [])])).stdout;
  }

  // The kernel's own test suites ------------------------------------------------

  /** Why the guest has no program of this suite, or undefined when it has it. */
  selftestMissing(dir: SelftestDir, program: string): string | undefined {
    const suite = this.selftestContext.suites[dir];
    if (!suite) return `the run did not build tools/testing/selftests/${dir}`;
    if ('missing' in suite) return suite.missing;
    return suite.programs.includes(program) ? undefined : `${program} did not build from this tree (see the selftests' build.log in the cache)`;
  }

  /**
   * Runs a kselftest program case by case (harness/selftest/cases.ts): each case
   * after a step mark of its own (STEP/CASE), so a kernel report during it is
   * placed in it; every listed case gets a row, those the time budget did not
   * reach as skips saying so. A program the guest lacks is a skipped step with
   * the reason. `caseSeconds` kills a case that outlives the suite's own alarm.
   */
  async runKselftest(dir: SelftestDir, program: string, options: { step?: string; caseSeconds?: number; timeoutMs?: number; env?: Record<string, string>; injectsFaults?: boolean } = {}): Promise<SuiteRun | undefined> {
    const step = options.step ?? program;
    const missing = this.selftestMissing(dir, program);
    if (missing) {
      this.skip([step], missing);
      return undefined;
    }
    const binary = `${guestSelftestDir(dir)}/${program}`;
    // The program's environment (VFIO_SELFTESTS_BDF), as env's own arguments: never spliced into the script.
    const env = Object.entries(options.env ?? {}).map(([name, value]) => {
      if (!/^[A-Z_][A-Z0-9_]*$/.test(name) || !/^[\w.:/-]*$/.test(value)) throw new HarnessError('usage', `not a plain environment setting: ${name}=${value}`);
      return `${name}=${value}`;
    });
    const withEnv = env.length ? ['env', ...env] : [];
    await this.mark(step);
    // `-l` lists the cases on stderr and exits KSFT_SKIP (4).
    const listing = await this.guard(this.shell([...withEnv, 'sh', '-c', '"$1" -l 2>&1 >/dev/null; exit 0', 'sh', binary], this.stepTimeoutMs));
    const cases = parseKselftestList(listing.stdout);
    if (cases.length === 0) throw new HarnessError('guest', `${this.currentStep}: \`${program} -l\` listed no cases: ${listing.stdout.trim().split('\n').slice(0, 3).join(' / ')}`, { logPath: this.machine.consoleLog });
    const budget = this.selftestContext.budgetSeconds;
    const caseSeconds = options.caseSeconds ?? 600;
    // Without a budget the command may take every case's own limit; with one, the budget and one case more.
    const timeoutMs = options.timeoutMs ?? (budget !== undefined ? (budget + caseSeconds + 120) * 1000 : Math.min(120 * 60_000, Math.max(30 * 60_000, cases.length * 60_000)));
    const prefix = this.stepName(step);
    if (options.injectsFaults) this.faultInjectionSteps.push(prefix);
    const result = await this.guard(this.shell([...withEnv, 'sh', '-c', caseLoopScript, 'sh', binary, prefix, String(budget ?? 0), String(caseSeconds), ...cases], timeoutMs));
    // The suite's own output, case by case, beside the console: what a reader checks a verdict against.
    await writeFile(path.join(path.dirname(this.machine.consoleLog), `${this.scenario}.${program}.tap`), result.stdout).catch(() => undefined);
    const run = parseCaseLoop(result.stdout, { suite: program, stepPrefix: prefix, cases, ...(budget !== undefined ? { budgetSeconds: budget } : {}) });
    this.cases.push(...run.cases);
    this.suites.push(run.suite);
    this.caseReports.push(...run.reports);
    // The log's last mark is the last case that started: sysfs read next belongs to its step.
    const lastStarted = [...run.cases].reverse().find((row) => row.step);
    if (lastStarted?.step) this.currentStep = lastStarted.step;
    return run;
  }

  /** The console so far, as the host captured it (KUnit prints its results there at boot). */
  async console(): Promise<string> {
    return this.machine.console();
  }

  /** Records cases the scenario read itself (KUnit's, from the console), with their reports. */
  recordCases(cases: ResultCase[], suite: ResultSuite, reports: ResultReport[]): void {
    this.cases.push(...cases);
    this.suites.push(suite);
    this.caseReports.push(...reports);
  }

  // Hotplug through QMP ------------------------------------------------------

  /** The guest's PCI address of the device QEMU knows as `id`. */
  async bdfOf(id: string, timeoutMs = blockingWaitMs): Promise<string> {
    return this.poll(`device ${id} to get a PCI address`, timeoutMs, async () => {
      const buses = await this.guard(this.queryPci());
      const bdf = bdfOfQdevId(buses, id);
      // Until the guest has enumerated the bus behind a hotplugged port, it is 00.
      return bdf && (await this.exists(`/sys/bus/pci/devices/${bdf}`)) ? bdf : undefined;
    }).then((bdf) => {
      this.seen(bdf);
      return bdf;
    });
  }

  /**
   * Plugs `id` in again when QEMU no longer has it: a scenario that unplugs a
   * device present at boot runs its later cycles on the same device hot-added.
   */
  async replug(driver: string, id: string, bus: string): Promise<void> {
    const buses = await this.guard(this.queryPci());
    if (!bdfOfQdevId(buses, id)) await this.hotplug(driver, id, bus);
  }

  async hotplug(driver: string, id: string, bus: string): Promise<void> {
    await this.guard(this.meter.measure('qmp', deviceAdd(this.machine.qmp, { driver, id, bus })));
  }

  /**
   * device_del, then wait for QEMU's DEVICE_DELETED (the guest has let go) and
   * mark the device gone. The timeout must cover a blocked removal being
   * reported by the hung-task detector; native hotplug adds pciehp's 5 s
   * attention-button delay.
   */
  async unplug(id: string, timeoutMs = blockingWaitMs): Promise<void> {
    // Its address before it goes: query-pci no longer knows it afterwards.
    const buses = await this.guard(this.queryPci());
    const address = bdfOfQdevId(buses, id);
    const bdf = address && (await this.exists(`/sys/bus/pci/devices/${address}`)) ? address : undefined;
    await this.guard(this.meter.measure('qmp', deviceDel(this.machine.qmp, id, { timeoutMs })));
    if (bdf) await this.deviceGone(bdf);
  }

  /**
   * device_del of a device behind a native-hotplug (pciehp) port, without
   * pciehp's 5 s attention-button wait. QEMU's device_del presses the slot's
   * attention button; once pciehp has taken the press ("Button press: will
   * power off in 5 sec"), the slot's sysfs power file is set to 0, which
   * cancels the wait and makes the same request the timer would have made
   * (pciehp_request(DISABLE_SLOT), handled by pciehp_ist() ->
   * pciehp_disable_slot(SAFE_REMOVAL)): the removal path under test is the one
   * the button takes, started 5 s sooner. QEMU completes the unplug when the
   * guest powers the slot off.
   */
  async unplugNative(id: string, timeoutMs = blockingWaitMs): Promise<void> {
    const buses = await this.guard(this.queryPci());
    const bdf = bdfOfQdevId(buses, id);
    if (!bdf || !(await this.exists(`/sys/bus/pci/devices/${bdf}`))) throw new HarnessError('guest', `${this.currentStep}: ${id} is not in the guest, so it cannot be hot-removed`, { logPath: this.machine.consoleLog });
    const slot = await this.slotOf(bdf);
    const presses = await this.buttonPresses();
    const powerOff = async () => {
      await this.poll(`pciehp to take the attention-button press for ${bdf}`, timeoutMs, async () => ((await this.buttonPresses()) > presses ? true : undefined));
      await this.write(`/sys/bus/pci/slots/${slot}/power`, '0');
    };
    await this.guard(this.meter.measure('qmp', deviceDel(this.machine.qmp, id, { timeoutMs, whilePending: powerOff })));
    await this.deviceGone(bdf);
  }

  /** The hotplug slot (its /sys/bus/pci/slots name) that holds `bdf`: the slot whose address is the device's bus and slot. */
  private async slotOf(bdf: string): Promise<string> {
    const listing = await this.run(['sh', '-c', 'for s in /sys/bus/pci/slots/*; do [ -e "$s/address" ] && printf "%s %s\\n" "${s##*/}" "$(cat "$s/address")"; done; true']);
    const wanted = bdf.replace(/\.[0-7]$/, '');
    const slot = listing.stdout
      .split('\n')
      .map((line) => line.trim().split(' '))
      .find(([, address]) => address === wanted)?.[0];
    if (!slot || !/^[\w.-]+$/.test(slot)) throw new HarnessError('guest', `${this.currentStep}: no hotplug slot in /sys/bus/pci/slots holds ${bdf}`, { logPath: this.machine.consoleLog, excerpt: listing.stdout.split('\n').slice(0, 8) });
    return slot;
  }

  /** How many attention-button presses pciehp has announced in the kernel log so far. */
  private async buttonPresses(): Promise<number> {
    const result = await this.run(['sh', '-c', 'dmesg | grep -c "Button press: will power off" || true']);
    return Number(result.stdout.trim()) || 0;
  }

  // Internals ---------------------------------------------------------------

  private shell(argv: string[], timeoutMs: number): Promise<CommandResult> {
    return this.meter.measure('ssh', this.machine.shell.run(argv, timeoutMs));
  }

  private shellScript(script: string, timeoutMs: number): Promise<CommandResult> {
    return this.meter.measure('ssh', this.machine.shell.runScript(script, timeoutMs));
  }

  private queryPci(): Promise<QueryPciBus[]> {
    return this.meter.measure('qmp', this.machine.qmp.execute<QueryPciBus[]>('query-pci'));
  }

  /** The device is in the guest (again): a later removal must be marked. */
  private seen(bdf: string): void {
    this.devices.add(bdf);
    this.markedGone.delete(bdf);
  }

  private async recordSysfsGroups(): Promise<void> {
    if (this.currentStep === 'boot') return;
    const result = await this.guard(this.shellScript(sysfsGroupsScript, this.stepTimeoutMs));
    if (result.exitCode !== 0) {
      throw new HarnessError('guest', `${this.currentStep}: reading /sys/kernel/iommu_groups failed: ${result.stderr.trim()}`, { logPath: this.machine.consoleLog });
    }
    this.sysfsGroups.push({ step: this.currentStep, groups: parseSysfsGroups(result.stdout) });
  }

  private async poll<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (value !== undefined) return value;
      if (Date.now() > deadline) {
        throw new HarnessError('guest', `${this.currentStep}: timed out after ${timeoutMs / 1000} s waiting for ${what}`, {
          logPath: this.machine.consoleLog,
        });
      }
      await this.meter.wait(200);
    }
  }

  /** Turns a guest that stopped answering into an error naming the step and the console. */
  private async guard<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (error) {
      if (error instanceof HarnessError && error.logPath) throw error;
      const message = error instanceof Error ? error.message : String(error);
      throw new HarnessError('guest', `${this.currentStep}: ${message}${this.machine.exit ? ` (QEMU ended: ${this.machine.exit})` : ''}`, {
        logPath: this.machine.consoleLog,
        cause: error,
      });
    }
  }
}

function checkBdf(bdf: string): string {
  if (!bdfPattern.test(bdf)) throw new HarnessError('usage', `not a PCI address: ${bdf}`);
  return bdf;
}
