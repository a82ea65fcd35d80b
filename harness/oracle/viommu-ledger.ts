// The third witness: the emulated IOMMU's own view of endpoints and domains,
// held against the devices the guest says have left. The guest's console
// cannot show a device the kernel released without telling the IOMMU; the
// device model's trace can. Pure: a parsed trace in, findings out.
//
// virtio-iommu (QEMU 7.2's semantics, hw/virtio/virtio-iommu.c): ATTACH moves
// an endpoint, detaching it from its previous domain first; DETACH removes
// it; a domain is freed the moment its last endpoint goes. So when a device
// has left, its endpoint must be attached to nothing, and a domain emptied
// must have been freed, by the end of the step (or before the endpoint is
// attached again, when a rescan brings the device back in the same step).
//
// intel-iommu: attaches are memory writes the trace cannot see (without
// caching mode the guest need not invalidate a not-present context entry),
// but a removal must be invalidated: a context-cache invalidation covering
// the device's source id, then an IOTLB invalidation of its domain, within
// the step that removed it.
import type { TracedIommu, ViommuEvent, ViommuTrace, ViommuTraceEvent } from './viommu-trace.ts';

export interface ViommuFinding {
  kind: 'viommu-state';
  iommu: TracedIommu;
  /**
   * Stable across commits (no domain ids): it names the device, like a leak's signature. No colon
   * after the vIOMMU's name, so it is never taken for the kernel's own "virtio-iommu: ... fault" lines.
   */
  title: string;
  /** What the device model was left holding, with the trace lines that show it. */
  text: string;
  /** The harness step in which the device left (or the domain emptied). */
  step?: string;
  /** The endpoint's PCI address. */
  endpoint?: string;
  domain?: number;
  /** 0-based trace line at which the ledger made the finding. */
  line: number;
}

export interface ViommuCheck {
  device: string;
  step?: string;
  /** The trace showed the device's endpoint attached (virtio) or invalidated (intel) at some point. */
  seen: boolean;
}

export interface ViommuJudgement {
  iommu?: TracedIommu;
  findings: ViommuFinding[];
  /** Every device-gone mark the ledger judged. */
  checked: ViommuCheck[];
  /** Why the ledger could judge nothing, when it could not. */
  blind?: string;
}

