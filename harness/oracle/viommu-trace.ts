// The emulated IOMMU's own record of what the guest asked of it: QEMU trace
// events, written by Debian's `log` trace backend one per line
// (`[PID@SEC.USEC:]NAME ARGS`). Pure: text in, events out.
//
// Trace events carry QEMU's clock and the console carries the guest's, so
// neither places an event in a harness step. The serial port does: with
// `serial_write` traced, every byte the guest prints is a trace line of its
// own, in the same file and the same order as the vIOMMU's events. The
// console rebuilt from those bytes holds the harness's step marks and
// device-gone marks, in band.
import { findGroupEvents, findStepMarks } from './events.ts';
import { splitLines } from './lines.ts';

/** The file beside a boot's console.log that holds its vIOMMU trace. */
export const viommuTraceFile = 'viommu-trace.log';

/**
 * The events each vIOMMU's boot records from its first instruction: only
 * what the ledger reads, since every event costs a formatted write.
 */
export const viommuTraceEvents = {
  virtio: [
    'virtio_iommu_attach',
    'virtio_iommu_detach',
    'virtio_iommu_get_domain',
    'virtio_iommu_put_domain',
    'virtio_iommu_device_reset',
    'virtio_iommu_system_reset',
  ],
  intel: ['vtd_inv_qi_enable', 'vtd_inv_desc'],
} as const;

/**
 * The console, one trace line per byte the guest prints: switched on (over
 * QMP, trace-event-set-state) once the guest is up, since the boot's own
 * console is most of the bytes and holds no step mark. Traced from boot it
 * cost about 0.8 s of QEMU CPU per boot (21,000 lines).
 */
export const consoleTraceEvent = 'serial_write';

export type TracedIommu = keyof typeof viommuTraceEvents;

export type ViommuEvent =
  // virtio-iommu: a request as the device received it, before it validated it.
  | { type: 'attach'; domain: number; endpoint: number }
  | { type: 'detach'; domain: number; endpoint: number }
  // The device model created (first attach) or freed (last endpoint gone) a domain.
  | { type: 'domain-created'; domain: number }
  | { type: 'domain-freed'; domain: number }
  | { type: 'reset' }
  // intel-iommu: queued invalidation switched on or off.
  | { type: 'qi'; enabled: boolean }
  // A context-cache invalidation: global, one domain, or the source ids that match `sid` under `functionMask`.
  | { type: 'context-invalidation'; scope: 'global' | 'domain' | 'device'; domain: number; sid: number; functionMask: number }
  // An IOTLB invalidation: global, one domain, or some pages of one domain.
  | { type: 'iotlb-invalidation'; scope: 'global' | 'domain' | 'pages'; domain: number }
  // The harness's own marks, from the console bytes.
  | { type: 'step'; step: string }
  | { type: 'device-gone'; device: string };

export interface ViommuTraceEvent {
  event: ViommuEvent;
  /** 0-based line of the trace the event came from. */
  line: number;
}

export interface ViommuTrace {
  /** Which vIOMMU the trace is from; undefined when it has none of either's events. */
  iommu?: TracedIommu;
  events: ViommuTraceEvent[];
  /** The console as the serial port saw it; empty when serial_write was not traced. */
  console: string;
}

const traceLineRe = /^(?:\d+@\d+\.\d+:)?([a-z0-9_]+) ?(.*)$/;

type Rule = (args: string) => ViommuEvent | undefined;

const number = (text: string | undefined) => Number.parseInt(text ?? '', 10);
const hex = (text: string | undefined) => Number.parseInt(text ?? '', 16);

// VT-d invalidation descriptors (spec 6.5.2): type in bits 3:0 of the low word,
// granularity in bits 5:4, domain id in 31:16; a context-cache one also has the
// source id in 47:32 and the function mask in 49:48.
const contextScopes = { 1: 'global', 2: 'domain', 3: 'device' } as const;
const iotlbScopes = { 1: 'global', 2: 'domain', 3: 'pages' } as const;

function invalidationDescriptor(args: string): ViommuEvent | undefined {
  const m = /^invalidate desc type (\S+) high 0x([0-9a-f]+) low 0x([0-9a-f]+)/.exec(args);
  if (!m?.[3]) return undefined;
  const low = BigInt(`0x${m[3]}`);
  const field = (shift: number, bits: number) => Number((low >> BigInt(shift)) & ((1n << BigInt(bits)) - 1n));
  const granularity = field(4, 2) as 1 | 2 | 3;
  const domain = field(16, 16);
  if (m[1] === 'context-cache' && contextScopes[granularity]) {
    return { type: 'context-invalidation', scope: contextScopes[granularity], domain, sid: field(32, 16), functionMask: field(48, 2) };
  }
  if (m[1] === 'iotlb' && iotlbScopes[granularity]) return { type: 'iotlb-invalidation', scope: iotlbScopes[granularity], domain };
  return undefined;
}

