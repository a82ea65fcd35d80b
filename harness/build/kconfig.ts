// Kernel config handling, pure. A fragment option that `make olddefconfig`
// drops (an unmet dependency, a renamed symbol) would make the harness test a
// kernel without the feature it claims to test, so every requested option is
// checked against the final .config.

/** An option's value as .config spells it; 'n' stands for `# CONFIG_X is not set`. */
export type ConfigValue = string;
export type ConfigMap = Map<string, ConfigValue>;

export interface ConfigFragment {
  /** Where it came from, to name it in errors. */
  name: string;
  text: string;
}

export class ConfigSyntaxError extends Error {
  constructor(
    readonly source: string,
    readonly lineNumber: number,
    readonly line: string,
  ) {
    super(`${source}:${lineNumber}: not a config line: ${line}`);
    this.name = 'ConfigSyntaxError';
  }
}

/** A kernel release as its Makefile spells it: VERSION.PATCHLEVEL. */
export interface KernelVersion {
  major: number;
  minor: number;
}

export function formatVersion(version: KernelVersion): string {
  return `${version.major}.${version.minor}`;
}

/** VERSION and PATCHLEVEL from a kernel's top-level Makefile, or undefined when it has none. */
export function makefileVersion(makefile: string): KernelVersion | undefined {
  const major = /^VERSION = (\d+)$/m.exec(makefile)?.[1];
  const minor = /^PATCHLEVEL = (\d+)$/m.exec(makefile)?.[1];
  return major && minor ? { major: Number(major), minor: Number(minor) } : undefined;
}

function olderThan(version: KernelVersion, other: KernelVersion): boolean {
  return version.major !== other.major ? version.major < other.major : version.minor < other.minor;
}

/** One option line of a fragment; `since` from a trailing `# since 6.6`, `arches` from `# arch x86_64`. */
interface OptionLine {
  option: string;
  value: ConfigValue;
  /** The first release that has the option: older kernels are built without it. */
  since?: KernelVersion;
  /**
   * The kernel architectures (make's ARCH) the option is for: an x86 option
   * in a shared fragment (the ORC unwinder, the 8250 console) does not exist
   * for arm64 and olddefconfig would drop it there. Absent: every architecture.
   */
  arches?: string[];
}

/** The architecture a kernel is built for, as the fragments' `# arch` annotations name it. */
export const defaultKernelArch = 'x86_64';

/** A fragment line's trailing annotations: `# since 6.2`, `# arch x86_64`, or both (`# since 6.2, arch x86_64`). */
function parseAnnotations(text: string): { since?: KernelVersion; arches?: string[] } | undefined {
  const result: { since?: KernelVersion; arches?: string[] } = {};
  for (const item of text.split(',').map((part) => part.trim())) {
    const since = /^since (\d+)\.(\d+)$/.exec(item);
    const arch = /^arch ([\w ]+)$/.exec(item);
    if (since?.[1] && since[2]) result.since = { major: Number(since[1]), minor: Number(since[2]) };
    else if (arch?.[1]) result.arches = arch[1].trim().split(/\s+/);
    else return undefined;
  }
  return result;
}

function forArch(line: OptionLine, arch: string): boolean {
  return !line.arches || line.arches.includes(arch);
}

function parseLines(text: string, source: string): OptionLine[] {
  const options: OptionLine[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (!line) return;
    const unset = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line);
    if (unset?.[1]) {
      options.push({ option: unset[1], value: 'n' });
      return;
    }
    if (line.startsWith('#')) return;
    const set = /^(CONFIG_[A-Za-z0-9_]+)=(.*?)(?:\s+#\s*((?:since|arch) .*))?$/.exec(line);
    const annotations = set?.[3] === undefined ? {} : parseAnnotations(set[3]);
    if (!set?.[1] || set[2] === undefined || !annotations) throw new ConfigSyntaxError(source, index + 1, line);
    options.push({ option: set[1], value: set[2], ...annotations });
  });
  return options;
}

/** Parses .config or fragment text (release annotations are read and left out). */
export function parseConfig(text: string, source = 'config'): ConfigMap {
  return new Map(parseLines(text, source).map(({ option, value }) => [option, value]));
}

/** An option the fragments ask for that the kernel being built is too old to have. */
export interface AbsentOption {
  option: string;
  since: KernelVersion;
}

/**
 * Later fragments win, as with the kernel's merge_config.sh. With `version`,
 * options annotated `# since X.Y` for a newer release are left out (and listed
 * by absentOptions): a feature that arrived later is not a dropped option.
 */
export function mergeFragments(fragments: ConfigFragment[], version?: KernelVersion, arch: string = defaultKernelArch): ConfigMap {
  const merged: ConfigMap = new Map();
  for (const fragment of fragments) {
    for (const line of parseLines(fragment.text, fragment.name)) {
      // Another architecture's option is not asked for, so its absence is no dropped option.
      if (!forArch(line, arch)) continue;
      if (version && line.since && olderThan(version, line.since)) merged.delete(line.option);
      else merged.set(line.option, line.value);
    }
  }
  return merged;
}