const bdfRe = /^0000:([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/;

/** A PCI device's requester id: the virtio-iommu endpoint id and the VT-d source id. */
export function requesterId(bdf: string): number | undefined {
  const m = bdfRe.exec(bdf);
  if (!m) return undefined;
  return (Number.parseInt(m[1]!, 16) << 8) | (Number.parseInt(m[2]!, 16) << 3) | Number.parseInt(m[3]!, 10);
}

export function bdfOfRequesterId(id: number): string {
  const hex = (value: number, width: number) => value.toString(16).padStart(width, '0');
  return `0000:${hex(id >> 8, 2)}:${hex((id >> 3) & 0x1f, 2)}.${id & 7}`;
}

export function judgeViommuTrace(trace: ViommuTrace): ViommuJudgement {
  if (!trace.iommu) return { findings: [], checked: [], blind: 'the trace has no vIOMMU events' };
  const hasMarks = trace.events.some(({ event }) => event.type === 'step');
  const judgement = trace.iommu === 'virtio' ? judgeVirtio(trace.events) : judgeIntel(trace.events);
  if (!hasMarks) judgement.blind = 'the trace has no console bytes (serial_write), so nothing can be placed in a step';
  return { iommu: trace.iommu, ...judgement };
}

interface Departure {
  device: string;
  endpoint: number;
  step?: string;
  line: number;
}

function judgeVirtio(events: ViommuTraceEvent[]): Omit<ViommuJudgement, 'iommu'> {
  const findings: ViommuFinding[] = [];
  const checked: ViommuCheck[] = [];
  const domainOf = new Map<number, number>();
  const members = new Map<number, Set<number>>();
  /** Domains whose last endpoint went, still waiting for the device model to free them. */
  const emptied = new Map<number, { step?: string; line: number }>();
  const departures = new Map<number, Departure>();
  const everAttached = new Set<number>();
  let step: string | undefined;

  const leave = (endpoint: number, line: number) => {
    const domain = domainOf.get(endpoint);
    if (domain === undefined) return;
    domainOf.delete(endpoint);
    const rest = members.get(domain);
    rest?.delete(endpoint);
    if (rest?.size === 0) emptied.set(domain, { ...(step ? { step } : {}), line });
  };

  const settle = (departure: Departure, line: number) => {
    departures.delete(departure.endpoint);
    checked.push({ device: departure.device, ...(departure.step ? { step: departure.step } : {}), seen: everAttached.has(departure.endpoint) });
    const domain = domainOf.get(departure.endpoint);
    if (domain === undefined) return;
    const others = [...(members.get(domain) ?? [])].filter((endpoint) => endpoint !== departure.endpoint).map(bdfOfRequesterId);
    findings.push({
      kind: 'viommu-state',
      iommu: 'virtio',
      title: `virtio-iommu endpoint ${departure.device} still attached after its device left`,
      text: [
        `${departure.device} left the guest (device-gone, trace line ${departure.line + 1}), but virtio-iommu never received a DETACH for endpoint ${departure.endpoint}:`,
        `it is still attached to domain ${domain}${others.length ? ` with ${others.join(', ')}` : ', which therefore was never freed'} (checked at trace line ${line + 1}).`,
      ].join('\n'),
      ...(departure.step ? { step: departure.step } : {}),
      endpoint: departure.device,
      domain,
      line,
    });
  };

  const endOfStep = (line: number) => {
    for (const departure of [...departures.values()]) settle(departure, line);
    for (const [domain, since] of emptied) {
      findings.push({
        kind: 'viommu-state',
        iommu: 'virtio',
        title: 'virtio-iommu domain not freed after its last endpoint left',
        text: `domain ${domain} lost its last endpoint at trace line ${since.line + 1}, but the device model never freed it (checked at trace line ${line + 1}).`,
        ...(since.step ? { step: since.step } : {}),
        domain,
        line,
      });
    }
    emptied.clear();
  };

  for (const { event, line } of events) {
    switch (event.type) {
      case 'step':
        endOfStep(line);
        step = event.step;
        break;
      case 'device-gone': {
        const endpoint = requesterId(event.device);
        if (endpoint !== undefined) departures.set(endpoint, { device: event.device, endpoint, ...(step ? { step } : {}), line });
        break;
      }
      case 'attach': {
        // The device came back (a rescan, a hot-add at the same address): judge its departure first.
        const departure = departures.get(event.endpoint);
        if (departure) settle(departure, line);
        leave(event.endpoint, line);
        domainOf.set(event.endpoint, event.domain);
        members.set(event.domain, (members.get(event.domain) ?? new Set()).add(event.endpoint));
        emptied.delete(event.domain);
        everAttached.add(event.endpoint);
        break;
      }
      case 'detach':
        if (domainOf.get(event.endpoint) === event.domain) {
          leave(event.endpoint, line);
        } else {
          const actual = domainOf.get(event.endpoint);
          findings.push({
            kind: 'viommu-state',
            iommu: 'virtio',
            title: `virtio-iommu DETACH of endpoint ${bdfOfRequesterId(event.endpoint)} from a domain it is not attached to`,
            text: `the guest detached endpoint ${event.endpoint} from domain ${event.domain}, but the device model has it ${actual === undefined ? 'attached to nothing' : `in domain ${actual}`} and rejects the request (trace line ${line + 1}).`,
            ...(step ? { step } : {}),
            endpoint: bdfOfRequesterId(event.endpoint),
            domain: event.domain,
            line,
          });
        }
        break;
      case 'domain-freed': {
        // put_domain detaches whatever is still in the domain (QEMU does this on reset).
        for (const endpoint of members.get(event.domain) ?? []) domainOf.delete(endpoint);
        members.delete(event.domain);
        emptied.delete(event.domain);
        break;
      }
      case 'reset':
        domainOf.clear();
        members.clear();
        emptied.clear();
        break;
      default:
        break;
    }
  }
  endOfStep(events.at(-1)?.line ?? 0);
  return { findings, checked };
}

interface IntelDeparture {
  device: string;
  sid: number;
  step?: string;
  stepStart: number;
  line: number;
}

/** Whether a context-cache invalidation reaches source id `sid` (VT-d 6.5.2.1: FM masks low function bits). */
function contextCovers(event: Extract<ViommuEvent, { type: 'context-invalidation' }>, sid: number): boolean {
  if (event.scope !== 'device') return true;
  const masked = [0, 0b100, 0b110, 0b111][event.functionMask] ?? 0;
  return (event.sid & ~masked) === (sid & ~masked);
}

function judgeIntel(events: ViommuTraceEvent[]): Omit<ViommuJudgement, 'iommu'> {
  const findings: ViommuFinding[] = [];
  const checked: ViommuCheck[] = [];
  let queuedInvalidation = false;
  let step: string | undefined;
  let stepStart = 0;
  let departures: IntelDeparture[] = [];

  const judge = (departure: IntelDeparture, end: number) => {
    const window = events.filter(({ line }) => line > departure.stepStart && line < end);
    const context = window.filter(
      (entry): entry is { event: Extract<ViommuEvent, { type: 'context-invalidation' }>; line: number } =>
        entry.event.type === 'context-invalidation' && contextCovers(entry.event, departure.sid),
    );
    const lastContext = context.at(-1);
    // Intel attaches are invisible, so a device is "seen" by being judged at all; a missing invalidation is the finding.
    checked.push({ device: departure.device, ...(departure.step ? { step: departure.step } : {}), seen: true });
    const base = { kind: 'viommu-state' as const, iommu: 'intel' as const, ...(departure.step ? { step: departure.step } : {}), endpoint: departure.device, line: end };
    if (!lastContext) {
      findings.push({
        ...base,
        title: `intel-iommu context cache not invalidated for ${departure.device} on removal`,
        text: `${departure.device} left the guest (device-gone, trace line ${departure.line + 1}), but no context-cache invalidation covering source id 0x${departure.sid.toString(16)} was queued in its step (trace lines ${departure.stepStart + 1}-${end + 1}): the IOMMU may keep translating for it.`,
      });
      return;
    }
    const domain = lastContext.event.domain;
    const scope = lastContext.event.scope;
    const flushed = window.some(
      ({ event, line }) =>
        line > lastContext.line &&
        event.type === 'iotlb-invalidation' &&
        (event.scope === 'global' || (scope === 'global' ? event.scope === 'domain' : event.scope === 'domain' && event.domain === domain)),
    );
    if (!flushed) {
      findings.push({
        ...base,
        domain,
        title: `intel-iommu IOTLB not invalidated after ${departure.device} was removed`,
        text: `${departure.device} left the guest and its context entry was invalidated (trace line ${lastContext.line + 1}, domain ${domain}), but no IOTLB invalidation of ${scope === 'global' ? 'any domain' : `domain ${domain}`} followed in its step (to trace line ${end + 1}): stale translations may outlive the device.`,
      });
    }
  };

  const endOfStep = (line: number) => {
    for (const departure of departures) judge(departure, line);
    departures = [];
  };

  for (const { event, line } of events) {
    switch (event.type) {
      case 'qi':
        queuedInvalidation = event.enabled;
        break;
      case 'step':
        endOfStep(line);
        step = event.step;
        stepStart = line;
        break;
      case 'device-gone': {
        const sid = requesterId(event.device);
        if (sid !== undefined) departures.push({ device: event.device, sid, ...(step ? { step } : {}), stepStart, line });
        break;
      }
      default:
        break;
    }
  }
  endOfStep((events.at(-1)?.line ?? 0) + 1);
  if (!queuedInvalidation && checked.length > 0) {
    // Register-based invalidation is not traced by this event set: the ledger would see nothing.
    return { findings: [], checked, blind: 'the guest never enabled queued invalidation, and register-based invalidations are not traced' };
  }
  return { findings, checked };
}
