// --each-patch: each finding of the whole series is blamed on the first patch
// whose prefix shows it, followed by its signature (not its group id), and
// each patch gets a line of what it brought. Results judged by the real
// oracle from real console captures; runHarness replaced by a table of them.
import test from 'ava';
import { silentProgress } from '../../harness/log.ts';
import { renderTable } from '../../harness/report/table.ts';
import type { HarnessResult } from '../../harness/report/result.ts';
import { runEachPatch } from '../../harness/series.ts';
import type { Series } from '../../harness/source/series.ts';
import { leakRuns, passRuns, resultOf, warningRuns } from './report-fixtures.ts';

const series: Series = {
  patches: [
    { file: '/s/1.patch', subject: '[PATCH 1/3] iommu: a comment', source: '/s/series.mbx' },
    { file: '/s/2.patch', subject: '[PATCH 2/3] iommu: drop the group reference', source: '/s/series.mbx' },
    { file: '/s/3.patch', subject: '[PATCH 3/3] iommu: another comment', source: '/s/series.mbx' },
  ],
  skipped: [{ subject: '[PATCH 0/3] iommu: group refcounting', source: '/s/series.mbx' }],
};

const request = { iommus: ['intel' as const], scenarios: [], kconfigs: [], progress: silentProgress };

/** A fake runHarness: the result for the prefix of as many patches as it is given; the base (no patch) passes unless told. */
function prefixes(results: HarnessResult[], base: HarnessResult = resultOf(passRuns())) {
  const asked: string[][] = [];
  const run = async (prefix: { patches: string[] }) => {
    asked.push(prefix.patches);
    return prefix.patches.length === 0 ? base : results[prefix.patches.length - 1]!;
  };
  return { asked, run };
}

test('the leak is introduced by the patch whose prefix first shows it, and the prefixes grow one patch at a time', async (t) => {
  const leaking = resultOf(leakRuns());
  // The same leak in another boot: another group id, the same step and device.
  const shifted = resultOf(leakRuns().map((run) => ({ ...run, leaks: run.leaks.map((leak) => ({ ...leak, group: leak.group + 3 })) })));
  const { asked, run } = prefixes([resultOf(passRuns()), leaking, shifted]);
  const result = await runEachPatch(request, series, run);
  // The base alone first: what it already shows is no patch's.
  t.deepEqual(asked, [[], ['/s/1.patch'], ['/s/1.patch', '/s/2.patch'], ['/s/1.patch', '/s/2.patch', '/s/3.patch']]);
  const leaks = result.runs.flatMap((each) => each.leaks);
  t.true(leaks.length > 0);
  for (const leak of leaks) t.deepEqual(leak.introducedBy, { index: 2, subject: '[PATCH 2/3] iommu: drop the group reference' });
  t.deepEqual(result.series?.patches.map((step) => [step.index, step.verdict, step.introduced.length, step.gone.length]), [
    [1, 'pass', 0, 0],
    [2, 'fail', leaking.runs.flatMap((each) => each.leaks).length + leaking.runs.flatMap((each) => each.reports.filter((report) => !report.known)).length, 0],
    [3, 'fail', 0, 0],
  ]);
  t.deepEqual(result.series?.skipped, ['[PATCH 0/3] iommu: group refcounting']);
  t.is(result.timings.buildSeconds, 4 * 512.3);
  const table = renderTable(result);
  t.regex(table, /LEAK: iommu group \d+ .*never released.*\n    introduced by \[PATCH 2\/3\] iommu: drop the group reference/);
  t.regex(table, /patch by patch \(--each-patch\):\n  skipped \[PATCH 0\/3\] iommu: group refcounting \(cover letter\)\n  \[PATCH 1\/3\] iommu: a comment: PASS \(nothing new\)\n  \[PATCH 2\/3\] iommu: drop the group reference: FAIL\n    brings intel\/vfio-bind-unbind: LEAK/);
  t.regex(JSON.stringify(result), /"introducedBy":\{"index":2,"subject":"\[PATCH 2\/3\] iommu: drop the group reference"\}/);
});

test('a report present from the first patch is blamed on it; one the last patch takes away is said', async (t) => {
  const warning = resultOf(warningRuns());
  const { run } = prefixes([warning, warning, resultOf(passRuns())]);
  const result = await runEachPatch(request, series, run);
  t.true(result.series!.patches[0]!.introduced.some((line) => /WARNING/.test(line)));
  t.true(result.series!.patches[2]!.gone.some((line) => /WARNING/.test(line)));
  t.is(result.verdict, 'pass');
  // Known reports are no finding: never blamed.
  t.true(result.runs.flatMap((each) => each.reports).every((report) => report.introducedBy === undefined));
  const again = await runEachPatch(request, series, prefixes([warning, warning, warning]).run);
  const reports = again.runs.flatMap((each) => each.reports.filter((report) => !report.known));
  t.true(reports.length > 0);
  for (const report of reports) t.is(report.introducedBy?.index, 1);
  // Already in the base: brought by no patch of the series.
  const inBase = await runEachPatch(request, series, prefixes([warning, warning, warning], warning).run);
  for (const report of inBase.runs.flatMap((each) => each.reports.filter((candidate) => !candidate.known))) t.like(report.introducedBy, { index: 0, subject: 'the base, before the series (not brought by a patch)' });
  t.deepEqual(inBase.series!.patches[0]!.introduced, []);
});

test('a prefix that fails names its patch; no series is a usage error', async (t) => {
  const { HarnessError } = await import('../../harness/errors.ts');
  const failing = async (prefix: { patches: string[] }) => {
    if (prefix.patches.length === 0) return resultOf(passRuns());
    throw new HarnessError('build', 'the kernel did not build: drivers/iommu/iommu.c:12: error');
  };
  await t.throwsAsync(runEachPatch(request, series, failing), { message: '[PATCH 1/3] iommu: a comment: the kernel did not build: drivers/iommu/iommu.c:12: error' });
  const baseFails = async () => {
    throw new HarnessError('build', 'the kernel did not build');
  };
  await t.throwsAsync(runEachPatch(request, series, baseFails), { message: 'the base, without the series: the kernel did not build' });
  await t.throwsAsync(runEachPatch(request, { patches: [], skipped: [] }, failing), { message: /--each-patch needs a series/ });
});
