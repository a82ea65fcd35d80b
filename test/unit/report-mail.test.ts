import test from 'ava';
import { renderMailReport } from '../../harness/report/mail-report.ts';
import { reproduceArgs } from '../../harness/report/run-facts.ts';
import { judged, leakRuns, lockdepRuns, passRuns, resultOf, warningRuns } from './report-fixtures.ts';

const failing = () => resultOf([...warningRuns(), ...lockdepRuns().slice(1), ...leakRuns().slice(1)]);
const tooWide = (text: string) => text.split('\n').filter((line) => line.length > 80);

test('mail report: every line of a failing, a passing, an inconclusive and an erroring report fits 80 columns', (t) => {
  const inconclusive = judged('real-lockdep-remove-inversion.log', 'remove-rescan').map((run) => (run.scenario === 'boot' ? run : { ...run, reports: [], verdict: 'inconclusive' as const, inconclusive: ['lock checking was off after possible deadlock in msi_get_virq, from boot on: a lock inversion in this scenario\'s steps would not be reported'] }));
  const error = passRuns().map((run) => ({ ...run, verdict: 'error' as const, error: 'not run: the guest stopped answering SSH after vfio-bind-unbind/bind' }));
  for (const result of [failing(), resultOf(passRuns()), resultOf(inconclusive), resultOf(error)]) t.deepEqual(tooWide(renderMailReport(result)), []);
});

test('mail report: what was tested names the tree, the base by git describe, each patch subject and Message-ID, config, compiler, QEMU, machine and accelerator', (t) => {
  const text = renderMailReport(failing());
  t.regex(text, /^tree: +\/home\/dev\/linux$/m);
  t.regex(text, /^base: +v6\.12\.57-61-g1c2d3e4f5a6b \(1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d\)$/m);
  t.regex(text, /^cover: +\[PATCH v2 0\/2\] iommu: fix group refcounting on hot-remove$/m);
  t.regex(text, /^patch: +\[PATCH v2 2\/2\] iommu: drop the group reference in\n +iommu_release_device\(\)$/m, 'a long subject wraps under itself');
  t.regex(text, /Message-ID: <20261128101500\.1234-3-dev@example\.org>/);
  t.regex(text, /^kernel: +6\.12\.117\+$/m);
  t.regex(text, /^config: +profile lockdep; fragments base\.config, debug\.config,/m);
  t.regex(text, /^compiler: +gcc \(Debian 12\.2\.0-14\+deb12u1\) 12\.2\.0$/m);
  t.regex(text, /^qemu: +QEMU emulator version 7\.2\.19/m);
  t.regex(text, /^machines: +q35 \+ intel-iommu$/m);
  t.regex(text, /^accel: +tcg \(KVM not usable/m);
});

test('mail report: a lockdep report keeps its whole chain, a WARNING its symbolized stack without the register dump, a leak its ledger', (t) => {
  const text = renderMailReport(failing());
  t.regex(text, /\[2\/3\] possible deadlock in __iommu_group_remove_device/);
  for (const line of ['the existing dependency chain (in reverse order) is:', '-> #1 (&group->mutex){+.+.}-{3:3}:', '       intel_iommu_init+0xc0c/0xdc1', '-> #0 (iommu_probe_device_lock){+.+.}-{3:3}:', ' *** DEADLOCK ***', '5 locks held by sh/63:']) {
    t.true(text.includes(`\n${line}\n`), line);
  }
  t.regex(text, /Call Trace \(symbolized\):\n iommu_group_release \(drivers\/iommu\/iommu\.c:940\)\n kobject_put \(lib\/kobject\.c:737\)/);
  const warning = text.slice(text.indexOf('[1/3]'), text.indexOf('[2/3]'));
  t.notRegex(warning, /^RAX:/m);
  // The group's ledger: made (at boot here: edu is present from boot), the steps that used it, gone, never released.
  t.regex(text, /iommu group 4, its ledger from the kernel log:\n  added: +0000:01:00\.0 \(group made at boot\)\n  used by: +scenario vfio-bind-unbind, steps bind, container, iommufd,\s+unbind\n  device gone: +in step vfio-bind-unbind\/remove\n  released: +never/);
});

test('mail report: each finding has its step and the one command that reproduces it; the trailers are placeholders with the 0-day sentence', (t) => {
  const text = renderMailReport(failing(), { reportedBy: 'Jane Doe <jane@example.org>' });
  t.regex(text, /scenario remove-rescan, step\n +remove-rescan\/remove/);
  t.regex(
    text,
    /reproduce:\n    iommu-harness run --src \/home\/dev\/linux \\\n        --ref 1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d \\\n        --patch \/home\/dev\/series\/v2_20261128_dev_iommu_group_refcount\.mbx \\\n        --iommu intel --scenario remove-rescan\n/,
  );
  t.regex(text, /If you fix the issue in a separate patch\/commit \(i\.e\. not just a new version of\nthe same patch\/commit\), kindly add following tags\n\| Reported-by: Jane Doe <jane@example\.org>\n\| Closes: LINK-TO-THIS-REPORT\n/);
});

test('mail report: a pass is a Tested-by summary naming what ran and the known issue it showed', (t) => {
  const text = renderMailReport(resultOf(passRuns()));
  t.regex(text, /^iommu-harness tested the patch below: every scenario passed\.$/m);
  t.regex(text, /What ran:\n  q35 \+ intel-iommu: vfio-bind-unbind\n/);
  t.regex(text, /beyond the known issues above/);
  t.regex(text, /WARNING in iommu_group_release \(the double put under\n +test is triaged upstream\)/);
  t.regex(text, /\nTested-by: NAME <EMAIL>\n$/);
  t.notRegex(text, /Reported-by/);
});

test('mail report: an inconclusive run says why, and a Debian source reproduces with debian:RELEASE and no --ref', (t) => {
  const runs = lockdepRuns().map((run) => (run.scenario === 'boot' ? run : { ...run, reports: [], verdict: 'inconclusive' as const }));
  const result = resultOf(runs, { verdict: 'inconclusive', kernel: { source: 'debian:linux-source-6.1', packageVersion: '6.1.192-1', commit: 'f'.repeat(40), patches: [], release: '6.1.192' }, provenance: undefined });
  const text = renderMailReport(result);
  t.regex(text, /could not decide on the kernel below/);
  t.regex(text, /^intel\/remove-rescan: INCONCLUSIVE: lock checking was off/m);
  t.regex(text, /^tree: +debian:linux-source-6\.1 6\.1\.192-1 \(Debian's source\)$/m);
  t.notRegex(text, /Tested-by|Reported-by/);
  t.deepEqual(reproduceArgs(result, runs[1]!), ['run', '--src', 'debian:6.1', '--iommu', 'intel', '--scenario', 'remove-rescan']);
});

test('mail report: a finding of an --each-patch series names the patch that brought it', (t) => {
  const runs = leakRuns();
  const leak = runs.find((run) => run.leaks.length)!.leaks[0]!;
  leak.introducedBy = { index: 2, subject: '[PATCH v2 2/2] iommu: drop the group reference in iommu_release_device()' };
  const text = renderMailReport(resultOf(runs));
  t.regex(text, /\n {6}introduced by \[PATCH v2 2\/2\] iommu: drop the group reference in/);
  t.true(text.split('\n').every((line) => line.length <= 80));
});
