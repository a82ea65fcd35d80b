import test from 'ava';
import { bisectRunExitCode, judgeStep } from '../../harness/bisect/judge.ts';
import {
  describeSignature,
  formatSignature,
  matchesSignature,
  parseSignature,
  SignatureSyntaxError,
  signatureOf,
  type Signature,
} from '../../harness/bisect/signature.ts';
import type { HarnessResult, ResultReport, ScenarioRun } from '../../harness/report/result.ts';

const edu = '0000:01:00.0';

function run(overrides: Partial<ScenarioRun> = {}): ScenarioRun {
  // Cast: fields other work adds to ScenarioRun do not concern the bisect.
  return {
    iommu: 'intel',
    scenario: 'vfio-bind-unbind',
    verdict: 'pass',
    groups: [{ id: 4, devices: [edu], released: true }],
    leaks: [],
    reports: [],
    notes: [],
    accel: 'tcg',
    logs: { console: '/runs/x/intel/console.log' },
    ...overrides,
  } as ScenarioRun;
}

const boot = (overrides: Partial<ScenarioRun> = {}) => run({ scenario: 'boot', groups: [], ...overrides });

function result(...runs: ScenarioRun[]): HarnessResult {
  const verdict = runs.some((r) => r.verdict === 'fail') ? 'fail' : runs.some((r) => r.verdict === 'error') ? 'error' : 'pass';
  return {
    verdict,
    kernel: { source: 'debian:linux-source-6.12', commit: 'abc', patches: [], release: '6.12.57' },
    runs,
    timings: { buildSeconds: 0, bootSeconds: {}, totalSeconds: 1 },
    accelerator: { accel: 'tcg', reason: '--accel tcg' },
  };
}

/** A leak of edu's group, numbered `group` (the number moves between commits; the signature must not). */
const leaking = (group = 4) =>
  run({ verdict: 'fail', groups: [{ id: group, devices: [edu], released: false }], leaks: [{ group, devices: [edu], step: 'vfio-bind-unbind/remove' }] });

const warning = (title: string, step?: string): ResultReport => ({ kind: 'warning', title, text: `WARNING: at ${title}`, corrupted: false, ...(step ? { step } : {}) });

const leakSignature: Signature = { kind: 'leak', scenario: 'vfio-bind-unbind', step: 'vfio-bind-unbind/remove', device: edu };

test('a leak is signed by scenario, step and device, not by group number', (t) => {
  t.deepEqual(signatureOf(result(boot(), leaking(4))), leakSignature);
  t.true(matchesSignature(result(boot(), leaking(7)), leakSignature), 'the same leak with another group number');
  t.false(matchesSignature(result(boot(), run()), leakSignature));
  const otherDevice = run({ verdict: 'fail', leaks: [{ group: 4, devices: ['0000:02:00.0'], step: 'vfio-bind-unbind/remove' }] });
  t.false(matchesSignature(result(otherDevice), leakSignature));
  const otherStep = run({ verdict: 'fail', leaks: [{ group: 4, devices: [edu], step: 'vfio-bind-unbind/unbind' }] });
  t.false(matchesSignature(result(otherStep), leakSignature));
});

test('a leak outranks the reports it drags along; without one the first unknown report signs', (t) => {
  const both = leaking();
  both.reports = [warning('WARNING in iommu_group_release', 'vfio-bind-unbind/remove')];
  t.is(signatureOf(result(boot({ verdict: 'fail', reports: [warning('WARNING in iommu_map')] }), both))?.kind, 'leak');
  const known = { ...warning('possible deadlock in pciehp_ist'), kind: 'lockdep' as const, known: 'upstream' };
  const reports = result(boot({ reports: [known] }), run({ verdict: 'fail', reports: [warning('WARNING in iommu_map')] }));
  t.deepEqual(signatureOf(reports), { kind: 'report', title: 'WARNING in iommu_map', reportKind: 'warning' });
  t.is(signatureOf(result(boot({ reports: [known] }), run())), undefined, 'known issues are not failures');
  t.false(matchesSignature(result(boot({ reports: [known] })), { kind: 'report', title: known.title }));
});

