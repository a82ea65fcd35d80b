// The plan file: defaults, relative paths, and errors that name the field.
import test from 'ava';
import { everyScenario, scenarios as defaultScenarios } from '../../scenarios/index.ts';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { cellsOf, expandMatrix, parseShard, selectShard } from '../../harness/nightly/matrix.ts';
import { parsePlan, PlanError, type Plan } from '../../harness/nightly/plan.ts';
import { builtinProfiles } from '../../harness/build/index.ts';

const context = {
  baseDir: '/plans',
  scenarios: ['vfio-bind-unbind', 'pci-hotplug', 'remove-rescan'],
  builtinProfiles: { lockdep: '/k/lockdep.config', leakcheck: '/k/leakcheck.config', kasan: '/k/kasan.config' },
};
const parse = (value: unknown) => parsePlan(JSON.stringify(value), 'plan.json', context);
const problems = (value: unknown) => {
  try {
    parse(value);
  } catch (caught) {
    if (caught instanceof PlanError) return caught.problems;
    throw caught;
  }
  return [];
};

test('an empty plan is the default kernel, lockdep, both vIOMMUs, every scenario, once', (t) => {
  const plan = parse({});
  t.deepEqual(plan.kernels, [{ name: 'default', patches: [] }]);
  t.deepEqual(plan.profiles, [{ name: 'lockdep', kconfigs: ['/k/lockdep.config'] }]);
  t.deepEqual(plan.iommus, ['intel', 'virtio']);
  t.deepEqual(plan.scenarios, context.scenarios);
  t.is(plan.cycles, 1);
  t.deepEqual(plan.timeouts, { runMinutes: 15, overallMinutes: 480 });
});

test('"all" inside a list stands for the default selection, beside the scenarios that run only when named', (t) => {
  const plan = parsePlan(JSON.stringify({ scenarios: ['all', 'selftest-iommufd'] }), 'p.json', { ...context, scenarios: [...context.scenarios, 'selftest-iommufd'], defaultScenarios: context.scenarios });
  t.deepEqual(plan.scenarios, [...context.scenarios, 'selftest-iommufd']);
  const alone = parsePlan(JSON.stringify({}), 'p.json', { ...context, scenarios: [...context.scenarios, 'selftest-iommufd'], defaultScenarios: context.scenarios });
  t.deepEqual(alone.scenarios, context.scenarios);
});

test('paths are relative to the plan file; kernel names are derived from the tree and ref', (t) => {
  const plan = parse({
    kernels: [{ src: '../linux', ref: 'v6.12', patches: ['p/0001.patch'] }, { name: 'mine', patches: ['/abs.diff'] }],
    profiles: ['kasan', { name: 'extra', kconfigs: ['frag.config'] }],
    knownIssues: 'known.txt',
  });
  t.deepEqual(plan.kernels[0], { name: 'linux-v6-12', src: '/linux', ref: 'v6.12', patches: ['/plans/p/0001.patch'] });
  t.deepEqual(plan.kernels[1], { name: 'mine', patches: ['/abs.diff'] });
  t.deepEqual(plan.profiles[1], { name: 'extra', kconfigs: ['/plans/frag.config'] });
  t.is(plan.knownIssues, '/plans/known.txt');
});

test('schema errors name the field', (t) => {
  const found = problems({ kernels: [{ src: '/l', patches: [1] }], iommus: ['riscv'], cycles: 0, timeouts: { runMinutes: -1 }, extra: true });
  t.true(found.some((p) => p.startsWith('kernels[0].patches[0]:')), found.join('\n'));
  t.true(found.some((p) => p.startsWith('iommus[0]:')), found.join('\n'));
  t.true(found.some((p) => p.startsWith('cycles:')), found.join('\n'));
  t.true(found.some((p) => p.startsWith('timeouts.runMinutes:')), found.join('\n'));
  t.true(found.some((p) => p.includes('extra')), found.join('\n'));
});

