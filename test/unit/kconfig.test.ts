import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { execa } from 'execa';
import { applyOptions, droppedOptions, mergeFragments, parseConfig, reliedOnOptions, switchedOffOptions, ConfigSyntaxError } from '../../harness/build/kconfig.ts';
import { builtinProfiles, checkReliedOnOptions, loadFragments, obtainKernel, profileDir } from '../../harness/build/index.ts';
import { cacheLayout } from '../../harness/cache.ts';
import { HarnessError } from '../../harness/errors.ts';
import { silentProgress } from '../../harness/log.ts';

test('parses set, unset and string options and skips comments', (t) => {
  const config = parseConfig('# comment\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\n\n');
  t.deepEqual([...config], [
    ['CONFIG_A', 'y'],
    ['CONFIG_B', 'n'],
    ['CONFIG_C', '"x y"'],
  ]);
});

test('a line that is not config is an error naming the fragment and line', (t) => {
  const error = t.throws(() => parseConfig('CONFIG_A=y\nINTEL_IOMMU=y\n', 'debug.config'), { instanceOf: ConfigSyntaxError });
  t.is(error?.message, 'debug.config:2: not a config line: INTEL_IOMMU=y');
});

test('later fragments win and =n unsets', (t) => {
  const merged = mergeFragments([
    { name: 'base', text: 'CONFIG_A=y\nCONFIG_B=y\n' },
    { name: 'user', text: 'CONFIG_B=n\nCONFIG_C=m\n' },
  ]);
  t.deepEqual(Object.fromEntries(merged), { CONFIG_A: 'y', CONFIG_B: 'n', CONFIG_C: 'm' });
  t.is(applyOptions('CONFIG_B=y\nCONFIG_Z=y\n', merged), 'CONFIG_Z=y\nCONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C=m\n');
});

test('requested choice members come last, where Kconfig lets them win', (t) => {
  const tiny = 'CONFIG_UNWINDER_ORC=n\nCONFIG_UNWINDER_GUESS=y\n'.replace('CONFIG_UNWINDER_ORC=n', '# CONFIG_UNWINDER_ORC is not set');
  const merged = applyOptions(tiny, new Map([['CONFIG_UNWINDER_ORC', 'y']]));
  t.is(merged, 'CONFIG_UNWINDER_GUESS=y\nCONFIG_UNWINDER_ORC=y\n');
});

test('an option olddefconfig dropped is named with what it became', (t) => {
  const requested = new Map([
    ['CONFIG_VFIO', 'y'],
    ['CONFIG_IOMMUFD', 'y'],
    ['CONFIG_MODULES', 'n'],
  ]);
  const final = 'CONFIG_VFIO=y\n# CONFIG_IOMMUFD is not set\n';
  t.deepEqual(droppedOptions(requested, final), [{ option: 'CONFIG_IOMMUFD', requested: 'y', actual: 'n' }]);
  t.deepEqual(droppedOptions(new Map([['CONFIG_MODULES', 'n']]), 'CONFIG_MODULES=y\n'), [
    { option: 'CONFIG_MODULES', requested: 'n', actual: 'y' },
  ]);
});

test('the shipped fragments parse and ask for what the harness relies on', async (t) => {
  const requested = mergeFragments(await loadFragments([]));
  for (const option of ['CONFIG_INTEL_IOMMU', 'CONFIG_VIRTIO_IOMMU', 'CONFIG_VFIO_PCI', 'CONFIG_IOMMUFD', 'CONFIG_VFIO_DEVICE_CDEV', 'CONFIG_PROVE_LOCKING', 'CONFIG_DYNAMIC_DEBUG']) {
    t.is(requested.get(option), 'y', option);
  }
});

/** A git tree with no kernel in it and a cache beside it: a build that is ever started fails at once. */
async function notAKernel() {
  const root = await mkdtemp(path.join(os.tmpdir(), 'kconfig-relied-'));
  const repo = path.join(root, 'linux');
  await mkdir(repo);
  const gitEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', GIT_AUTHOR_NAME: 'u', GIT_AUTHOR_EMAIL: 'u@x', GIT_COMMITTER_NAME: 'u', GIT_COMMITTER_EMAIL: 'u@x', GIT_CONFIG_NOSYSTEM: '1' };
  const run = (args: string[]) => execa('git', ['-C', repo, ...args], { extendEnv: false, env: gitEnv });
  await run(['init', '-q']);
  await writeFile(path.join(repo, 'README'), 'not a kernel\n');
  await run(['add', 'README']);
  await run(['commit', '-q', '-m', 'x']);
  const fragment = async (name: string, text: string) => {
    const file = path.join(root, name);
    await writeFile(file, text);
    return file;
  };
  return { root, repo, layout: cacheLayout(path.join(root, 'cache')), fragment };
}