/**
 * Options the verdicts rely on: with one of them off, a kernel's bug is not
 * printed (or not readable), and a run would pass, or a removal read as a leak,
 * on no evidence. Once a fragment turns one on (the standard fragments turn on
 * most; a profile, kmemleak or KASAN), no later fragment may turn it off.
 */
export const reliedOnOptions: readonly { option: string; reason: string }[] = [
  { option: 'CONFIG_PRINTK', reason: 'the kernel log is the evidence every verdict reads' },
  { option: 'CONFIG_PRINTK_TIME', reason: "the oracle tells the kernel's lines from shell and QEMU output by their printk timestamps" },
  { option: 'CONFIG_BUG', reason: 'without it WARN_ON and BUG_ON print nothing, so a warning would pass' },
  { option: 'CONFIG_KALLSYMS', reason: 'report titles name the function (known issues and bisect signatures match them)' },
  { option: 'CONFIG_IOMMU_SUPPORT', reason: 'the iommu groups and both vIOMMU drivers are under it' },
  {
    option: 'CONFIG_DYNAMIC_DEBUG',
    reason: 'the group messages "Allocated group N" and "Releasing group N" are pr_debug, printed only through dynamic debug: without it every removal would read as a leak',
  },
  { option: 'CONFIG_PROVE_LOCKING', reason: 'lockdep finds the lock inversions; without it every run would pass unchecked for deadlocks' },
  { option: 'CONFIG_DETECT_HUNG_TASK', reason: 'a deadlocked removal is reported as a hung task only with it' },
  { option: 'CONFIG_DEBUG_KMEMLEAK', reason: "the kmemleak profile's leak scans need it" },
  { option: 'CONFIG_KASAN', reason: "the kasan profile's memory checks need it" },
];

/** A relied-on option a later fragment switched off. */
export interface SwitchedOffOption {
  option: string;
  /** What the last fragment set it to ('n' for `# ... is not set`). */
  value: ConfigValue;
  /** The fragment that switched it off. */
  fragment: string;
  /** The fragment that had turned it on. */
  enabledBy: string;
  reason: string;
}

/** The relied-on options that an earlier fragment turned on and a later one turned off. */
export function switchedOffOptions(fragments: ConfigFragment[]): SwitchedOffOption[] {
  const found: SwitchedOffOption[] = [];
  for (const { option, reason } of reliedOnOptions) {
    let enabledBy: string | undefined;
    let last: { value: ConfigValue; fragment: string } | undefined;
    for (const fragment of fragments) {
      for (const line of parseLines(fragment.text, fragment.name)) {
        if (line.option !== option) continue;
        if (line.value === 'y') enabledBy ??= fragment.name;
        last = { value: line.value, fragment: fragment.name };
      }
    }
    if (enabledBy && last && last.value !== 'y') found.push({ option, value: last.value, fragment: last.fragment, enabledBy, reason });
  }
  return found;
}

/** The options mergeFragments leaves out for `version`, each with the release that brought it. */
export function absentOptions(fragments: ConfigFragment[], version: KernelVersion, arch: string = defaultKernelArch): AbsentOption[] {
  const absent = new Map<string, KernelVersion>();
  for (const fragment of fragments) {
    for (const line of parseLines(fragment.text, fragment.name)) {
      if (!forArch(line, arch)) continue;
      if (line.since && olderThan(version, line.since)) absent.set(line.option, line.since);
      else absent.delete(line.option);
    }
  }
  return [...absent].map(([option, since]) => ({ option, since }));
}

/**
 * The base .config with the requested options laid over it, as .config text.
 * Requested options move to the end, as merge_config.sh does: within a choice
 * (the unwinder, say) Kconfig keeps the last `=y` it reads.
 */
export function applyOptions(baseConfig: string, requested: ConfigMap): string {
  const result = parseConfig(baseConfig);
  for (const [option, value] of requested) {
    result.delete(option);
    result.set(option, value);
  }
  return renderConfig(result);
}

export function renderConfig(options: ConfigMap): string {
  const lines: string[] = [];
  for (const [option, value] of options) {
    lines.push(value === 'n' ? `# ${option} is not set` : `${option}=${value}`);
  }
  return `${lines.join('\n')}\n`;
}

export interface DroppedOption {
  option: string;
  requested: ConfigValue;
  /** What the final .config has; 'n' when absent. */
  actual: ConfigValue;
}

/** Requested options that did not land in the final config. */
export function droppedOptions(requested: ConfigMap, finalConfig: string): DroppedOption[] {
  const actualOptions = parseConfig(finalConfig);
  const dropped: DroppedOption[] = [];
  for (const [option, wanted] of requested) {
    const actual = actualOptions.get(option) ?? 'n';
    if (actual !== wanted) dropped.push({ option, requested: wanted, actual });
  }
  return dropped;
}
