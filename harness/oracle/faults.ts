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
//   drivers/iommu/virtio-iommu.c viommu_fault_handler() (dev_err_ratelimited on the virtio device, same in 7.2):
//     virtio_iommu virtio0: page fault from EP 256 at 0x40000 [R]
//     virtio_iommu virtio0: domain fault from EP 256
import type { LogLine } from './lines.ts';
import type { KernelReport } from './types.ts';

interface FaultRow {
  re: RegExp;
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

const faultRows: FaultRow[] = [
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
      const m = row.re.exec(line.text);
      if (!m) continue;
      const report: KernelReport = {
        kind: 'iommu-fault',
        title: row.title(m),
        corrupted: false,
        lines: [line.text],
        startLine: i,
        endLine: i + 1,
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
export const faultPrinters = ['dmar_fault', 'viommu_fault_handler'];