test('a --kconfig that unsets DYNAMIC_DEBUG or PROVE_LOCKING is a usage error naming the option and why, before any build', async (t) => {
  const { root, repo, layout, fragment } = await notAKernel();
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const noDyndbg = await fragment('no-dyndbg.config', 'CONFIG_VFIO=y\n# CONFIG_DYNAMIC_DEBUG is not set\n');
  const dyndbg = await t.throwsAsync(obtainKernel(layout, { src: repo, patches: [], kconfigs: [noDyndbg] }, silentProgress), { instanceOf: HarnessError });
  t.is(dyndbg?.kind, 'usage');
  t.is(dyndbg?.exitCode, 2);
  t.regex(dyndbg?.message ?? '', /no-dyndbg\.config switches off CONFIG_DYNAMIC_DEBUG \(CONFIG_DYNAMIC_DEBUG=n\), which debug\.config turns on: .*"Releasing group N" are pr_debug/);

  const noLockdep = await fragment('no-lockdep.config', 'CONFIG_PROVE_LOCKING=n\n');
  const lockdep = await t.throwsAsync(obtainKernel(layout, { src: repo, patches: [], kconfigs: [noLockdep] }, silentProgress), { instanceOf: HarnessError });
  t.is(lockdep?.kind, 'usage');
  t.regex(lockdep?.message ?? '', /switches off CONFIG_PROVE_LOCKING \(CONFIG_PROVE_LOCKING=n\).*lockdep/);
  // Nothing was unpacked, checked out or built for it.
  t.false(existsSync(layout.worktrees));
});

test("a fragment after a profile cannot switch off the profile's own check; one that keeps it, or sets other options, is accepted", async (t) => {
  const fragments = await loadFragments([path.join(profileDir, 'leakcheck.config')]);
  const user = { name: '/home/u/mine.config', text: 'CONFIG_DEBUG_KMEMLEAK=n\nCONFIG_DEBUG_KMEMLEAK_MEM_POOL_SIZE=4000\n' };
  const off = switchedOffOptions([...fragments, user]);
  t.deepEqual(off.map((entry) => [entry.option, entry.fragment, path.basename(entry.enabledBy)]), [['CONFIG_DEBUG_KMEMLEAK', '/home/u/mine.config', 'leakcheck.config']]);
  t.throws(() => checkReliedOnOptions([...fragments, user]), { instanceOf: HarnessError, message: /CONFIG_DEBUG_KMEMLEAK.*kmemleak profile/ });
  // Without the profile nothing turned kmemleak on, so nothing is switched off.
  t.deepEqual(switchedOffOptions([...(await loadFragments([])), user]), []);
  t.notThrows(() => checkReliedOnOptions([...fragments, { name: 'ok.config', text: 'CONFIG_PROVE_LOCKING=y\nCONFIG_DEBUG_LIST=n\n' }]));
  // Every option of the table is on in the standard fragments or a profile, so the check has something to hold.
  const everything = mergeFragments(await loadFragments(Object.values(await builtinProfiles())));
  for (const { option } of reliedOnOptions) t.is(everything.get(option), 'y', option);
});

test('run refuses a --kconfig that unsets a relied-on option with exit 2, before the cache or the source is touched', async (t) => {
  const { root, repo, fragment } = await notAKernel();
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const noLockdep = await fragment('no-lockdep.config', '# CONFIG_PROVE_LOCKING is not set\n');
  const cache = path.join(root, 'cache');
  const cli = fileURLToPath(new URL('../../bin/iommu-harness.js', import.meta.url));
  const result = await execa('node', [cli, 'run', '--src', repo, '--iommu', 'virtio', '--kconfig', noLockdep], { reject: false, env: { IOMMU_HARNESS_CACHE: cache, IOMMU_HARNESS_ACCEL: 'tcg' } });
  t.is(result.exitCode, 2, result.stderr);
  t.regex(result.stderr, /CONFIG_PROVE_LOCKING/);
  t.false(existsSync(cache));
});