const rules: Record<string, Rule> = {
  virtio_iommu_attach: (args) => {
    const m = /domain=(\d+) endpoint=(\d+)/.exec(args);
    return m ? { type: 'attach', domain: number(m[1]), endpoint: number(m[2]) } : undefined;
  },
  virtio_iommu_detach: (args) => {
    const m = /domain=(\d+) endpoint=(\d+)/.exec(args);
    return m ? { type: 'detach', domain: number(m[1]), endpoint: number(m[2]) } : undefined;
  },
  virtio_iommu_get_domain: (args) => {
    const m = /domain=(\d+)/.exec(args);
    return m ? { type: 'domain-created', domain: number(m[1]) } : undefined;
  },
  virtio_iommu_put_domain: (args) => {
    const m = /domain=(\d+)/.exec(args);
    return m ? { type: 'domain-freed', domain: number(m[1]) } : undefined;
  },
  virtio_iommu_device_reset: () => ({ type: 'reset' }),
  virtio_iommu_system_reset: () => ({ type: 'reset' }),
  vtd_inv_qi_enable: (args) => {
    const m = /enabled (\d+)/.exec(args);
    return m ? { type: 'qi', enabled: m[1] !== '0' } : undefined;
  },
  vtd_inv_desc: invalidationDescriptor,
};

/** The 8250's registers as the console driver uses them. */
const uartData = 0x00;
const uartLineControl = 0x03;
/** LCR bit 7: while set, offset 0 is the baud divisor, not data. */
const divisorLatch = 0x80;

export function parseViommuTrace(text: string): ViommuTrace {
  const events: ViommuTraceEvent[] = [];
  const consoleBytes: number[] = [];
  /** For each console line, the trace line its newline came from. */
  const consoleLineEnds: number[] = [];
  let divisorLatched = false;
  let sawVirtio = false;
  let sawIntel = false;
  const lines = text.split('\n');
  for (const [index, raw] of lines.entries()) {
    const m = traceLineRe.exec(raw.trimEnd());
    if (!m?.[1]) continue;
    const [, name, args = ''] = m;
    if (name === consoleTraceEvent) {
      const write = /addr 0x([0-9a-f]+) val 0x([0-9a-f]+)/.exec(args);
      if (!write) continue;
      const [register, value] = [hex(write[1]), hex(write[2])];
      if (register === uartLineControl) divisorLatched = (value & divisorLatch) !== 0;
      if (register !== uartData || divisorLatched) continue;
      consoleBytes.push(value);
      if (value === 0x0a) consoleLineEnds.push(index);
      continue;
    }
    if (name.startsWith('virtio_iommu_')) sawVirtio = true;
    if (name.startsWith('vtd_')) sawIntel = true;
    const event = rules[name]?.(args);
    if (event) events.push({ event, line: index });
  }
  const console = Buffer.from(consoleBytes).toString('utf8');
  events.push(...consoleMarks(console, consoleLineEnds, lines.length));
  events.sort((a, b) => a.line - b.line);
  const trace: ViommuTrace = { events, console };
  if (sawVirtio) trace.iommu = 'virtio';
  else if (sawIntel) trace.iommu = 'intel';
  return trace;
}

/** The harness's marks in the rebuilt console, placed at the trace line that finished them. */
function consoleMarks(console: string, lineEnds: number[], traceLength: number): ViommuTraceEvent[] {
  const lines = splitLines(console);
  // A last line without its newline yet was cut off by the end of the trace.
  const traceLineOf = (consoleLine: number) => lineEnds[consoleLine] ?? traceLength;
  const marks: ViommuTraceEvent[] = findStepMarks(lines).map((mark) => ({ event: { type: 'step', step: mark.step }, line: traceLineOf(mark.line) }));
  for (const found of findGroupEvents(lines, [])) {
    // Only the harness's own mark has a device and no group; the kernel's group lines are not needed here.
    if (found.type === 'device-removed' && found.group === undefined && found.device) {
      marks.push({ event: { type: 'device-gone', device: found.device }, line: traceLineOf(found.line) });
    }
  }
  return marks;
}
