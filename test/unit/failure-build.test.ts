// A build that fails for want of disk, memory or a program is the machine's
// failure, not the commit's; make never sees the user's Kbuild variables.
// runMake drives real make on small Makefiles.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { buildTrouble } from '../../harness/build/build-log.ts';
import { runMake } from '../../harness/build/kernel.ts';
import { buildEnv, gitEnv } from '../../harness/child-env.ts';
import { checkExitCode } from '../../harness/bisect/check.ts';
import { HarnessError } from '../../harness/errors.ts';
import { silentProgress } from '../../harness/log.ts';

test('buildTrouble: a full disk, a read-only file system, memory, a missing program; a compiler error is none of them', (t) => {
  t.deepEqual(buildTrouble("drivers/iommu/iommu.c:1: fatal error: error writing to /tmp/ccX.s: No space left on device\nmake[3]: *** [scripts/Makefile.build:229: drivers/iommu/iommu.o] Error 1"), {
    kind: 'host',
    reason: 'no space left on device',
  });
  t.is(buildTrouble('ld: final link failed: Disk quota exceeded')?.reason, 'disk quota exceeded');
  t.is(buildTrouble("cannot create vmlinux.o: Read-only file system")?.kind, 'host');
  // A source line or a message that only quotes the words is not the machine's failure.
  t.is(buildTrouble('  412 |         pr_err("ext4: No space left on device\\n");\ndrivers/x.c:412:9: error: implicit declaration of function \'pr_err\''), undefined);
  t.is(buildTrouble('gcc: fatal error: Killed signal terminated program cc1')?.reason, 'out of memory');
  t.deepEqual(buildTrouble('/bin/sh: 1: flex: not found\nmake[2]: *** [scripts/Makefile.host:9: scripts/kconfig/lexer.lex.c] Error 127'), {
    kind: 'prerequisite',
    reason: 'the build needs flex, which is not installed',
  });
  t.is(buildTrouble('sh: 1: rsync: not found')?.kind, 'prerequisite');
  t.is(buildTrouble('make[1]: bison: No such file or directory')?.reason, 'the build needs bison, which is not installed');
  t.is(buildTrouble('error: Cannot generate ORC metadata for CONFIG_UNWINDER_ORC=y, please install libelf-dev, libelf-devel or elfutils-libelf-devel')?.kind, 'prerequisite');
  t.is(buildTrouble("drivers/iommu/iommu.c:42:5: error: 'foo' undeclared (first use in this function)\nmake[4]: *** Error 1"), undefined);
  // A commit's own script that is missing is the commit's failure.
  t.is(buildTrouble('/bin/sh: 1: ./scripts/gen-thing.sh: not found'), undefined);
});

async function makeTree(t: { teardown: (fn: () => Promise<void>) => void }, makefile: string) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'failure-build-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(path.join(dir, 'Makefile'), makefile);
  return { worktree: dir, buildDir: dir, log: path.join(dir, 'build.log') };
}

const call = (tree: { worktree: string; buildDir: string; log: string }, args: string[]) =>
  runMake({ ...tree, args, progress: silentProgress, timeoutMs: 60_000 });

test('make failing with "No space left on device" is a host error (exit 3, check 128), not the commit\'s build failure', async (t) => {
  const tree = await makeTree(t, 'bzImage:\n\t@echo "  CC      drivers/iommu/iommu.o"\n\t@echo "cc1: fatal error: can\'t write drivers/iommu/.tmp_iommu.o: No space left on device" >&2\n\t@exit 2\n');
  const error = await t.throwsAsync(call(tree, ['bzImage']), { instanceOf: HarnessError });
  t.is(error?.kind, 'host');
  t.is(error?.exitCode, 3);
  t.is(error?.message, 'make bzImage failed: no space left on device');
  t.is(error?.logPath, tree.log);
  t.is(checkExitCode(error), 128);
});

test('make failing on a compiler error stays the commit\'s build failure', async (t) => {
  const tree = await makeTree(t, "bzImage:\n\t@echo \"drivers/iommu/iommu.c:3:1: error: expected ';' before '}' token\" >&2\n\t@exit 2\n");
  const error = await t.throwsAsync(call(tree, ['bzImage']), { instanceOf: HarnessError });
  t.is(error?.kind, 'build');
});

test.serial('make does not see KCFLAGS, CROSS_COMPILE, KCONFIG_CONFIG, ARCH from the user\'s shell, nor MAKEFLAGS', async (t) => {
  const tree = await makeTree(t, 'show:\n\t@echo "KCFLAGS=[$(KCFLAGS)] CROSS_COMPILE=[$(CROSS_COMPILE)] KCONFIG_CONFIG=[$(KCONFIG_CONFIG)] KBUILD_OUTPUT=[$(KBUILD_OUTPUT)] ARCH=[$(ARCH)] LOCALVERSION=[$(LOCALVERSION)] FROM_MAKEFLAGS=[$(FROM_MAKEFLAGS)]"\n');
  const saved = { ...process.env };
  t.teardown(() => {
    process.env = saved;
  });
  Object.assign(process.env, {
    KCFLAGS: '-O0',
    CROSS_COMPILE: 'aarch64-linux-gnu-',
    KCONFIG_CONFIG: '/tmp/other.config',
    KBUILD_OUTPUT: '/tmp/elsewhere',
    ARCH: 'arm64',
    LOCALVERSION: '-mine',
    MAKEFLAGS: '-j64 FROM_MAKEFLAGS=1',
  });
  await call(tree, ['show']);
  process.env = saved;
  const log = await readFile(tree.log, 'utf8');
  t.true(log.includes('KCFLAGS=[] CROSS_COMPILE=[] KCONFIG_CONFIG=[] KBUILD_OUTPUT=[] ARCH=[x86_64] LOCALVERSION=[] FROM_MAKEFLAGS=[]'), log);
});

test('child environments: build tools keep PATH and ccache settings only; git loses every GIT_* variable', (t) => {
  const env = { PATH: '/usr/bin', HOME: '/root', CCACHE_DIR: '/c', KCFLAGS: '-O0', CPATH: '/inc', GIT_DIR: '/x/.git', GIT_INDEX_FILE: '/x/i', GIT_OBJECT_DIRECTORY: '/o', LANG: 'de_DE.UTF-8', EDITOR: 'vi' };
  t.deepEqual(buildEnv({ KBUILD_BUILD_USER: 'iommu-harness' }, env), { PATH: '/usr/bin', HOME: '/root', CCACHE_DIR: '/c', LC_ALL: 'C', KBUILD_BUILD_USER: 'iommu-harness' });
  t.deepEqual(gitEnv({}, env), { PATH: '/usr/bin', HOME: '/root', CCACHE_DIR: '/c', KCFLAGS: '-O0', CPATH: '/inc', EDITOR: 'vi', LC_ALL: 'C' });
});
