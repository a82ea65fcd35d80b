// IOMMU DMA faults: a device read or wrote an address its domain does not map. The IOMMU blocks
// the access and the driver prints one line; nothing else in the kernel log says it happened, so
// each line is a report of its own (kind iommu-fault) with the device and the address. A table,
// one row per driver message:
//   drivers/iommu/intel/dmar.c dmar_fault_do_one() (pr_fmt "DMAR: "), 6.1 and 6.12:
//     [DMA Read NO_PASID] Request device [01:00.0] fault addr 0x40000 [fault reason 0x06] PTE Read access is not set
//     [DMA Write PASID 0x1] Request device [01:00.0] fault addr 0x... [fault reason 0x..] ...
//     [INTR-REMAP] Request device [01:00.0] fault index 0x.. [fault reason 0x..] ...
//   7.2 prints the PCI segment first ("[%04x:%02x:%02x.%d]"): Request device [0000:01:00.0]. The
//   device field is bus:slot.function either way (the segment kept only when it is not 0), so one
//   fault reads the same on every kernel and matches virtio-iommu's endpoint, which has no segment.
//   drivers/iommu/amd/iommu.c: AMD-Vi: Event logged [IO_PAGE_FAULT ...] (the row says more).
//   drivers/iommu/virtio-iommu.c viommu_fault_handler() (dev_err_ratelimited on the virtio device, same in 7.2):
//     virtio_iommu virtio0: page fault from EP 256 at 0x40000 [R]
//     virtio_iommu virtio0: domain fault from EP 256
import type { LogLine } from './lines.ts';
import type { KernelReport } from './types.ts';

interface FaultRow {
  /**
   * Matched against the line, or with `span`, the line, the next `span` lines and the one after
   * them (to see what follows the message), joined by newlines.
   */
  re: RegExp;
  /** How many following lines belong to the message (a fault printed as several lines). */
  span?: number;
  /** Stable across boots: no address, no device (those are fields), so one bug is one title. */
  title: (m: RegExpExecArray) => string;
  device: (m: RegExpExecArray) => string;
  address?: (m: RegExpExecArray) => string;
}

/**
 * virtio-iommu names the endpoint by its ID. QEMU's VIOT table (hw/acpi/viot.c) maps a PCI
 * range with endpoint IDs equal to the requester ID (bus << 8 | devfn) on segment 0, so the ID
 * reads back as bus:slot.function.
 */
function endpointAsPci(id: string | undefined): string {
  const rid = Number(id);
  const hex2 = (n: number) => n.toString(16).padStart(2, '0');
  return `${hex2((rid >> 8) & 0xff)}:${hex2((rid >> 3) & 0x1f)}.${rid & 7}`;
}

/** "0000:01:00.0" (7.2) or "01:00.0" (6.x) as bus:slot.function; a segment other than 0 is kept. */
function dmarDevice(segment: string | undefined, bdf: string | undefined): string {
  return segment && !/^0+$/.test(segment) ? `${segment}:${bdf ?? ''}` : (bdf ?? '');
}

const dmarDeviceRe = String.raw`\[(?:([0-9a-f]{4}):)?([0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\]`;

/** SMMUv3 event record IDs (arm-smmu-v3.h EVT_ID_*) by the names 7.2 prints (event_str[]). */
const smmuEventNames: Record<number, string> = { 0x10: 'F_TRANSLATION', 0x11: 'F_ADDR_SIZE', 0x12: 'F_ACCESS', 0x13: 'F_PERMISSION' };

/** A 64-bit hex word as the short form the other rows use (0x100000). */
const shortHex = (word: string | undefined) => `0x${BigInt(`0x${word ?? '0'}`).toString(16)}`;

/**
 * SMMUv3 names the device by its stream ID. QEMU's virt maps PCI requester IDs
 * to stream IDs one to one (the device tree's iommu-map), so the SID reads back
 * as bus:slot.function, as virtio-iommu's endpoint does.
 */
const smmuSidAsPci = (sid: string | undefined) => endpointAsPci(String(Number.parseInt(sid ?? '0', 16)));

/** "0000:01:00.0" as bus:slot.function (the segment kept when it is not 0), as dmarDevice. */
const pciClient = (client: string | undefined) => /^(?:0000:)?([0-9a-f]{2}:[0-9a-f]{2}\.[0-7])$/.exec(client ?? '')?.[1] ?? client ?? '';

