// Every exit-code class through the real CLI (node bin/iommu-harness.js),
// without a kernel build: a bad option, an unusable cache, a "kernel tree"
// whose make runs out of disk, fails to compile, or succeeds without leaving
// a kernel. Each run has a cache of its own in a temp folder.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { cli } from './helpers.ts';

interface Sandbox {
  root: string;
  cache: string;
  /** A git tree whose Makefile plays a kernel; tags name its behaviours. */
  tree: string;
}

const makefiles = {
  // make runs out of disk while compiling.
  enospc: 'tinyconfig:\n\t@echo "cc1: fatal error: cannot write scripts/kconfig/conf.o: No space left on device" >&2\n\t@exit 2\n',
  // The commit's own code does not compile.
  'compile-error': 'tinyconfig:\n\t@echo "scripts/kconfig/conf.c:3:1: error: expected identifier before \'}\' token" >&2\n\t@exit 2\n',
  // Every step "succeeds" but no kernel comes out: what follows trips on a missing file, an error nobody foresaw.
  'no-kernel': 'tinyconfig:\n\t@touch $(O)/.config\nolddefconfig bzImage:\n\t@true\n',
} as const;

async function sandbox(t: { teardown: (fn: () => Promise<void>) => void }): Promise<Sandbox> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'cli-failures-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const tree = path.join(root, 'tree');
  await mkdir(tree);
  const git = (args: string[]) => execa('git', ['-C', tree, '-c', 'user.name=t', '-c', 'user.email=t@x', ...args]);
  await git(['init', '-q']);
  for (const [tag, makefile] of Object.entries(makefiles)) {
    await writeFile(path.join(tree, 'Makefile'), makefile);
    await git(['add', 'Makefile']);
    await git(['commit', '-q', '--allow-empty', '-m', tag]);
    await git(['tag', tag]);
  }
  return { root, cache: path.join(root, 'cache'), tree };
}

async function harness(box: Sandbox, args: string[], env: Record<string, string> = {}) {
  const result = await execa('node', [cli, ...args], {
    reject: false,
    cwd: box.root,
    env: { IOMMU_HARNESS_CACHE: box.cache, IOMMU_HARNESS_DEBUG: '', ...env },
    timeout: 5 * 60_000,
  });
  return { code: result.exitCode, stdout: result.stdout, stderr: result.stderr };
}

const noStack = /^\s+at /m;
const runArgs = ['--iommu', 'intel', '--scenario', 'vfio-bind-unbind', '--quiet'];

test('exit 2: a bad option, a duplicate vIOMMU, an unknown scenario or profile, a mismatch, a missing --json folder, a --src that is not git', async (t) => {
  const box = await sandbox(t);
  const badPlan = path.join(box.root, 'bad-plan.json');
  await writeFile(badPlan, JSON.stringify({ kernels: [{ name: 'mine', src: box.root }], iommus: ['intel'] }));
  const cases: [string[], RegExp][] = [
    [['run', '--no-such-option'], /unknown option '--no-such-option'/],
    [['run', '--iommu', 'intel,intel'], /"intel" is listed twice/],
    [['run', '--scenario', 'vfio-bind-unbnd'], /unknown scenario "vfio-bind-unbnd"/],
    [['run', '--profile', 'kasn'], /unknown profile "kasn"/],
    [['run', '--iommu', 'none', '--scenario', 'bridge-group'], /no selected scenario runs on --iommu none \(bridge-group runs on intel\)/],
    [['run', ...runArgs, '--json', path.join(box.root, 'missing', 'out.json')], /--json .*missing\/out\.json: folder .*missing does not exist/],
    [['run', ...runArgs, '--src', box.root], /--src .* is not a git tree/],
    [['bisect', '--src', box.tree, '--good', 'enospc', '--bad', 'v9', '--iommu', 'intel'], /--bad v9 is not a commit in/],
    [['nightly', '--plan', path.join(box.root, 'no-plan.json')], /cannot read plan/],
    [['nightly', '--plan', badPlan, '--out', path.join(box.root, 'night')], /invalid plan .*bad-plan\.json: kernels\[0\]\.src: .* is not a git tree/],
  ];
  for (const [args, message] of cases) {
    const result = await harness(box, args);
    t.is(result.code, 2, `${args.join(' ')}\n${result.stderr}`);
    t.regex(result.stderr, message, args.join(' '));
    t.notRegex(result.stderr, noStack, args.join(' '));
  }
  // Nothing was built or unpacked for any of them.
  t.false(existsSync(path.join(box.cache, 'kernels')));
  t.false(existsSync(path.join(box.root, 'night')));
});

test('a file where the cache should be: run exits 3 in one line, check 128 (git bisect stops), nothing crashes', async (t) => {
  const box = await sandbox(t);
  await writeFile(box.cache, 'not a folder');
  const run = await harness(box, ['run', ...runArgs]);
  t.is(run.code, 3, run.stderr);
  t.regex(run.stderr, /^iommu-harness: host error: the cache .* is not usable: mkdir .*: already exists \(EEXIST\)/m);
  t.notRegex(run.stderr, noStack);
  const check = await harness(box, ['check', '--src', box.tree, '--ref', 'enospc', ...runArgs]);
  t.is(check.code, 128, check.stderr);
  t.regex(check.stderr, /host error: the cache/);
  t.regex(check.stderr, /git bisect run stops here/);
});

