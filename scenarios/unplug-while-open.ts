import { eduDevice, rootPort } from '../harness/machine/topology.ts';
import type { Scenario } from '../harness/scenario/scenario.ts';

const holdMs = 4000;

/**
 * Unplug requested while userspace holds the device through VFIO: removal
 * must wait for the fd to close, then finish without a leak or a hang.
 */
export const unplugWhileOpen: Scenario = {
  name: 'unplug-while-open',
  proves: 'device_del while a VFIO fd is open completes once the fd is closed, and the group is released with no leak or hang',
  iommus: ['intel', 'virtio', 'smmuv3', 'amd'],
  freshBootOn: { smmuv3: "virt's hotplug is native only: on 6.12 and 7.2 its first native hot-remove (VFIO resets the device through its pciehp slot when the fd closes, an upstream lock order the removal then closes) prints pciehp's upstream lockdep report, which turns lock checking off for the rest of the boot" },
  topology: { devices: [rootPort('rp-busy', 7), eduDevice('edu-busy', 'rp-busy')] },
  async run(guest) {
    await guest.mark('open');
    // Present from boot; unplugged by each cycle, so later cycles plug it in again.
    await guest.replug('edu', 'edu-busy', 'rp-busy');
    const bdf = await guest.bdfOf('edu-busy');
    await guest.bind(bdf, 'vfio-pci');
    const started = Date.now();
    const hold = await guest.vfioHold(bdf, holdMs);
    // A release that deadlocks with the removal times the helper out while the
    // unplug still waits: handled here so the run goes on, judged below.
    hold.done.catch(() => undefined);
    await guest.mark('unplug');
    await guest.unplug('edu-busy', 60_000);
    guest.check(Date.now() - started >= holdMs - 500, `the unplug to wait for the VFIO fd (${holdMs} ms hold)`);
    const helper = await hold.done;
    guest.check(helper.exitCode === 0, `the VFIO user to finish cleanly (exit ${helper.exitCode}: ${helper.stderr.trim()})`);
  },
};
