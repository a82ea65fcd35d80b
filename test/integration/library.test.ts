// The library as a kernel developer uses it in an ava test of their own, with
// no CLI: a scenario written inline, a machine with the topology it wants,
// assertions on the findings. docs/scenarios.md shows this file's first test.
import test from 'ava';
import { eduDevice, rootPort, runHarness, silentProgress, type Scenario } from '../../harness/index.ts';

const myScenario: Scenario = {
  name: 'my-edu-remove',
  proves: 'an edu device removed after VFIO use releases its group',
  iommus: ['intel'],
  topology: { devices: [rootPort('rp', 1), eduDevice('edu', 'rp')] },
  async run(guest) {
    await guest.mark('use');
    const bdf = await guest.bdfOf('edu');
    await guest.bind(bdf, 'vfio-pci');
    await guest.vfioIommufd(bdf, { dma: true });
    await guest.unbind(bdf);
    await guest.mark('remove');
    await guest.remove(bdf);
  },
};

test('a scenario written against the library runs on a cached kernel and reports no leak', async (t) => {
  t.timeout(30 * 60_000);
  const result = await runHarness({ patches: [], kconfigs: [], iommus: ['intel'], scenarios: [myScenario], progress: silentProgress });
  const [findings] = result.runs.filter((run) => run.scenario === 'my-edu-remove');
  t.deepEqual(findings?.leaks, []);
  t.deepEqual(findings?.reports, []);
  t.true(findings?.groups.some((group) => group.released));
  t.is(findings?.verdict, 'pass');
});