test('signatures round-trip through their command-line form', (t) => {
  const forms = ['leak:vfio-bind-unbind/remove:0000:01:00.0', 'leak', 'leak:pci-hotplug', 'leak:pci-hotplug/unplug', 'WARNING in iommu_group_release'];
  for (const form of forms) t.is(formatSignature(parseSignature(form)), form);
  t.deepEqual(parseSignature('leak:vfio-bind-unbind/remove:0000:01:00.0'), leakSignature);
  t.deepEqual(parseSignature('report:leak in foo'), { kind: 'report', title: 'leak in foo' });
  t.deepEqual(parseSignature('leak:*:0000:01:00.0'), { kind: 'leak', device: edu });
  t.throws(() => parseSignature('leak:vfio-bind-unbind/remove:01:00'), { instanceOf: SignatureSyntaxError });
  t.throws(() => parseSignature('  '), { instanceOf: SignatureSyntaxError });
  t.is(describeSignature(leakSignature), "leak of 0000:01:00.0's iommu group after vfio-bind-unbind/remove");
});

test('loose leak signatures match any leak they cover', (t) => {
  t.true(matchesSignature(result(leaking()), parseSignature('leak')));
  t.true(matchesSignature(result(leaking()), parseSignature('leak:vfio-bind-unbind')));
  t.false(matchesSignature(result(leaking()), parseSignature('leak:pci-hotplug')));
});

test('judge: the signature on any run is bad, even when the other runs pass', (t) => {
  const judged = judgeStep([result(boot(), run()), result(boot(), leaking(5)), result(boot(), run())], leakSignature);
  t.is(judged.verdict, 'bad');
  t.regex(judged.reason, /LEAK: iommu group 5 \(0000:01:00.0\).*1 of 3 run/);
  t.is(judged.findings.length, 1);
});

test('judge: an unrelated WARNING with the group released is good for a leak signature, and says so', (t) => {
  const judged = judgeStep([result(boot({ verdict: 'fail', reports: [warning('WARNING in iommu_map')] }), run())], leakSignature);
  t.is(judged.verdict, 'good');
  t.deepEqual(judged.otherFailures, ['intel/boot: WARNING: WARNING in iommu_map']);
  t.regex(judged.reason, /other failures: .*WARNING in iommu_map/);
});

test('judge: a leak of another device or step is not the signature, but it hides it: skip', (t) => {
  const otherStep = run({ verdict: 'fail', groups: [{ id: 4, devices: [edu], released: false }], leaks: [{ group: 4, devices: [edu], step: 'vfio-bind-unbind/unbind' }] });
  const judged = judgeStep([result(boot(), otherStep)], leakSignature);
  t.is(judged.verdict, 'skip');
  t.regex(judged.reason, /never seen in a released group/);
});

test('judge: a scenario that did not finish or a kernel that did not boot is skip', (t) => {
  t.is(judgeStep([result(boot(), run({ verdict: 'error', error: 'vfio-helper timed out' }))], leakSignature).verdict, 'skip');
  const noBoot = result(boot({ verdict: 'error', error: 'no SSH after 180 s' }), run({ verdict: 'error', groups: [], error: 'not run: no SSH' }));
  t.is(judgeStep([noBoot], leakSignature).verdict, 'skip');
  t.is(judgeStep([noBoot], { kind: 'report', title: 'WARNING in iommu_map' }).verdict, 'skip');
  t.is(judgeStep([noBoot], undefined).verdict, 'skip');
  t.is(judgeStep([], leakSignature).verdict, 'skip');
});

test('judge: a report signature is good once every scenario finished without it', (t) => {
  const signature: Signature = { kind: 'report', title: 'WARNING in iommu_group_release' };
  t.is(judgeStep([result(boot(), run())], signature).verdict, 'good');
  const warned = run({ verdict: 'fail', reports: [warning('WARNING in iommu_group_release', 'vfio-bind-unbind/remove')] });
  t.is(judgeStep([result(boot(), warned)], signature).verdict, 'bad');
  t.is(judgeStep([result(boot(), leaking())], signature).verdict, 'good', 'a leak alone does not hide a WARNING');
});

