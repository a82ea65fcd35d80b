// What a failure prints and which exit code it gets, for every class: the
// one writer the CLI uses, check's mapping for git bisect, the night's record
// of a cell that failed unexpectedly, and symbolizing that cannot fail a run.
import test from 'ava';
import { checkExitCode } from '../../harness/bisect/check.ts';
import { failureText } from '../../harness/cli/report-error.ts';
import { describeError, ExitCode, HarnessError, hostTrouble } from '../../harness/errors.ts';
import { failureOf } from '../../harness/nightly/runner.ts';
import type { ScenarioRun } from '../../harness/report/result.ts';
import { symbolizeRuns } from '../../harness/report/symbolize.ts';

const erofs = Object.assign(new Error("EROFS: read-only file system, mkdir '/cache/kernels'"), { code: 'EROFS', syscall: 'mkdir', path: '/cache/kernels', errno: -30 });

test('describeError: a system error names its call, path and code in one line', (t) => {
  t.is(describeError(erofs), 'mkdir /cache/kernels: read-only file system (EROFS)');
  t.is(describeError(new TypeError('x is not a function\n    at y')), 'x is not a function');
  t.is(describeError('thrown string'), 'thrown string');
});

test('an unexpected error is one line without a stack; with debug the stack follows', (t) => {
  const plain = failureText(new TypeError('cannot read properties of undefined'), false);
  t.is(plain.trimEnd().split('\n').length, 1);
  t.regex(plain, /^iommu-harness: unexpected error: cannot read properties of undefined \(--debug or IOMMU_HARNESS_DEBUG=1 shows the stack\)$/m);
  const debug = failureText(new TypeError('cannot read properties of undefined'), true);
  t.regex(debug, /\n\s+at /);
});

test('a HarnessError prints its kind, cause, evidence and log', (t) => {
  const text = failureText(new HarnessError('build', 'make bzImage failed: boom', { logPath: '/c/build.log', excerpt: ['iommu.c:1: error: boom'] }), false);
  t.is(text, 'iommu-harness: build error: make bzImage failed: boom\n  | iommu.c:1: error: boom\n  log: /c/build.log\n');
});

test('exit codes by kind: usage, patch, config and prerequisite 2; infrastructure and host 3; interrupted 130', (t) => {
  const code = (kind: ConstructorParameters<typeof HarnessError>[0]) => new HarnessError(kind, 'x').exitCode;
  t.deepEqual(['usage', 'patch', 'config', 'prerequisite'].map((kind) => code(kind as 'usage')), [2, 2, 2, 2]);
  t.deepEqual(['build', 'image', 'boot', 'qemu', 'qmp', 'ssh', 'guest', 'setup', 'host'].map((kind) => code(kind as 'build')), Array(9).fill(ExitCode.infrastructure));
  t.is(code('interrupted'), 130);
});

test('check: anything that reaches it is not the commit\'s fault (128), Ctrl-C keeps 130', (t) => {
  for (const error of [new HarnessError('host', 'disk full'), new HarnessError('prerequisite', 'no busybox'), new HarnessError('usage', 'bad --patch'), erofs, new TypeError('bug'), 'a string']) {
    t.is(checkExitCode(error), 128, describeError(error));
  }
  t.is(checkExitCode(new HarnessError('interrupted', 'SIGINT')), 130);
});

test('hostTrouble reads a tool\'s stderr for a full or read-only disk', (t) => {
  t.is(hostTrouble('error: unable to write file drivers/x.c: No space left on device'), 'no space left on device');
  t.is(hostTrouble('fatal: could not create work tree dir: Read-only file system'), 'read-only file system');
  t.is(hostTrouble('error: patch failed: drivers/iommu/iommu.c:12'), undefined);
  t.is(hostTrouble('error: patch failed: fs/ext4/super.c:12\nPatch failed at 0001 ext4: report No space left on device'), undefined);
});

test('a night records an unexpected error as the cell\'s error of kind "unexpected"', (t) => {
  t.deepEqual(failureOf(erofs), { kind: 'unexpected', message: 'mkdir /cache/kernels: read-only file system (EROFS)', excerpt: [] });
  t.deepEqual(failureOf(new HarnessError('boot', 'no SSH', { logPath: '/r/console.log' })), { kind: 'boot', message: 'no SSH', excerpt: [], logPath: '/r/console.log' });
});

test('symbolizing is best effort: an unreadable vmlinux leaves the reports and adds a note, it does not throw', async (t) => {
  const run = {
    iommu: 'intel',
    scenario: 'vfio-bind-unbind',
    verdict: 'fail',
    reports: [{ kind: 'warning', title: 'WARNING in iommu_group_release', text: 'WARNING: CPU: 0 PID: 1 at drivers/iommu/iommu.c:1 iommu_group_release+0x5b/0x7e\n iommu_group_release+0x5b/0x7e\n', corrupted: false }],
    notes: [],
  } as unknown as ScenarioRun;
  const clean = { ...run, scenario: 'boot', reports: [], notes: [] } as unknown as ScenarioRun;
  await symbolizeRuns([run, clean], '/nonexistent/vmlinux');
  t.is(run.reports[0]!.frames, undefined);
  t.is(run.notes.length, 1);
  t.regex(run.notes[0]!, /^report frames not symbolized to file:line: readelf failed: /);
  t.deepEqual(clean.notes, []);
});
