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

/** Parses .config or fragment text. */
export function parseConfig(text: string, source = 'config'): ConfigMap {
  const options: ConfigMap = new Map();
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (!line) return;
    const unset = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line);
    if (unset?.[1]) {
      options.set(unset[1], 'n');
      return;
    }
    if (line.startsWith('#')) return;
    const set = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (!set?.[1] || set[2] === undefined) throw new ConfigSyntaxError(source, index + 1, line);
    options.set(set[1], set[2]);
  });
  return options;
}

/** Later fragments win, as with the kernel's merge_config.sh. */
export function mergeFragments(fragments: ConfigFragment[]): ConfigMap {
  const merged: ConfigMap = new Map();
  for (const fragment of fragments) {
    for (const [option, value] of parseConfig(fragment.text, fragment.name)) merged.set(option, value);
  }
  return merged;
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
