import test from 'ava';
import { qemuArgs, viommuTracePath } from '../../harness/machine/qemu-args.ts';
import { eduDevice, rootPort } from '../../harness/machine/topology.ts';
import { consoleTraceEvent, viommuTraceEvents } from '../../harness/oracle/viommu-trace.ts';

const spec = {
  accel: 'tcg' as const,
  kernel: '/k/bzImage',
  initrd: '/i/initramfs.gz',
  topology: { devices: [rootPort('rp1', 1), eduDevice('edu1', 'rp1')] },
  consoleLog: '/runs/t/virtio/console.log',
  qmpSocket: '/tmp/x/qmp.sock',
};

const traceOptions = (args: string[]) => args.filter((_, i) => args[i - 1] === '-trace');

test('each vIOMMU boot traces its own chosen events, one -trace each, into viommu-trace.log beside the console', (t) => {
  for (const iommu of ['virtio', 'intel'] as const) {
    const options = traceOptions(qemuArgs({ ...spec, iommu }));
    // A repeated key inside one -trace keeps only the last, so each event has its own option.
    t.deepEqual(options.slice(0, -1), viommuTraceEvents[iommu].map((event) => `enable=${event}`));
    t.is(options.at(-1), 'file=/runs/t/virtio/viommu-trace.log');
  }
  t.true(viommuTraceEvents.virtio.includes('virtio_iommu_detach'));
  t.true(viommuTraceEvents.intel.every((event) => event.startsWith('vtd_')));
  // The console's bytes are switched on by the runner once the guest is up, not traced through the boot.
  t.false(traceOptions(qemuArgs({ ...spec, iommu: 'virtio' })).includes(`enable=${consoleTraceEvent}`));
  t.is(viommuTracePath('/a/b/console.log'), '/a/b/viommu-trace.log');
});

test('a machine without a vIOMMU records no trace', (t) => {
  t.deepEqual(traceOptions(qemuArgs({ ...spec, iommu: 'none' })), []);
});
