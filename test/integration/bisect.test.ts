// Bisects over histories made for the purpose, on the default Debian tree.
//
// The histories are commits INSIDE the cache's Debian source repository, under
// refs/iommu-harness-test/<run>/..., made with git plumbing (hash-object,
// update-index on a private index, commit-tree), so no checkout is touched and
// the bisect uses the same harness worktree and build directory as every
// other run of the default tree: each step is an incremental build. A
// temporary clone would get a worktree and build directory of its own, and
// its first build would be a cold one (7 to 10 minutes on 2 cores).
// Commit dates make the commits new on every test run, so the builds really
// happen; teardown deletes the refs and the kernels built for these commits.
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { bisectKernel, type BisectResult } from '../../harness/bisect/bisect.ts';
import { cacheLayout } from '../../harness/cache.ts';
import { createProgress, silentProgress } from '../../harness/log.ts';
import { ensureDebianSource } from '../../harness/source/debian-source.ts';
import { scenarioByName } from '../../scenarios/index.ts';

const full = process.env.IOMMU_HARNESS_FULL ? test.serial : test.serial.skip;
const cli = fileURLToPath(new URL('../../bin/iommu-harness.js', import.meta.url));
const progress = process.env.CI ? createProgress(process.stderr) : silentProgress;
const layout = cacheLayout();
const file = 'drivers/iommu/iommu.c';
const edu = '0000:01:00.0';
const runId = `${Date.now()}-${process.pid}`;

/** A change to iommu.c: a function from the file's text to the new text. */
type Edit = (text: string) => string;

function replaceOnce(text: string, from: string, to: string): string {
  const at = text.indexOf(from);
  if (at < 0 || text.indexOf(from, at + 1) >= 0) throw new Error(`expected exactly one "${from.split('\n')[0]}" in ${file}`);
  return text.slice(0, at) + to + text.slice(at + from.length);
}

// Harmless: comments in the same file the leak is in, before functions the scenarios run through.
const anchors = ['static void iommu_release_device(struct device *dev)\n{', 'static int __init iommu_subsys_init(void)\n', 'int iommu_map(struct iommu_domain *domain, unsigned long iova,\n'];
const harmless =
  (n: number): Edit =>
  (text) => {
    const anchor = anchors[n % anchors.length]!;
    return replaceOnce(text, anchor, `/* iommu-harness bisect test: harmless change ${n} */\n${anchor}`);
  };

// The same change as test/fixtures/patches/fault-group-ref-leak.patch.
const leak: Edit = (text) =>
  replaceOnce(
    text,
    '\t/*\n\t * Pairs with the get in iommu_init_device() or\n\t * iommu_group_add_device()\n\t */\n\tiommu_group_put(group);\n}',
    '\t/*\n\t * FAULT INJECTED by iommu-harness: the reference taken in\n\t * iommu_init_device() or iommu_group_add_device() is never dropped,\n\t * so the group outlives its last device.\n\t */\n}',
  );

// A WARNING on every first DMA mapping: unrelated to groups, hit at boot or in the scenario.
const iommuMapStart = 'phys_addr_t paddr, size_t size, int prot, gfp_t gfp)\n{\n\tconst struct iommu_domain_ops *ops = domain->ops;\n\tint ret;\n\n\tmight_sleep_if(gfpflags_allow_blocking(gfp));\n';
const unrelatedWarn: Edit = (text) => replaceOnce(text, iommuMapStart, `${iommuMapStart}\tWARN_ON_ONCE(1); /* iommu-harness bisect test: unrelated warning */\n`);

const brokenLine = 'int iommu_harness_bisect_test_broken(void) { return }\n';
const breakBuild: Edit = (text) => replaceOnce(text, 'static int __init iommu_subsys_init(void)\n', `${brokenLine}static int __init iommu_subsys_init(void)\n`);
const fixBuild: Edit = (text) => replaceOnce(text, brokenLine, '');

interface Planned {
  subject: string;
  edit: Edit;
}

interface History {
  base: string;
  commits: { commit: string; subject: string }[];
  ref: string;
}