test('judge: a run blind to the signature is skip whatever its verdict; blind to another check, it still sees', (t) => {
  const lockdepOff = 'lock checking was off after possible deadlock in foo, from boot on: a lock inversion in this scenario\'s steps would not be reported';
  const inversion: Signature = { kind: 'report', title: 'possible deadlock in iommu_group_release', reportKind: 'lockdep' };
  const warn: Signature = { kind: 'report', title: 'WARNING in iommu_map', reportKind: 'warning' };
  const leak: Signature = { kind: 'leak', scenario: 'vfio-bind-unbind', device: edu };
  const inconclusive = run({ verdict: 'inconclusive', inconclusive: [lockdepOff] });
  // Fails on another report, with lockdep already off: it could not have shown a lock inversion.
  const failing = run({ verdict: 'fail', reports: [warning('WARNING in vfio_unregister_group_dev')], inconclusive: [lockdepOff] });
  for (const blind of [inconclusive, failing]) {
    const judged = judgeStep([result(boot(), blind)], inversion);
    t.is(judged.verdict, 'skip', `${blind.verdict}: lockdep off hides a lock inversion`);
    t.regex(judged.reason, /(is inconclusive|\(fail\) was blind to it): lock checking was off/);
    t.is(bisectRunExitCode[judged.verdict], 125);
    t.is(judgeStep([result(boot(), blind)], { kind: 'report', title: inversion.title }).verdict, 'skip', 'the kind is read from a typed title too');
    t.is(judgeStep([result(boot(), blind)], warn).verdict, 'good', `${blind.verdict}: a WARNING prints with lockdep off`);
    t.is(judgeStep([result(boot(), blind)], leak).verdict, 'good', `${blind.verdict}: the group ledger does not need lockdep`);
  }
  t.is(judgeStep([result(boot(), inconclusive)], undefined).verdict, 'skip', 'without a signature every check counts');

  const dropped = run({ verdict: 'fail', reports: [warning('WARNING in vfio_unregister_group_dev')], inconclusive: ['vfio-bind-unbind/remove: the kernel dropped 12 log message(s): a report or group event may be missing'] });
  for (const signature of [inversion, warn, leak]) t.is(judgeStep([result(boot(), dropped)], signature).verdict, 'skip', `lost lines hide a ${signature.kind}`);
  const unknown = run({ verdict: 'fail', reports: [warning('WARNING in vfio_unregister_group_dev')], inconclusive: ['a reason no rule knows'] });
  for (const signature of [inversion, warn, leak]) t.is(judgeStep([result(boot(), unknown)], signature).verdict, 'skip', 'a blind spot not understood hides everything');

  const hungTaskUnset = run({ verdict: 'fail', reports: [warning('WARNING in x')], inconclusive: ['the hung-task timeout could not be set to 10 s (exit 1): a task blocked in this scenario\'s steps may never have been reported'] });
  t.is(judgeStep([result(boot(), hungTaskUnset)], { kind: 'report', title: 'INFO: task hung in iommu_group_remove_device' }).verdict, 'skip');
  t.is(judgeStep([result(boot(), hungTaskUnset)], leak).verdict, 'good', 'an unreported hang hides no leak');
  const ledgerBlind = run({ verdict: 'fail', reports: [warning('WARNING in x')], inconclusive: ['in the first boot (intel): vIOMMU ledger blind: no trace'] });
  t.is(judgeStep([result(boot(), ledgerBlind)], { kind: 'report', title: 'vIOMMU kept endpoint 0000:01:00.0', reportKind: 'viommu-state' }).verdict, 'skip');
  t.is(judgeStep([result(boot(), ledgerBlind)], warn).verdict, 'good');

  const kmemleakOff = run({ scenario: 'kmemleak', groups: [], verdict: 'fail', reports: [warning('WARNING in x')], inconclusive: ['kmemleak was disabled (kmemleak: Kernel memory leak detector disabled): no memory leak could be reported'] });
  t.is(judgeStep([result(boot(), run(), kmemleakOff)], { kind: 'report', title: 'memory leak in iommu_group_alloc' }).verdict, 'skip');
  t.is(judgeStep([result(boot(), run(), kmemleakOff)], warn).verdict, 'good');
});

