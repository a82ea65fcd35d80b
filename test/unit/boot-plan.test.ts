import test from 'ava';
import { guestNetworkStall, planBoots } from '../../harness/scenario/runner.ts';
import type { Scenario } from '../../harness/scenario/scenario.ts';

const scenario = (name: string, freshBoot?: string): Scenario => ({
  name,
  proves: name,
  iommus: ['intel', 'virtio'],
  topology: { devices: [] },
  ...(freshBoot ? { freshBoot } : {}),
  run: async () => undefined,
});
const shared = [scenario('a'), scenario('b')];
const native = scenario('native', 'spends lockdep');

test('scenarios that can share a boot share one per vIOMMU; a fresh-boot scenario gets its own', (t) => {
  t.deepEqual(planBoots(['intel', 'virtio'], [...shared, native]).map((plan) => [plan.id, plan.scenarios.map((s) => s.name), plan.cycle]), [
    ['intel', ['a', 'b'], undefined],
    ['intel-2', ['native'], undefined],
    ['virtio', ['a', 'b'], undefined],
    ['virtio-2', ['native'], undefined],
  ]);
});

test('with --cycles a fresh-boot scenario gets a boot per cycle; shared scenarios repeat in their one boot', (t) => {
  const plans = planBoots(['intel'], [...shared, native], 3);
  t.deepEqual(plans.map((plan) => [plan.id, plan.scenarios.map((s) => s.name), plan.cycle]), [
    ['intel', ['a', 'b'], undefined],
    ['intel-2', ['native'], 1],
    ['intel-3', ['native'], 2],
    ['intel-4', ['native'], 3],
  ]);
  t.deepEqual(planBoots(['virtio'], [native], 1).map((plan) => plan.cycle), [undefined]);
});

test('a guest whose NIC stalled says so in the error; a quiet console adds nothing', (t) => {
  const stalled = [
    '[  910.020318] vfio-pci 0000:02:00.0: Adding to iommu group 3',
    '[  922.140402] virtio_net virtio1 eth0: NETDEV WATCHDOG: CPU: 0: transmit queue 0 timed out 5392 ms',
    '[  922.141660] virtio_net virtio1 eth0: TX timeout on queue: 0, sq: output.0, vq: 0x1, name: output.0, 5392000 usecs ago',
  ].join('\n');
  t.regex(guestNetworkStall(stalled), /network had stopped: "NETDEV WATCHDOG: CPU: 0: transmit queue 0 timed out 5392 ms"; the harness's own NIC/);
  t.is(guestNetworkStall('[    1.0] iommu: Releasing group 3\n'), '');
});
