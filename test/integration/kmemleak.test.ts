// The leakcheck profile: kmemleak built in, scanned after the scenarios. A
// profile is its own config and so its own build directory: the first run
// builds it (minutes), so these run in `npm run test:full`.
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { profileFragment } from '../../harness/build/index.ts';
import { runHarness } from '../../harness/run.ts';
import { silentProgress } from '../../harness/log.ts';
import { scenarioByName } from '../../scenarios/index.ts';

const full = process.env.IOMMU_HARNESS_FULL ? test.serial : test.serial.skip;
const patch = (name: string) => fileURLToPath(new URL(`../fixtures/patches/${name}`, import.meta.url));
const scenarios = [scenarioByName('vfio-bind-unbind')!];

full('a clean kernel with kmemleak reports no leaked object', async (t) => {
  t.timeout(40 * 60_000);
  const result = await runHarness({ patches: [], kconfigs: [await profileFragment('leakcheck')], iommus: ['intel'], scenarios, progress: silentProgress });
  const scan = result.runs.find((run) => run.scenario === 'kmemleak');
  t.truthy(scan, 'the kmemleak scan ran');
  t.deepEqual(scan?.reports.map((report) => report.title), []);
  t.is(result.verdict, 'pass');
});

full('a leaked allocation on device removal is reported by kmemleak as a memory leak', async (t) => {
  t.timeout(40 * 60_000);
  const result = await runHarness({
    patches: [patch('fault-group-device-name-leak.diff')],
    kconfigs: [await profileFragment('leakcheck')],
    iommus: ['intel'],
    scenarios,
    progress: silentProgress,
  });
  const scan = result.runs.find((run) => run.scenario === 'kmemleak');
  const leak = scan?.reports.find((report) => report.kind === 'kmemleak');
  t.truthy(leak, JSON.stringify(scan?.reports.map((report) => report.title)));
  t.regex(leak!.title, /^memory leak in /);
  // The leaked object is the device's sysfs link name: its BDF is in the hex dump.
  t.regex(leak!.text, /0000:01:00\.0/);
  t.is(result.verdict, 'fail');
});