test('judge: a result inconclusive as a whole (none of the patch was built) is skip for any signature or none', (t) => {
  const unbuilt = { ...result(boot(), run()), inconclusive: ['none of the patch\'s code ran: drivers/iommu/amd/iommu.c (not compiled into this kernel)'] };
  for (const signature of [{ kind: 'report', title: 'WARNING in iommu_map' } as Signature, leakSignature, undefined]) {
    const judged = judgeStep([unbuilt], signature);
    t.is(judged.verdict, 'skip', signature ? formatSignature(signature) : 'no signature');
    t.regex(judged.reason, /the run is inconclusive: none of the patch's code ran/);
  }
});

test('judge: a refcount_t type the boot already printed hides a later one of that type (WARN_ONCE), known or not', (t) => {
  const refcount = (title: string, message: string, extra: Partial<ResultReport> = {}): ResultReport => ({
    kind: 'refcount',
    title,
    text: `------------[ cut here ]------------\n${message}\nWARNING: CPU: 0 PID: 68 at lib/refcount.c:28 refcount_warn_saturate+0x99/0xda`,
    corrupted: false,
    ...extra,
  });
  const underflow = 'refcount_t: underflow; use-after-free.';
  const bad = result(boot(), run({ verdict: 'fail', reports: [refcount('WARNING: refcount bug in vfio_unregister_group_dev', underflow, { step: 'vfio-bind-unbind/unbind' })] }));
  const signature = signatureOf(bad);
  t.deepEqual(signature, { kind: 'report', title: 'WARNING: refcount bug in vfio_unregister_group_dev', reportKind: 'refcount', message: underflow });
  // At the next commit another underflow, printed first in the boot and known, spent the type.
  const spent = result(boot({ reports: [refcount('WARNING: refcount bug in pci_dev_put', underflow, { known: 'triaged' })] }), run());
  const judged = judgeStep([spent], signature);
  t.is(judged.verdict, 'skip');
  t.regex(judged.reason, /"refcount_t: underflow; use-after-free\." was printed already \(WARNING: refcount bug in pci_dev_put\).*once per refcount type/);
  const otherType = result(boot({ reports: [refcount('WARNING: refcount bug in pci_dev_put', 'refcount_t: saturated; leaking memory.', { known: 'triaged' })] }), run());
  t.is(judgeStep([otherType], signature).verdict, 'good', 'another type has its own once-flag');
  t.is(judgeStep([otherType], { kind: 'report', title: 'WARNING: refcount bug in vfio_unregister_group_dev' }).verdict, 'skip', 'a typed title names no type: any spent one may be it');
  t.is(judgeStep([result(boot(), run())], signature).verdict, 'good');
});

test('judge without a signature: any failure is bad, errors skip, all passing is good', (t) => {
  t.is(judgeStep([result(boot({ verdict: 'fail', reports: [warning('WARNING in iommu_map')] }), run())], undefined).verdict, 'bad');
  t.is(judgeStep([result(boot(), run())], undefined).verdict, 'good');
  const warnedAndLeaked = judgeStep([result(boot({ verdict: 'fail', reports: [warning('WARNING in iommu_map')] }), leaking())], undefined);
  t.regex(warnedAndLeaked.reason, /LEAK/, 'the leak leads, as it does in signatureOf');
  const checkFailed = judgeStep([result(boot(), run({ verdict: 'fail' }))], undefined);
  t.is(checkFailed.verdict, 'bad', 'a run failing for another reason (a scenario check) is a failure');
  t.regex(checkFailed.reason, /intel\/vfio-bind-unbind: FAIL/);
  t.deepEqual(bisectRunExitCode, { good: 0, bad: 1, skip: 125 });
});
