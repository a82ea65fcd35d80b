import { eduDevice, rootPort } from '../harness/machine/topology.ts';
import type { Scenario } from '../harness/scenario/scenario.ts';

/** The longest the VFIO user waits for the kernel to ask for the device back. */
const holdMs = 30_000;

/**
 * Unplug requested while userspace holds the device through VFIO: removal
 * must wait for the fd to close, then finish without a leak or a hang. The
 * user holds the device until the kernel asks for it back (the VFIO device
 * request IRQ, which vfio-pci raises only from a removal that waits for the
 * open fd), then lets go as QEMU would: proof that the removal waited, with
 * the hold as short as the kernel allows (a fixed 4 s hold before).
 */
export const unplugWhileOpen: Scenario = {
  name: 'unplug-while-open',
  proves: 'device_del while a VFIO fd is open waits for it (the kernel asks the user for the device back), completes once the fd is closed, and the group is released with no leak or hang',
  iommus: ['intel', 'virtio', 'smmuv3', 'amd'],
  freshBootOn: { smmuv3: "virt's hotplug is native only: on 6.12 and 7.2 its first native hot-remove (VFIO resets the device through its pciehp slot when the fd closes, an upstream lock order the removal then closes) prints pciehp's upstream lockdep report, which turns lock checking off for the rest of the boot" },
  topology: { devices: [rootPort('rp-busy', 7), eduDevice('edu-busy', 'rp-busy')] },
  async run(guest) {
    await guest.mark('open');
    // Present from boot; unplugged by each cycle, so later cycles plug it in again.
    await guest.replug('edu', 'edu-busy', 'rp-busy');
    const bdf = await guest.bdfOf('edu-busy');
    await guest.bind(bdf, 'vfio-pci');
    const hold = await guest.vfioHold(bdf, holdMs, { untilRequest: true });
    // A release that deadlocks with the removal times the helper out while the
    // unplug still waits: handled here so the run goes on, judged below.
    hold.done.catch(() => undefined);
    await guest.mark('unplug');
    await guest.unplug('edu-busy', 60_000);
    const helper = await hold.done;
    guest.check(/^request=yes /m.test(helper.stdout), `the removal to wait for the open VFIO fd and ask its user for the device back (${helper.stderr.trim() || 'no request'})`);
    guest.check(helper.exitCode === 0, `the VFIO user to finish cleanly (exit ${helper.exitCode}: ${helper.stderr.trim()})`);
  },
};