async function gitIn(repo: string, args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<string> {
  const result = await execa('git', ['-C', repo, ...args], {
    ...(options.input !== undefined ? { input: options.input } : {}),
    env: { GIT_AUTHOR_NAME: 'iommu-harness test', GIT_AUTHOR_EMAIL: 'test@localhost', GIT_COMMITTER_NAME: 'iommu-harness test', GIT_COMMITTER_EMAIL: 'test@localhost', ...options.env },
    stripFinalNewline: false,
  });
  return result.stdout;
}

/** Commits `plan` on top of the Debian source's HEAD, one edit of iommu.c each, without a checkout. */
async function makeHistory(t: ExecutionContext, name: string, plan: Planned[]): Promise<History & { repo: string }> {
  const repo = await ensureDebianSource(layout, '6.12', progress);
  const base = (await gitIn(repo, ['rev-parse', 'HEAD'])).trim();
  const index = path.join(layout.root, `test-index-${runId}-${name}`);
  const env = { GIT_INDEX_FILE: index };
  const ref = `refs/iommu-harness-test/${runId}/${name}`;
  t.teardown(async () => {
    await rm(index, { force: true });
    await execa('git', ['-C', repo, 'update-ref', '-d', ref], { reject: false });
  });
  await gitIn(repo, ['read-tree', base], { env });
  let text = await gitIn(repo, ['show', `${base}:${file}`]);
  let parent = base;
  const commits: History['commits'] = [];
  for (const [n, planned] of plan.entries()) {
    text = planned.edit(text);
    const blob = (await gitIn(repo, ['hash-object', '-w', '--stdin'], { input: text })).trim();
    await gitIn(repo, ['update-index', '--cacheinfo', `100644,${blob},${file}`], { env });
    const tree = (await gitIn(repo, ['write-tree'], { env })).trim();
    // The run id in the first message makes every test run's commits new.
    const message = n === 0 ? `${planned.subject}\n\nbisect test history ${name}, run ${runId}\n` : `${planned.subject}\n`;
    parent = (await gitIn(repo, ['commit-tree', tree, '-p', parent], { input: message })).trim();
    commits.push({ commit: parent, subject: planned.subject });
  }
  await gitIn(repo, ['update-ref', ref, parent]);
  return { repo, base, commits, ref };
}

/** Removes the kernels built for this run's commits (unique to it); the good end's is shared, so kept. */
function dropKernels(t: ExecutionContext, result: () => BisectResult | undefined) {
  t.teardown(async () => {
    for (const step of result()?.steps ?? []) {
      if (step.role !== 'good end' && step.kernelKey) await rm(path.join(layout.kernels, step.kernelKey), { recursive: true, force: true });
    }
  });
}

const vfioBindUnbind = scenarioByName('vfio-bind-unbind')!;

async function bisectHistory(t: ExecutionContext, history: History): Promise<BisectResult> {
  const result = await bisectKernel({
    good: history.base,
    bad: history.commits.at(-1)!.commit,
    patches: [],
    kconfigs: [],
    iommus: ['intel'],
    scenarios: [vfioBindUnbind],
    runs: 1,
    progress,
    layout,
    onStep: (step) =>
      t.log(`${step.role.padEnd(8)} ${step.commit.slice(0, 12)} ${step.subject.padEnd(34)} build ${String(step.buildSeconds).padStart(5)} s (${step.build}) step ${String(step.totalSeconds).padStart(5)} s  ${step.verdict}: ${step.reason}`),
  });
  const steps = result.steps.filter((step) => step.role === 'step');
  const built = steps.filter((step) => step.build === 'built');
  const average = (values: number[]) => (values.length ? values.reduce((a, b) => a + b, 0) / values.length : 0);
  t.log(
    `${result.builds} build(s) in ${result.steps.length} judged commit(s); per step after the ends: build ${average(built.map((s) => s.buildSeconds)).toFixed(0)} s, whole step ${average(steps.map((s) => s.totalSeconds)).toFixed(0)} s; bisect ${result.totalSeconds.toFixed(0)} s`,
  );
  return result;
}

/** Every judged commit's verdict is what the history says it should be. */
function verdictsFollowHistory(t: ExecutionContext, history: History, result: BisectResult, culprit: number, skipped: number[] = []) {
  const position = new Map(history.commits.map((entry, index) => [entry.commit, index]));
  for (const step of result.steps) {
    const index = step.commit === history.base ? -1 : position.get(step.commit)!;
    const expected = skipped.includes(index) ? 'skip' : index >= culprit ? 'bad' : 'good';
    t.is(step.verdict, expected, `${step.commit.slice(0, 12)} ${step.subject}: ${step.reason}`);
  }
}

/** After the ends, a step costs an incremental build: far below a cold one (7 to 10 minutes here). */
function stepsAreIncremental(t: ExecutionContext, result: BisectResult) {
  for (const step of result.steps.filter((candidate) => candidate.role === 'step' && candidate.build === 'built')) {
    t.true(step.buildSeconds < 300, `${step.commit.slice(0, 12)} took ${step.buildSeconds} s to build: not incremental`);
  }
}

function commonChecks(t: ExecutionContext, history: History, result: BisectResult, culprit: number) {
  t.deepEqual(result.culprit, history.commits[culprit], JSON.stringify(result.candidates));
  t.deepEqual(result.signature, { kind: 'leak', scenario: 'vfio-bind-unbind', step: 'vfio-bind-unbind/remove', device: edu });
  t.deepEqual(
    result.steps.slice(0, 2).map((step) => step.role),
    ['bad end', 'good end'],
  );
  t.true(result.steps.filter((step) => step.role === 'step').length <= 4, 'about log2(8) steps');
  const evidence = result.evidence.join('\n');
  t.regex(evidence, /LEAK: iommu group \d+ \(0000:01:00\.0\) never released after vfio-bind-unbind\/remove/);
  t.regex(evidence, /device-gone 0000:01:00\.0/);
  t.regex(evidence, /Adding to iommu group \d+/);
  stepsAreIncremental(t, result);
}

full('bisect names the commit that drops the group reference among harmless changes to the same file', async (t) => {
  t.timeout(25 * 60_000);
  let result: BisectResult | undefined;
  dropKernels(t, () => result);
  const history = await makeHistory(t, 'leak', [
    { subject: 'iommu: harmless change 1', edit: harmless(1) },
    { subject: 'iommu: harmless change 2', edit: harmless(2) },
    { subject: 'iommu: harmless change 3', edit: harmless(3) },
    { subject: 'iommu: harmless change 4', edit: harmless(4) },
    { subject: 'iommu: harmless change 5', edit: harmless(5) },
    { subject: 'iommu: drop the group reference', edit: leak },
    { subject: 'iommu: harmless change 7', edit: harmless(7) },
    { subject: 'iommu: harmless change 8', edit: harmless(8) },
  ]);
  result = await bisectHistory(t, history);
  commonChecks(t, history, result, 5);
  verdictsFollowHistory(t, history, result, 5);
});

full('an unrelated WARNING earlier in the range does not move the culprit off the leak', async (t) => {
  t.timeout(25 * 60_000);
  let result: BisectResult | undefined;
  dropKernels(t, () => result);
  const history = await makeHistory(t, 'warn', [
    { subject: 'iommu: harmless change 1', edit: harmless(1) },
    { subject: 'iommu: warn on every first map', edit: unrelatedWarn },
    { subject: 'iommu: harmless change 3', edit: harmless(3) },
    { subject: 'iommu: harmless change 4', edit: harmless(4) },
    { subject: 'iommu: harmless change 5', edit: harmless(5) },
    { subject: 'iommu: drop the group reference', edit: leak },
    { subject: 'iommu: harmless change 7', edit: harmless(7) },
    { subject: 'iommu: harmless change 8', edit: harmless(8) },
  ]);
  result = await bisectHistory(t, history);
  commonChecks(t, history, result, 5);
  verdictsFollowHistory(t, history, result, 5);
  // A bisect on "any failure" would have called these bad and named the WARNING's commit.
  const warnedButGood = result.steps.filter((step) => step.verdict === 'good' && /WARNING in iommu_map/.test(step.reason));
  t.true(warnedButGood.length > 0, 'some step between the WARNING and the leak was judged good despite the WARNING');
});

full('a commit that does not build is skipped and the culprit still found; check answers git bisect run', async (t) => {
  t.timeout(25 * 60_000);
  let result: BisectResult | undefined;
  dropKernels(t, () => result);
  const history = await makeHistory(t, 'broken', [
    { subject: 'iommu: harmless change 1', edit: harmless(1) },
    { subject: 'iommu: harmless change 2', edit: harmless(2) },
    { subject: 'iommu: harmless change 3', edit: harmless(3) },
    { subject: 'iommu: a change that does not build', edit: breakBuild },
    { subject: 'iommu: fix the build', edit: fixBuild },
    { subject: 'iommu: drop the group reference', edit: leak },
    { subject: 'iommu: harmless change 7', edit: harmless(7) },
    { subject: 'iommu: harmless change 8', edit: harmless(8) },
  ]);
  result = await bisectHistory(t, history);
  commonChecks(t, history, result, 5);
  verdictsFollowHistory(t, history, result, 5, [3]);
  const broken = result.steps.find((step) => step.commit === history.commits[3]!.commit);
  t.truthy(broken, 'the bisect stepped on the commit that does not build');
  t.is(broken?.build, 'failed');
  t.regex(broken?.reason ?? '', /build error/);

  // The same judgements through `check`, as `git bisect run` would call it (the bad end's kernel is cached).
  const check = (ref: string, ...extra: string[]) =>
    execa('node', [cli, 'check', '--src', history.repo, '--ref', ref, '--iommu', 'intel', '--scenario', 'vfio-bind-unbind', '--quiet', ...extra], { reject: false });
  const bad = await check(history.commits.at(-1)!.commit, '--expect', result.expect);
  t.is(bad.exitCode, 1, bad.stderr);
  t.regex(bad.stdout, /check: BAD/);
  const otherExpected = await check(history.commits.at(-1)!.commit, '--expect', 'WARNING in iommu_group_release');
  t.is(otherExpected.exitCode, 0, `${otherExpected.stdout}\n${otherExpected.stderr}`);
  const unbuildable = await check(history.commits[3]!.commit, '--expect', result.expect);
  t.is(unbuildable.exitCode, 125, unbuildable.stderr);
});
