// The preemption model is a choice the harness makes and states: the lock
// orders, hangs and races a scenario can hit depend on it. The harness wants
// CONFIG_PREEMPT_NONE (no forced preemption: the model 6.1 and 6.12 default
// to, and the one their verdicts were verified with) where the kernel offers
// it; where it does not (7.2 on x86: PREEMPT_NONE depends on ARCH_NO_PREEMPT,
// and x86 selects ARCH_HAS_PREEMPT_LAZY, so the choice defaults to
// PREEMPT_LAZY), the kernel gets its release's default. Pure: reads Kconfig
// and .config text.
import type { ConfigMap } from './kconfig.ts';

export type PreemptionModel = 'none' | 'voluntary' | 'full' | 'lazy' | 'rt';

/** What the built kernel's preemption model is, and why (in the table and the JSON). */
export interface Preemption {
  model: PreemptionModel;
  /** The .config option that chose it: `CONFIG_PREEMPT_LAZY`. */
  option: string;
  /** CONFIG_PREEMPT_DYNAMIC: the model can be changed at boot (`preempt=`); the harness passes none. */
  dynamic: boolean;
  reason: string;
}

/** The choice's members, in the order Kconfig.preempt lists them (PREEMPT_RT is a member since 6.x too). */
const models: readonly [string, PreemptionModel][] = [
  ['CONFIG_PREEMPT_NONE', 'none'],
  ['CONFIG_PREEMPT_VOLUNTARY', 'voluntary'],
  ['CONFIG_PREEMPT', 'full'],
  ['CONFIG_PREEMPT_LAZY', 'lazy'],
  ['CONFIG_PREEMPT_RT', 'rt'],
];

const preemptionOptions = new Set(models.map(([option]) => option));

/** The `config NAME` block of a Kconfig file, up to the next `config`/`choice`/`endchoice`. */
function kconfigBlock(kconfig: string, name: string): string | undefined {
  const match = new RegExp(`^config ${name}\\n([\\s\\S]*?)(?=^(?:config|menuconfig|choice|endchoice)\\b|$(?![\\s\\S]))`, 'm').exec(kconfig);
  return match?.[1];
}

/**
 * What the harness adds to the requested options for the preemption model,
 * read from the tree's kernel/Kconfig.preempt: nothing when a fragment
 * already chose a model (the user's choice wins), nothing when the kernel
 * does not offer PREEMPT_NONE on x86 (its `depends on ARCH_NO_PREEMPT`, 7.2),
 * nothing when PREEMPT_NONE is already the choice's only default (6.1, 6.12:
 * tinyconfig lands on it, and asking again would only change the cache key),
 * and CONFIG_PREEMPT_NONE=y otherwise.
 */
export function preemptionRequest(kconfigPreempt: string | undefined, requested: ConfigMap): ConfigMap {
  const none: ConfigMap = new Map();
  if (!kconfigPreempt) return none;
  if ([...requested].some(([option, value]) => preemptionOptions.has(option) && value === 'y')) return none;
  const block = kconfigBlock(kconfigPreempt, 'PREEMPT_NONE');
  if (!block || !offersNoneOnX86(block)) return none;
  const choice = /^choice\n\s*prompt "Preemption Model"\n([\s\S]*?)^config /m.exec(kconfigPreempt)?.[1] ?? '';
  const defaults = [...choice.matchAll(/^\s*default (\S+)(.*)$/gm)].map((m) => `${m[1]}${m[2]}`.trim());
  if (defaults.length === 1 && defaults[0] === 'PREEMPT_NONE') return none;
  return new Map([['CONFIG_PREEMPT_NONE', 'y']]);
}

/** Neither x86 nor arm64 selects ARCH_NO_PREEMPT: a PREEMPT_NONE that depends on it is not offered there. */
function offersNoneOnX86(block: string): boolean {
  return !/^\s*depends on ARCH_NO_PREEMPT\s*$/m.test(block);
}

/**
 * The model a built .config has, with the reason: the harness's choice
 * (PREEMPT_NONE), a fragment's (an option the requested set names), or the
 * release's default when the kernel does not offer PREEMPT_NONE (a choice
 * member whose dependencies fail is not written to .config at all).
 */
export function preemptionOf(config: string, requested: ConfigMap = new Map()): Preemption | undefined {
  const set = (option: string) => new RegExp(`^${option}=y$`, 'm').test(config);
  const listed = (option: string) => new RegExp(`^(?:${option}=|# ${option} is not set$)`, 'm').test(config);
  // PREEMPT_RT is its own bool beside the choice on newer kernels: it wins when set.
  const chosen = set('CONFIG_PREEMPT_RT') ? models.find(([, model]) => model === 'rt') : models.find(([option]) => option !== 'CONFIG_PREEMPT_RT' && set(option));
  if (!chosen) return undefined;
  const [option, model] = chosen;
  const dynamic = set('CONFIG_PREEMPT_DYNAMIC');
  const fromFragment = [...requested].find(([name, value]) => preemptionOptions.has(name) && value === 'y');
  let reason: string;
  if (fromFragment) reason = `asked for by a kconfig fragment (${fromFragment[0]}=y)`;
  else if (model === 'none') reason = "the harness's choice: no forced preemption, where the kernel offers it";
  else if (!listed('CONFIG_PREEMPT_NONE')) reason = `the release's default: this kernel does not offer PREEMPT_NONE here (kernel/Kconfig.preempt: it depends on ARCH_NO_PREEMPT), the harness's choice where offered`;
  else reason = `the release's default: PREEMPT_NONE is offered but the configuration did not choose it`;
  return { model, option, dynamic, reason };
}

/** One line for the table: `preemption: lazy (CONFIG_PREEMPT_LAZY): the release's default: ...`. */
export function describePreemption(preemption: Preemption): string {
  return `preemption: ${preemption.model} (${preemption.option}${preemption.dynamic ? ', PREEMPT_DYNAMIC' : ''}): ${preemption.reason}`;
}
