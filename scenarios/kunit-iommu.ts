import { HarnessError } from '../harness/errors.ts';
import { kunitConsoleKtap, parseTap } from '../harness/oracle/ktap-results.ts';
import type { ResultCase, ResultReport } from '../harness/report/result.ts';
import { missingFeatureReason } from '../harness/scenario/features.ts';
import type { Scenario } from '../harness/scenario/scenario.ts';
import { caseReport } from '../harness/selftest/cases.ts';

/**
 * The generic page-table KUnit suites (CONFIG_IOMMU_PT_KUNIT_TEST: each
 * format's `<fmt>_fmt_test` and `<fmt>_iommu_test`), built in and run by the
 * kernel at boot in this scenario's boot only (`kunit.enable=1`; the kernel
 * has CONFIG_KUNIT_DEFAULT_ENABLED=n, so no other boot runs them). Their KTAP
 * is read from the console.
 */
const fmtSuites = '*_fmt_test';
export const iommuSuitesSkipped =
  "the <fmt>_iommu_test suites are not run: their exit asserts the global NR_SECONDARY_PAGETABLE vmstat counter unchanged (\"assumes kunit is running isolated\"), which no booted SMP guest guarantees (7.2.13: 262 before, 267 after test_map_simple), and the aborted exit leaves pt_kunit_dev registered, so every later case fails to initialize";

export const kunitIommu: Scenario = {
  name: 'kunit-iommu',
  proves: "the kernel's generic page-table KUnit format suites (every format's _fmt_test, with DEBUG_GENERIC_PT; the _iommu_test suites are listed as skipped with why) pass, read from the console's KTAP, with no kernel report while they run",
  iommus: ['intel', 'virtio', 'amd', 'none'],
  notOn: { smmuv3: "arm64's io-pgtable LPAE and SMMUv3 KUnit suites are not configured yet" },
  // Only the format suites: each <fmt>_iommu_test case's exit asserts that NR_SECONDARY_PAGETABLE, a global
  // vmstat counter, is back where it was ("assumes kunit is running isolated"), which a booted SMP guest does
  // not give it (7.2.13: 262 before, 267 after test_map_simple); the aborted exit then leaves its kunit device
  // registered and every later case fails to initialize. Those suites are listed as skipped with this reason.
  topology: { devices: [], cmdline: ['kunit.enable=1', `kunit.filter_glob=${fmtSuites}`] },
  freshBoot: 'KUnit runs at boot, and only in a boot that asks for it (kunit.enable=1): no other boot of the kernel pays for it',
  kconfig: 'selftests.config',
  // The page-table suites run before /init; under TCG with DEBUG_GENERIC_PT they may take minutes.
  extraBootMs: 20 * 60_000,
  onlyWhenNamed: 'it needs a kernel of its own (KUnit and the page-table tests: kconfigs/scenarios/selftests.config)',
  async run(guest) {
    if (!guest.hasFeature('iommu-pt-kunit')) {
      guest.skip(['results'], missingFeatureReason('iommu-pt-kunit'));
      return;
    }
    await guest.mark('results');
    const ktap = kunitConsoleKtap(await guest.console());
    const parsed = parseTap(ktap);
    if (parsed.cases.length === 0) throw new HarnessError('guest', 'kunit-iommu/results: the console has no KUnit results (no KTAP after kunit.enable=1)');
    const step = 'kunit-iommu/results';
    const cases: ResultCase[] = [];
    const reports: ResultReport[] = [];
    for (const tap of parsed.cases) {
      const row: ResultCase = { suite: 'kunit', name: tap.name, result: tap.result, ...(tap.reason ? { reason: tap.reason } : {}), ...(tap.seconds !== undefined ? { seconds: tap.seconds } : {}), step };
      cases.push(row);
      if (tap.result === 'not ok') reports.push(caseReport('kunit', tap.name, step, tap.reason ?? 'not ok', tap.diagnostics));
    }
    // A suite the plan announced that printed no result (the kernel stopped inside it) is a failure, never dropped.
    for (const number of parsed.missing) {
      cases.push({ suite: 'kunit', name: `suite ${number}`, result: 'not ok', reason: 'announced by the plan, never reported', step });
      reports.push(caseReport('kunit', `suite ${number}`, step, 'announced by the plan (1..N) but never reported', []));
    }
    cases.push({ suite: 'kunit', name: '*_iommu_test', result: 'skip', reason: iommuSuitesSkipped, step });
    const seconds = cases.reduce((sum, row) => sum + (row.seconds ?? 0), 0);
    guest.recordCases(cases, { name: 'kunit', seconds: Math.round(seconds * 100) / 100, planned: cases.length, notReached: 0 }, reports);
  },
};