test('meaning errors name the field too: unknown profile and scenario, a ref without a tree, duplicate names', (t) => {
  const found = problems({
    kernels: [{ ref: 'v1' }, { name: 'twice', src: '/y' }, { name: 'twice', src: '/z' }],
    profiles: ['lockdep', 'nope'],
    scenarios: ['pci-hotplug', 'zzz'],
  });
  t.true(found.includes('kernels[0].ref: needs kernels[0].src (the default source has one commit)'), found.join('\n'));
  t.true(found.includes('kernels: name "twice" appears twice'), found.join('\n'));
  t.true(found.some((p) => p.startsWith('profiles[1]: unknown profile "nope"')), found.join('\n'));
  t.true(found.some((p) => p.startsWith('scenarios[1]: unknown scenario "zzz"')), found.join('\n'));
});

test('a name that cannot be a file name or a JUnit class part is refused', (t) => {
  const found = problems({ kernels: [{ name: 'a.b' }] });
  t.true(found.some((p) => p.startsWith('kernels[0].name:')), found.join('\n'));
});

test('not JSON is said so', (t) => {
  const error = t.throws(() => parsePlan('{kernels:', 'p.json', context), { instanceOf: PlanError });
  t.regex(error!.message, /^p\.json: not JSON/);
});

test('the example plan in the repository is valid, and every built-in profile it names exists', async (t) => {
  const file = fileURLToPath(new URL('../../scenarios/nightly-plan.example.json', import.meta.url));
  const profiles = await builtinProfiles();
  t.truthy(profiles.lockdep && profiles.leakcheck && profiles.kasan);
  const plan = parsePlan(await readFile(file, 'utf8'), file, {
    ...context,
    scenarios: everyScenario.map((scenario) => scenario.name),
    defaultScenarios: defaultScenarios.map((scenario) => scenario.name),
    builtinProfiles: profiles,
  });
  // The kernel's own test suites beside the default selection.
  t.true(plan.scenarios.includes('selftest-iommufd') && plan.scenarios.includes('kunit-iommu') && plan.scenarios.includes('vfio-bind-unbind'));
  t.deepEqual(plan.profiles.map((p) => p.name), ['lockdep', 'leakcheck', 'kasan']);
  // Mainline beside both Debian releases: what developers patch, and what Debian ships.
  t.deepEqual(plan.kernels.map((kernel) => kernel.src ?? 'debian:6.12'), ['debian:7.2', 'debian:6.12', 'debian:6.1']);
});

const plan = (over: Partial<Plan> = {}): Plan => ({ ...parse({}), ...over });
const iommusOf = { 'vfio-bind-unbind': ['intel', 'virtio'], 'pci-hotplug': ['intel', 'virtio'], 'remove-rescan': ['intel'] } as const;

test('the matrix is kernel x profile x vIOMMU x scenario x cycle, in plan order, skipping scenarios a vIOMMU cannot run', (t) => {
  const units = expandMatrix(plan({ profiles: [{ name: 'lockdep', kconfigs: [] }, { name: 'kasan', kconfigs: [] }], cycles: 2 }), iommusOf);
  t.is(units.length, 2 * (3 + 2) * 2);
  t.deepEqual(units.slice(0, 3).map((u) => u.unit), ['default.lockdep.intel.vfio-bind-unbind.c1', 'default.lockdep.intel.vfio-bind-unbind.c2', 'default.lockdep.intel.pci-hotplug.c1']);
  t.false(units.some((u) => u.iommu === 'virtio' && u.scenario === 'remove-rescan'));
  t.is(cellsOf(units).length, 10);
  t.is(cellsOf(units)[0]!.id, 'default.lockdep.intel.vfio-bind-unbind');
});

test('shards are contiguous, near-equal, deterministic, and cover the matrix exactly once', (t) => {
  const units = expandMatrix(plan({ cycles: 3 }), iommusOf);
  for (const count of [1, 2, 3, 4, 7, units.length, units.length + 3]) {
    const slices = Array.from({ length: count }, (_, i) => selectShard(units, { index: i + 1, count }));
    t.deepEqual(slices.flat(), units, `N=${count}`);
    const sizes = slices.map((slice) => slice.length);
    t.true(Math.max(...sizes) - Math.min(...sizes) <= 1, `N=${count}: ${sizes.join(',')}`);
    t.deepEqual(selectShard(units, { index: 1, count }), slices[0]);
  }
});

test('--shard is I/N with 1 <= I <= N', (t) => {
  t.deepEqual(parseShard('2/3'), { index: 2, count: 3 });
  for (const bad of ['0/2', '3/2', '1/0', '1', 'a/b', '1/2/3']) t.throws(() => parseShard(bad), { message: /--shard/ }, bad);
});
