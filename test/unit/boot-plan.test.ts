import test from 'ava';
import { planBoots } from '../../harness/scenario/runner.ts';
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