test('a read-only cache (a read-only bind mount, in a mount namespace of its own): run exits 3, check 128', async (t) => {
  const box = await sandbox(t);
  await mkdir(box.cache);
  const readOnly = async (args: string[]) => {
    // The mount exists only inside this namespace; nothing outside sees it.
    const script = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"';
    const result = await execa('unshare', ['-m', 'sh', '-c', script, box.cache, 'node', cli, ...args], {
      reject: false,
      cwd: box.root,
      env: { IOMMU_HARNESS_CACHE: box.cache, IOMMU_HARNESS_DEBUG: '' },
      timeout: 5 * 60_000,
    });
    return { code: result.exitCode, stderr: result.stderr };
  };
  const run = await readOnly(['run', ...runArgs]);
  t.is(run.code, 3, run.stderr);
  t.regex(run.stderr, /^iommu-harness: host error: the cache .* is not usable: .*read-only file system \(EROFS\)/m);
  t.notRegex(run.stderr, noStack);
  const check = await readOnly(['check', '--src', box.tree, '--ref', 'enospc', ...runArgs]);
  t.is(check.code, 128, check.stderr);
});

test('check: a bad option is 128, not 2 (which git bisect run would take for "bad")', async (t) => {
  const box = await sandbox(t);
  const result = await harness(box, ['check', '--src', box.tree, '--iommu', 'intel,intel']);
  t.is(result.code, 128, result.stderr);
  const outside = await harness(box, ['check', ...runArgs]);
  t.is(outside.code, 128, outside.stderr);
  t.regex(outside.stderr, /is not in a git tree/);
});

test('make out of disk: run exits 3 naming the disk and the build log; check 128, not 125 (a bisect on a full disk must stop)', async (t) => {
  const box = await sandbox(t);
  const run = await harness(box, ['run', '--src', box.tree, '--ref', 'enospc', ...runArgs]);
  t.is(run.code, 3, run.stderr);
  t.regex(run.stderr, /^iommu-harness: host error: make tinyconfig failed: no space left on device$/m);
  const log = /^ {2}log: (.+)$/m.exec(run.stderr)?.[1];
  t.truthy(log, run.stderr);
  t.regex(await readFile(log!, 'utf8'), /No space left on device/);
  const check = await harness(box, ['check', '--src', box.tree, '--ref', 'enospc', ...runArgs]);
  t.is(check.code, 128, check.stderr);
});

test('a commit that does not compile: check skips it (125), run says build error (3)', async (t) => {
  const box = await sandbox(t);
  const check = await harness(box, ['check', '--src', box.tree, '--ref', 'compile-error', ...runArgs]);
  t.is(check.code, 125, `${check.stdout}\n${check.stderr}`);
  const run = await harness(box, ['run', '--src', box.tree, '--ref', 'compile-error', ...runArgs]);
  t.is(run.code, 3, run.stderr);
  t.regex(run.stderr, /^iommu-harness: build error: make tinyconfig failed: scripts\/kconfig\/conf\.c:3:1: error/m);
});

test('an unexpected error: run exits 3 with one line (the stack only with --debug or IOMMU_HARNESS_DEBUG=1); check 128', async (t) => {
  const box = await sandbox(t);
  const run = await harness(box, ['run', '--src', box.tree, '--ref', 'no-kernel', ...runArgs]);
  t.is(run.code, 3, run.stderr);
  const failure = run.stderr.split('\n').filter((line) => line.startsWith('iommu-harness:'));
  t.is(failure.length, 1, run.stderr);
  t.regex(failure[0]!, /^iommu-harness: unexpected error: open .*kernel\.release: no such file or directory \(ENOENT\)/);
  t.notRegex(run.stderr, noStack);
  const debug = await harness(box, ['run', '--src', box.tree, '--ref', 'no-kernel', ...runArgs], { IOMMU_HARNESS_DEBUG: '1' });
  t.is(debug.code, 3);
  t.regex(debug.stderr, noStack);
  const flag = await harness(box, ['run', '--debug', '--src', box.tree, '--ref', 'no-kernel', ...runArgs]);
  t.is(flag.code, 3);
  t.regex(flag.stderr, noStack);
  const check = await harness(box, ['check', '--src', box.tree, '--ref', 'no-kernel', ...runArgs]);
  t.is(check.code, 128, check.stderr);
});

test('nightly: a cell that fails unexpectedly is that cell\'s error; the night still writes night.json and JUnit (exit 3)', async (t) => {
  const box = await sandbox(t);
  const plan = path.join(box.root, 'plan.json');
  await writeFile(plan, JSON.stringify({ kernels: [{ name: 'fake', src: box.tree, ref: 'no-kernel' }], profiles: ['lockdep'], iommus: ['intel'], scenarios: ['vfio-bind-unbind'], cycles: 1 }));
  const out = path.join(box.root, 'nights', '2026-11-29');
  const result = await harness(box, ['nightly', '--plan', plan, '--out', out, '--quiet']);
  t.is(result.code, 3, `${result.stdout}\n${result.stderr}`);
  const night = JSON.parse(await readFile(path.join(out, 'night.json'), 'utf8'));
  t.is(night.exitCode, 3);
  t.is(night.builds[0].error.kind, 'unexpected');
  t.regex(night.builds[0].error.message, /kernel\.release: no such file or directory/);
  t.is(night.runs[0].verdict, 'error');
  t.regex(await readFile(path.join(out, 'junit.xml'), 'utf8'), /<error /);
});