const faultRows: FaultRow[] = [
  {
    // drivers/iommu/arm/arm-smmu-v3/arm-smmu-v3.c arm_smmu_dump_event() (7.x): the raw record
    // ("event 0x10 received:" and four words, not read: the next line says it all), then
    //   arm-smmu-v3 9050000.smmuv3: event: F_TRANSLATION client: 0000:01:00.0 sid: 0x8 ssid: 0x0 iova: 0x100000 ipa: 0x0
    re: /^arm-smmu-v3 \S+: event: (\S+) client: (\(unassigned sid\)|\S+) sid: (0x[0-9a-f]+|0) ssid: \S+(?: iova: (0x[0-9a-f]+|0)| fetch_addr: (0x[0-9a-f]+|0))?/,
    title: (m) => `arm-smmu-v3: ${m[1]}`,
    device: (m) => (m[2] === '(unassigned sid)' ? smmuSidAsPci(m[3]?.replace(/^0x/, '')) : pciClient(m[2])),
    address: (m) => m[4] ?? m[5] ?? '',
  },
  {
    // The same function in 6.1 and 6.12, arm_smmu_evtq_thread(): only the raw record, the
    // event ID on its first line and four 64-bit words, each a line of its own:
    //   arm-smmu-v3 9050000.smmuv3: event 0x10 received:
    //   arm-smmu-v3 9050000.smmuv3: 	0x0000000800000010   (SID in bits 63:32, event ID in 7:0)
    //   arm-smmu-v3 9050000.smmuv3: 	0x0000020800000000
    //   arm-smmu-v3 9050000.smmuv3: 	0x0000000000100000   (the input address: the IOVA)
    //   arm-smmu-v3 9050000.smmuv3: 	0x0000000000000000
    // A 7.x kernel prints its decoded line next, which the row above reads: not read twice.
    re: /^arm-smmu-v3 (\S+): event (0x[0-9a-f]{2}) received:\narm-smmu-v3 \1:\s*0x([0-9a-f]{8})[0-9a-f]{8}\narm-smmu-v3 \1:\s*0x[0-9a-f]{16}\narm-smmu-v3 \1:\s*0x([0-9a-f]{16})\narm-smmu-v3 \1:\s*0x[0-9a-f]{16}(?!\narm-smmu-v3 \S+: event: )/,
    span: 4,
    title: (m) => `arm-smmu-v3: ${smmuEventNames[Number.parseInt(m[2] ?? '0', 16)] ?? `event ${m[2]}`}`,
    device: (m) => smmuSidAsPci(m[3]),
    address: (m) => shortHex(m[4]),
  },
  {
    re: new RegExp(String.raw`^DMAR: \[(DMA Read|DMA Write)(?: NO_PASID| PASID 0x[0-9a-f]+)?\] Request device ${dmarDeviceRe} fault addr (0x[0-9a-f]+) \[fault reason 0x[0-9a-f]+\] ?(.*)$`),
    title: (m) => `DMAR: ${m[1]} fault${m[5] ? `: ${m[5]}` : ''}`,
    device: (m) => dmarDevice(m[2], m[3]),
    address: (m) => m[4] ?? '',
  },
  {
    re: new RegExp(String.raw`^DMAR: \[INTR-REMAP\] Request device ${dmarDeviceRe} fault index (0x[0-9a-f]+) \[fault reason 0x[0-9a-f]+\] ?(.*)$`),
    title: (m) => `DMAR: interrupt remapping fault${m[4] ? `: ${m[4]}` : ''}`,
    device: (m) => dmarDevice(m[1], m[2]),
    address: (m) => `index ${m[3]}`,
  },
  {
    // drivers/iommu/amd/iommu.c amd_iommu_report_page_fault() (pr_fmt "AMD-Vi: ", 6.1 to 7.2), on
    // the device when the driver knows it, else by device ID:
    //   vfio-pci 0000:00:11.0: AMD-Vi: Event logged [IO_PAGE_FAULT domain=0x0003 address=0x100000 flags=0x0000]
    //   AMD-Vi: Event logged [IO_PAGE_FAULT device=0000:00:11.0 domain=0x0003 address=0x100000 flags=0x0000]
    // QEMU 7.2's amd-iommu never logs one to the guest (the amd machine's row): read from the
    // driver's format, for the kernels and QEMUs that do.
    re: /^(?:\S+ ([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]): )?AMD-Vi: Event logged \[IO_PAGE_FAULT (?:device=([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) )?domain=0x[0-9a-f]+ address=(0x[0-9a-f]+|0) flags=(0x[0-9a-f]+)\]$/,
    title: () => 'AMD-Vi: IO_PAGE_FAULT',
    device: (m) => pciClient(m[1] ?? m[2]),
    address: (m) => m[3] ?? '',
  },
  {
    // "%#llx" prints address 0 as "0", without the 0x.
    re: /^virtio_iommu \S+: (\w+) fault from EP (\d+) at (0x[0-9a-f]+|0) \[([RWX]*)\]$/,
    title: (m) => `virtio-iommu: ${m[1]} fault${m[4] ? ` [${m[4]}]` : ''}`,
    device: (m) => endpointAsPci(m[2]),
    address: (m) => m[3] ?? '',
  },
  {
    re: /^virtio_iommu \S+: (\w+) fault from EP (\d+)$/,
    title: (m) => `virtio-iommu: ${m[1]} fault`,
    device: (m) => endpointAsPci(m[2]),
  },
];

export function findFaults(lines: LogLine[]): KernelReport[] {
  const reports: KernelReport[] = [];
  for (const [i, line] of lines.entries()) {
    for (const row of faultRows) {
      const text = row.span ? lines.slice(i, i + 2 + row.span).map((each) => each.text).join('\n') : line.text;
      const m = row.re.exec(text);
      if (!m) continue;
      const report: KernelReport = {
        kind: 'iommu-fault',
        title: row.title(m),
        corrupted: false,
        lines: text.split('\n').slice(0, 1 + (row.span ?? 0)),
        startLine: i,
        endLine: i + 1 + (row.span ?? 0),
        device: row.device(m),
      };
      const address = row.address?.(m);
      if (address) report.address = address;
      reports.push(report);
      break;
    }
  }
  return reports;
}

/** Functions whose rate-limited messages the oracle reads: "FUNC: N callbacks suppressed" means lost faults. */
export const faultPrinters = ['dmar_fault', 'viommu_fault_handler', 'arm_smmu_evtq_thread', 'arm_smmu_dump_event'];
