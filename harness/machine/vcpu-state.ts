// What the guest's vCPUs were doing when the guest stopped answering. A guest
// that goes silent prints nothing (no hung-task or lockup report under TCG when
// every vCPU is halted or spins with interrupts off), so the only witness left
// is QEMU: HMP's `info registers -a` and `x` read each vCPU's registers and
// stack. Samples a few hundred milliseconds apart tell a halted vCPU (waiting
// for an interrupt that never comes) from one spinning in the kernel. The
// parsing and the wording are pure; `captureVcpus` is the only I/O.
import { execa } from 'execa';
import type { QmpClient } from './qmp.ts';

export interface VcpuRegisters {
  cpu: number;
  rip: bigint;
  rsp: bigint;
  /** RFLAGS.IF: the vCPU takes maskable interrupts. */
  interruptsOn: boolean;
  /** QEMU's HLT=1: the vCPU executed `hlt` and waits for an interrupt. */
  halted: boolean;
  /** Privilege level: 0 is the kernel, 3 user space. */
  cpl: number;
}

/** Every `CPU#N` block of `info registers -a` (a lone block without a header is CPU 0). */
export function parseInfoRegisters(text: string): VcpuRegisters[] {
  const blocks = text.split(/^CPU#(\d+)\s*$/m);
  const found: VcpuRegisters[] = [];
  // split() with a capture group: [before, cpu, block, cpu, block, ...].
  const pairs: Array<[number, string]> = blocks.length > 1 ? [] : [[0, text]];
  for (let index = 1; index + 1 < blocks.length; index += 2) pairs.push([Number(blocks[index]), blocks[index + 1] ?? '']);
  for (const [cpu, block] of pairs) {
    const rip = /\bRIP=([0-9a-f]+)/.exec(block)?.[1];
    const rsp = /\bRSP=([0-9a-f]+)/.exec(block)?.[1];
    const flags = /\bRFL=([0-9a-f]+)/.exec(block)?.[1];
    if (!rip || !rsp || !flags) continue;
    found.push({
      cpu,
      rip: BigInt(`0x${rip}`),
      rsp: BigInt(`0x${rsp}`),
      interruptsOn: (Number.parseInt(flags, 16) & 0x200) !== 0,
      halted: /\bHLT=1\b/.test(block),
      cpl: Number(/\bCPL=(\d)/.exec(block)?.[1] ?? 0),
    });
  }
  return found;
}

/** The 64-bit words of an HMP `x/Ngx ADDR` dump, in address order. */
export function parseMemoryWords(text: string): bigint[] {
  const words: bigint[] = [];
  for (const line of text.split('\n')) {
    const match = /^[0-9a-f]+:((?:\s+0x[0-9a-f]+)+)\s*$/.exec(line.trim());
    if (!match?.[1]) continue;
    for (const word of match[1].trim().split(/\s+/)) words.push(BigInt(word));
  }
  return words;
}

/** Kernel text symbols, sorted by address, for `function+0xoffset` names. */
export interface KernelText {
  starts: bigint[];
  names: string[];
  end: bigint;
}

/** From `nm -n vmlinux`: the text symbols between _stext and _etext. */
export function parseKernelText(nm: string): KernelText | undefined {
  const starts: bigint[] = [];
  const names: string[] = [];
  let end: bigint | undefined;
  for (const line of nm.split('\n')) {
    const match = /^([0-9a-f]+) ([tTwW]) (\S+)$/.exec(line);
    if (!match?.[1] || !match[3]) continue;
    const address = BigInt(`0x${match[1]}`);
    if (match[3] === '_etext') end = address;
    starts.push(address);
    names.push(match[3]);
  }
  const order = starts.map((_, index) => index).sort((a, b) => (starts[a]! < starts[b]! ? -1 : starts[a]! > starts[b]! ? 1 : 0));
  if (end === undefined || order.length === 0) return undefined;
  return { starts: order.map((index) => starts[index]!), names: order.map((index) => names[index]!), end };
}

/** `function+0xoffset` for an address in kernel text, else undefined. */
export function symbolAt(text: KernelText, address: bigint): string | undefined {
  if (address >= text.end || text.starts.length === 0 || address < text.starts[0]!) return undefined;
  let low = 0;
  let high = text.starts.length - 1;
  while (low < high) {
    const middle = Math.ceil((low + high) / 2);
    if (text.starts[middle]! <= address) low = middle;
    else high = middle - 1;
  }
  return `${text.names[low]}+0x${(address - text.starts[low]!).toString(16)}`;
}

/** A local APIC's interrupts: in service (ISR, awaiting EOI) and requested (IRR, awaiting delivery). */
export interface LapicState {
  inService: number[];
  pending: number[];
}

/**
 * HMP `info lapic N`: the ISR and IRR lines list vectors (`236`, `34(level)`)
 * or say `(none)`. An interrupt left in service blocks every pending one of
 * its priority class and below: a guest that sleeps on, interrupts on, forever.
 */
export function parseLapic(text: string): LapicState | undefined {
  const vectors = (name: string): number[] | undefined => {
    const line = new RegExp(`^${name}\\s+(.*)$`, 'm').exec(text)?.[1];
    if (line === undefined) return undefined;
    return [...line.matchAll(/\b(\d+)(?:\(level\))?/g)].map((match) => Number(match[1]));
  };
  const inService = vectors('ISR');
  const pending = vectors('IRR');
  return inService && pending ? { inService, pending } : undefined;
}

export interface VcpuSnapshot {
  /** Register samples, oldest first, each with every vCPU. */
  samples: VcpuRegisters[][];
  /** Per vCPU, the words at its stack pointer in the last sample. */
  stacks: Map<number, bigint[]>;
  /** Per vCPU, its local APIC after the last sample. */
  lapics?: Map<number, LapicState>;
}

/** One line per vCPU: halted or running, where, with interrupts on or off. */
export function describeVcpus(snapshot: VcpuSnapshot, text: KernelText | undefined): string {
  const last = snapshot.samples.at(-1) ?? [];
  return last
    .map((vcpu) => {
      const seen = snapshot.samples.map((sample) => sample.find((other) => other.cpu === vcpu.cpu)).filter((other) => other !== undefined);
      const where = vcpu.cpl === 3 ? 'user space' : (text && symbolAt(text, vcpu.rip)) ?? `0x${vcpu.rip.toString(16)}`;
      const state = seen.every((other) => other.halted) ? 'halted' : seen.every((other) => other.rip === vcpu.rip) ? 'stuck' : 'running';
      const lapic = snapshot.lapics?.get(vcpu.cpu);
      const inService = lapic?.inService.length ? `, vector ${lapic.inService.join(' ')} in service` : '';
      const pending = lapic?.pending.length ? `, vector ${lapic.pending.join(' ')} pending` : '';
      return `vCPU ${vcpu.cpu} ${state} in ${where}, interrupts ${vcpu.interruptsOn ? 'on' : 'off'}${inService}${pending}`;
    })
    .join('; ');
}

/** The whole record: every sample's registers and each stack's words that point into kernel text. */
export function renderVcpuSnapshot(snapshot: VcpuSnapshot, rawRegisters: string[], text: KernelText | undefined, rawInterrupts: string[] = []): string {
  const lines = [`summary: ${describeVcpus(snapshot, text)}`, ''];
  for (const [cpu, words] of snapshot.stacks) {
    const frames = text ? words.map((word) => symbolAt(text, word)).filter((name) => name !== undefined) : [];
    lines.push(`vCPU ${cpu} stack, words pointing into kernel text (unreliable, as \`?\` frames are):`, ...frames.map((frame) => `  ? ${frame}`), '');
  }
  // HMP answers with CRLF line ends.
  rawRegisters.forEach((raw, index) => lines.push(`--- info registers -a, sample ${index + 1} ---`, raw.replaceAll('\r\n', '\n').trim(), ''));
  for (const raw of rawInterrupts) lines.push(raw.replaceAll('\r\n', '\n').trim(), '');
  return lines.join('\n');
}

const stackWordsRead = 64;

/**
 * Samples every vCPU `count` times `intervalMs` apart, reads the last sample's
 * stacks and names what it can with vmlinux's symbols. Best effort: any QMP or
 * nm failure gives what was read so far.
 */
export async function captureVcpus(qmp: QmpClient, vmlinux: string | undefined, count = 3, intervalMs = 300): Promise<{ summary: string; record: string } | undefined> {
  const raw: string[] = [];
  const samples: VcpuRegisters[][] = [];
  for (let index = 0; index < count; index++) {
    if (index > 0) await new Promise((resolve) => setTimeout(resolve, intervalMs));
    const registers = await qmp.hmp('info registers -a', { timeoutMs: 3000 }).catch(() => undefined);
    if (registers === undefined) break;
    raw.push(registers);
    samples.push(parseInfoRegisters(registers));
  }
  if (samples.length === 0 || samples.every((sample) => sample.length === 0)) return undefined;
  const stacks = new Map<number, bigint[]>();
  for (const vcpu of samples.at(-1) ?? []) {
    if (vcpu.cpl !== 0) continue;
    const dump = await qmp.hmp(`x/${stackWordsRead}gx 0x${vcpu.rsp.toString(16)}`, { timeoutMs: 3000 }).catch(() => '');
    stacks.set(vcpu.cpu, parseMemoryWords(dump));
  }
  // Interrupt delivery: each local APIC, then the I/O APIC (a level interrupt's Remote IRR left set blocks its pin).
  const lapics = new Map<number, LapicState>();
  const interrupts: string[] = [];
  for (const vcpu of samples.at(-1) ?? []) {
    const lapic = await qmp.hmp(`info lapic ${vcpu.cpu}`, { timeoutMs: 3000 }).catch(() => '');
    const state = parseLapic(lapic);
    if (state) lapics.set(vcpu.cpu, state);
    interrupts.push(`--- info lapic ${vcpu.cpu} ---\n${lapic}`);
  }
  interrupts.push(`--- info pic ---\n${await qmp.hmp('info pic', { timeoutMs: 3000 }).catch(() => '')}`);
  const nm = vmlinux ? await execa('nm', ['-n', vmlinux], { reject: false, timeout: 60_000, maxBuffer: 512 * 1024 * 1024 }) : undefined;
  const text = nm?.exitCode === 0 ? parseKernelText(nm.stdout) : undefined;
  const snapshot = { samples, stacks, lapics };
  return { summary: describeVcpus(snapshot, text), record: renderVcpuSnapshot(snapshot, raw, text, interrupts) };
}
