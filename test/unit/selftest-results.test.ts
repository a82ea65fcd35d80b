// The kernel's own test suites as results: TAP/KTAP parsing, the case-by-case
// loop's output, the cases in the verdict (a `not ok` case a `selftest`
// finding, a skip never a pass) and in the table, KTAP and JUnit.
import { readFileSync } from 'node:fs';
import test from 'ava';
import { kunitConsoleKtap, parseTap } from '../../harness/oracle/ktap-results.ts';
import { accountGroups, parseKernelLog, parseKnownIssues } from '../../harness/oracle/index.ts';
import { kindOfTitle } from '../../harness/oracle/kinds.ts';
import { parseCaseLoop, parseKselftestList } from '../../harness/selftest/cases.ts';
import { judgeBoot } from '../../harness/report/verdict.ts';
import { renderTable } from '../../harness/report/table.ts';
import { renderKtap } from '../../harness/report/ktap.ts';
import { renderRunJUnit } from '../../harness/report/junit-run.ts';
import { resultOf } from './report-fixtures.ts';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/selftest/${name}`, import.meta.url), 'utf8');

const passing = (name: string) => [
  'TAP version 13',
  '1..1',
  '# Starting 1 tests from 1 test cases.',
  `#  RUN           ${name} ...`,
  `#            OK  ${name}`,
  `ok 1 ${name}`,
  '# PASSED: 1 / 1 tests passed.',
  '# Totals: pass:1 fail:0 xfail:0 xpass:0 skip:0 error:0',
];

test('kselftest TAP: ok, not ok with its assertion, SKIP with its reason', (t) => {
  const text = [
    'TAP version 13',
    '1..3',
    '# Starting 3 tests from 1 test cases.',
    '#  RUN           iommufd_ioas.mock_domain.area ...',
    '# iommufd.c:123:area:Expected 0 (0) == rc (-1)',
    '# area: Test terminated by assertion',
    '#          FAIL  iommufd_ioas.mock_domain.area',
    'not ok 1 iommufd_ioas.mock_domain.area',
    '#  RUN           iommufd_ioas.mock_domain.huge ...',
    '#      SKIP      no hugepages',
    '#            OK  iommufd_ioas.mock_domain.huge',
    'ok 2 iommufd_ioas.mock_domain.huge # SKIP no hugepages',
    'ok 3 iommufd.simple_close',
  ].join('\n');
  const parsed = parseTap(text);
  t.is(parsed.planned, 3);
  t.deepEqual(parsed.missing, []);
  t.deepEqual(
    parsed.cases.map((row) => [row.name, row.result, row.reason]),
    [
      ['iommufd_ioas.mock_domain.area', 'not ok', undefined],
      ['iommufd_ioas.mock_domain.huge', 'skip', 'no hugepages'],
      ['iommufd.simple_close', 'ok', undefined],
    ],
  );
  t.true(parsed.cases[0]!.diagnostics.includes('iommufd.c:123:area:Expected 0 (0) == rc (-1)'));
});

test('a plan with results missing names the tests that never reported', (t) => {
  const parsed = parseTap(['TAP version 13', '1..3', 'ok 1 a', 'not ok 2 b'].join('\n'));
  t.deepEqual(parsed.missing, [3]);
});

test('KUnit on the console: suites and parameters as parents, cases named suite.test[.param], failures with their expectation, skips with their reason, durations from the timestamps', (t) => {
  const ktap = kunitConsoleKtap(fixture('kunit-console.hand-written.txt'));
  t.false(ktap.includes('io scheduler'), 'lines before the KTAP are left out');
  const parsed = parseTap(ktap);
  t.is(parsed.planned, 2);
  t.deepEqual(parsed.missing, []);
  t.deepEqual(
    parsed.cases.map((row) => [row.name, row.result, row.reason]),
    [
      ['amdv1_fmt_test.test_init', 'ok', undefined],
      ['amdv1_fmt_test.test_table_ptr.lvl0', 'ok', undefined],
      ['amdv1_fmt_test.test_table_ptr.lvl1', 'ok', undefined],
      ['vtdss_iommu_test.test_map_simple', 'not ok', undefined],
      ['vtdss_iommu_test.test_dynamic_level', 'skip', 'dynamic top not supported'],
      ['vtdss_iommu_test.test_increase_level', 'ok', undefined],
    ],
  );
  const failed = parsed.cases[3]!;
  t.true(failed.diagnostics.some((line) => line.includes('EXPECTATION FAILED at drivers/iommu/generic_pt/kunit_iommu_pt.h:171')));
  t.true(failed.diagnostics.some((line) => line.includes('ret == -22')));
  t.is(parsed.cases[1]!.seconds, 0.1);
});

test('no KTAP on the console: no cases', (t) => {
  t.is(kunitConsoleKtap('[    0.000000] Linux version 7.2.13\n[    1.0] kunit: disabled\n'), '');
  t.deepEqual(parseTap('').cases, []);
});

test("a kselftest program's listing (-l): every variant x every test of each fixture", (t) => {
  t.deepEqual(parseKselftestList(fixture('list.hand-written.txt')), [
    'iommufd.simple_close',
    'iommufd.cmd_fail',
    'iommufd_ioas.no_domain.ioas_auto_destroy',
    'iommufd_ioas.no_domain.ioas_destroy',
    'iommufd_ioas.mock_domain.ioas_auto_destroy',
    'iommufd_ioas.mock_domain.ioas_destroy',
    'iommufd_ioas.two_mock_domain.ioas_auto_destroy',
    'iommufd_ioas.two_mock_domain.ioas_destroy',
    'iommufd_mock_domain_vfio_pci.one_domain.pin_basic',
  ]);
});

const loopOutput = [
  '@@ih start 10.00 a.ok_case',
  ...passing('a.ok_case'),
  '@@ih end 10.25 0 a.ok_case',
  '@@ih start 10.25 a.fails',
  'TAP version 13',
  '1..1',
  '#  RUN           a.fails ...',
  '# iommufd.c:1500:fails:Expected 0 (0) == rc (-2)',
  '#          FAIL  a.fails',
  'not ok 1 a.fails',
  '@@ih end 11.00 1 a.fails',
  '@@ih start 11.00 a.killed',
  'TAP version 13',
  '1..1',
  '#  RUN           a.killed ...',
  '@@ih end 611.00 137 a.killed',
  '@@ih notreached a.late',
].join('\n');

test('the case loop: a row per listed case, a report per failure in its step, a kill without a result a failure, the cases the budget left listed as not reached', (t) => {
  const run = parseCaseLoop(loopOutput, { suite: 'iommufd', stepPrefix: 'selftest-iommufd/iommufd', cases: ['a.ok_case', 'a.fails', 'a.killed', 'a.late', 'a.never'], budgetSeconds: 300 });
  t.deepEqual(
    run.cases.map((row) => [row.name, row.result]),
    [
      ['a.ok_case', 'ok'],
      ['a.fails', 'not ok'],
      ['a.killed', 'not ok'],
      ['a.late', 'skip'],
      ['a.never', 'skip'],
    ],
  );
  t.is(run.cases[0]!.seconds, 0.25);
  t.is(run.cases[0]!.step, 'selftest-iommufd/iommufd/a.ok_case');
  t.regex(run.cases[3]!.reason ?? '', /^not reached: the time budget of 300 s/);
  t.regex(run.cases[4]!.reason ?? '', /^not reached/);
  t.deepEqual(run.suite, { name: 'iommufd', seconds: 601, planned: 5, notReached: 2, budgetSeconds: 300 });
  t.deepEqual(
    run.reports.map((report) => [report.kind, report.title, report.step]),
    [
      ['selftest', 'selftest failure in iommufd: a.fails', 'selftest-iommufd/iommufd/a.fails'],
      ['selftest', 'selftest failure in iommufd: a.killed', 'selftest-iommufd/iommufd/a.killed'],
    ],
  );
  t.true(run.reports[0]!.text.includes('iommufd.c:1500:fails:Expected 0 (0) == rc (-2)'));
  t.regex(run.reports[1]!.text, /killed after its time limit/);
  t.is(kindOfTitle(run.reports[0]!.title), 'selftest');
});

test('output that stops inside a case: that case failed, the rest not reached, none dropped', (t) => {
  const run = parseCaseLoop(['@@ih start 1.0 a.one', 'TAP version 13', '#  RUN           a.one ...'].join('\n'), { suite: 'iommufd', stepPrefix: 's/iommufd', cases: ['a.one', 'a.two'] });
  t.deepEqual(run.cases.map((row) => row.result), ['not ok', 'skip']);
  t.is(run.reports.length, 1);
});

function consoleWith(lines: string[]): string {
  return [
    '[    0.000000] Linux version 7.2.13 (gcc) #1 SMP PREEMPT_LAZY',
    '[    2.000000] iommu-harness: step selftest-iommufd/iommufd',
    ...lines,
  ].join('\n');
}

function judgedSelftest(options: { console: string; known?: string; failing?: boolean }) {
  const run = parseCaseLoop(options.failing ? loopOutput : ['@@ih start 10.00 a.ok_case', ...passing('a.ok_case'), '@@ih end 10.25 0 a.ok_case'].join('\n'), {
    suite: 'iommufd',
    stepPrefix: 'selftest-iommufd/iommufd',
    cases: options.failing ? ['a.ok_case', 'a.fails', 'a.killed', 'a.late'] : ['a.ok_case'],
    budgetSeconds: 300,
  });
  return judgeBoot({
    iommu: 'intel',
    accel: 'tcg',
    console: options.console,
    consolePath: '/tmp/console.log',
    outcomes: [{ scenario: 'selftest-iommufd', goneDevices: [], devices: [], cases: run.cases, suites: [run.suite], caseReports: run.reports }],
    known: options.known ? parseKnownIssues(options.known) : [],
  });
}

test('verdict: every case ok and a clean log is a pass with the cases in the run', (t) => {
  const runs = judgedSelftest({ console: consoleWith(['[    2.100000] iommu-harness: step selftest-iommufd/iommufd/a.ok_case']) });
  const run = runs.find((candidate) => candidate.scenario === 'selftest-iommufd')!;
  t.is(run.verdict, 'pass');
  t.is(run.cases?.length, 1);
  t.deepEqual(run.suites?.map((suite) => suite.name), ['iommufd']);
});

test('verdict: a failing case is a finding of kind selftest naming the case, in its step', (t) => {
  const runs = judgedSelftest({ console: consoleWith([]), failing: true });
  const run = runs.find((candidate) => candidate.scenario === 'selftest-iommufd')!;
  t.is(run.verdict, 'fail');
  t.deepEqual(run.reports.map((report) => [report.kind, report.title]), [
    ['selftest', 'selftest failure in iommufd: a.fails'],
    ['selftest', 'selftest failure in iommufd: a.killed'],
  ]);
});

test('verdict: a kernel report during a suite fails it although every case said ok', (t) => {
  const console = consoleWith([
    '[    2.100000] iommu-harness: step selftest-iommufd/iommufd/a.ok_case',
    '[   12.000000] iommufd: Time out waiting for iommufd object to become free',
    '[   12.000001] WARNING: drivers/iommu/iommufd/main.c:123 at iommufd_object_remove+0x10/0x20, CPU#0: iommufd/123',
  ]);
  const run = judgedSelftest({ console }).find((candidate) => candidate.scenario === 'selftest-iommufd')!;
  t.is(run.verdict, 'fail');
  t.true(run.cases!.every((row) => row.result === 'ok'));
  t.true(run.reports.some((report) => report.kind !== 'selftest' && report.step === 'selftest-iommufd/iommufd/a.ok_case'));
});

test('verdict: a failing case the known-issues file lists is shown as known, not failing', (t) => {
  const runs = judgedSelftest({ console: consoleWith([]), failing: true, known: 'selftest failure in iommufd: a.fails | kind=selftest  # triaged\nselftest failure in iommufd: a.killed | kind=selftest  # triaged\n' });
  const run = runs.find((candidate) => candidate.scenario === 'selftest-iommufd')!;
  t.true(run.reports.every((report) => report.known === 'triaged'));
  t.is(run.verdict, 'pass');
});

test('verdict: a scenario none of whose steps could run on this kernel is inconclusive, never a pass', (t) => {
  const runs = judgeBoot({
    iommu: 'intel',
    accel: 'tcg',
    console: '[    0.000000] Linux version 6.1.192 (gcc) #1 SMP\n',
    consolePath: '/tmp/console.log',
    outcomes: [{ scenario: 'selftest-iommufd', goneDevices: [], devices: [], skippedSteps: [{ step: 'selftest-iommufd/iommufd', reason: 'the kernel has no mock IOMMU' }] }],
    known: [],
  });
  const run = runs.find((candidate) => candidate.scenario === 'selftest-iommufd')!;
  t.is(run.verdict, 'inconclusive');
  t.regex(run.inconclusive.join('\n'), /^skipped: nothing of selftest-iommufd could run on this kernel: the kernel has no mock IOMMU$/m);
});

test('outputs: the table counts the cases per program and names the skip reasons; KTAP has a subtest per case; JUnit a testcase per case', (t) => {
  const runs = judgedSelftest({ console: consoleWith([]), failing: true });
  const result = resultOf(runs);
  const table = renderTable(result);
  t.regex(table, /intel\/selftest-iommufd: cases: 1 ok, 2 not ok, 1 skipped, of 4/);
  t.regex(table, /intel\/selftest-iommufd: {3}iommufd: 1 ok, 2 not ok, 1 skipped of 4 in 601\.0 s, 1 not reached within the 300 s budget/);
  t.regex(table, /intel\/selftest-iommufd: {3}skipped \(1\): not reached: the time budget of 300 s ran out before it started/);
  t.regex(table, /intel\/selftest-iommufd: SELFTEST: selftest failure in iommufd: a\.fails \[selftest-iommufd\/iommufd\/a\.fails\]/);
  const ktap = renderKtap(result).split('\n');
  const subtest = ktap.indexOf('    # Subtest: intel.selftest-iommufd');
  t.deepEqual(ktap.slice(subtest + 1, subtest + 8), [
    '    1..4',
    '    ok 1 iommufd.a.ok_case',
    '    # not ok',
    '    not ok 2 iommufd.a.fails',
    '    # killed after its time limit, no result printed',
    '    not ok 3 iommufd.a.killed',
    '    ok 4 iommufd.a.late # SKIP not reached: the time budget of 300 s ran out before it started',
  ]);
  const xml = renderRunJUnit(result);
  t.regex(xml, /<testcase classname="iommu\.intel\.selftest-iommufd\.iommufd" name="a\.ok_case" time="0\.3"\/>/);
  t.regex(xml, /<testcase classname="iommu\.intel\.selftest-iommufd\.iommufd" name="a\.fails" time="0\.8">\n\s*<failure message="not ok" type="selftest">iommufd: a\.fails: not ok/);
  t.regex(xml, /<testcase classname="iommu\.intel\.selftest-iommufd\.iommufd" name="a\.late" time="0\.0">\n\s*<skipped message="not reached: the time budget of 300 s/);
});

test("the real listings of 7.2.13's iommufd programs (captured from the built programs' -l): 246 iommufd cases, 8 iommufd_fail_nth cases", (t) => {
  const iommufd = parseKselftestList(fixture('iommufd-7.2.13.list'));
  t.is(iommufd.length, 246);
  t.is(new Set(iommufd).size, 246, 'no case twice');
  t.true(iommufd.includes('iommufd.simple_close'));
  t.true(iommufd.includes('iommufd_ioas.mock_domain_limit.area_auto_iova'));
  t.false(iommufd.some((name) => name.startsWith('global')), 'a fixture with no tests has no cases');
  t.deepEqual(parseKselftestList(fixture('iommufd_fail_nth-7.2.13.list')), [
    'basic_fail_nth.basic',
    'basic_fail_nth.map_domain',
    'basic_fail_nth.map_file_domain',
    'basic_fail_nth.map_two_domains',
    'basic_fail_nth.access_rw',
    'basic_fail_nth.access_pin',
    'basic_fail_nth.access_pin_domain',
    'basic_fail_nth.device',
  ]);
});

test("a group whose kobject could not be added (fault injection in iommu_group_alloc()) is released unannounced: that release is the failed allocation's, not a double release (captured 7.2.13 console)", (t) => {
  const log = `[    0.000000] Linux version 7.2.13 (gcc) #1 SMP PREEMPT_LAZY\n${fixture('fail-nth-group-alloc-7.2.13.console')}`;
  const accounting = accountGroups(parseKernelLog(log).groupEvents);
  t.deepEqual(accounting.anomalies, []);
  t.true(accounting.groups.length > 10);
  t.true(accounting.groups.every((group) => group.released));
  // The same release with nothing failed before it is still a double release.
  const doubled = accountGroups(parseKernelLog('[    1.0] iommu: Allocated group 3\n[    1.1] iommu: Releasing group 3\n[    1.2] iommu: Releasing group 3\n').groupEvents);
  t.deepEqual(doubled.anomalies.map((anomaly) => anomaly.kind), ['double-release']);
});

test("a real case-by-case run of 7.2.13's iommufd on intel-iommu under TCG (captured .tap): every listed case a row, 241 ok and the viommu-less variants skipped with the suite's reason", (t) => {
  const cases = parseKselftestList(fixture('iommufd-7.2.13.list'));
  const run = parseCaseLoop(fixture('iommufd-7.2.13-intel.tap'), { suite: 'iommufd', stepPrefix: 'selftest-iommufd/iommufd', cases });
  t.is(run.cases.length, 246);
  t.is(run.cases.filter((row) => row.result === 'ok').length, 241);
  const skipped = run.cases.filter((row) => row.result === 'skip');
  t.is(skipped.length, 5);
  t.true(skipped.every((row) => row.reason === 'Skipping test for variant no_viommu' && row.name.startsWith('iommufd_viommu.no_viommu.')));
  t.deepEqual(run.reports, []);
  t.true(run.suite.seconds > 10 && run.suite.seconds < 600, `${run.suite.seconds} s`);
  const nth = parseCaseLoop(fixture('iommufd_fail_nth-7.2.13-intel.tap'), { suite: 'iommufd_fail_nth', stepPrefix: 'selftest-iommufd/iommufd_fail_nth', cases: parseKselftestList(fixture('iommufd_fail_nth-7.2.13.list')) });
  t.deepEqual(nth.cases.map((row) => row.result), Array(8).fill('ok'));
});

test("7.2.13's generic page-table KUnit format suites on the console (captured): 161 cases across the five formats, all ok", (t) => {
  const parsed = parseTap(kunitConsoleKtap(fixture('kunit-fmt-7.2.13.console')));
  t.is(parsed.planned, 5);
  t.deepEqual(parsed.missing, []);
  t.is(parsed.cases.length, 161);
  t.true(parsed.cases.every((row) => row.result === 'ok'));
  t.deepEqual([...new Set(parsed.cases.map((row) => row.name.split('.')[0]))], ['amdv1_fmt_test', 'amdv1_mock_fmt_test', 'vtdss_fmt_test', 'riscv_64_fmt_test', 'x86_64_fmt_test']);
  t.true(parsed.cases.some((row) => /^x86_64_fmt_test\.test_entry_oa\.\S+$/.test(row.name)), 'parameterised cases are named suite.test.param');
});

test("7.2.13's <fmt>_iommu_test suites in a booted SMP guest (captured): the leak check's assertion is the first failure's diagnostic, and the cascade is failures too", (t) => {
  const parsed = parseTap(kunitConsoleKtap(fixture('kunit-iommu-test-cascade-7.2.13.console')));
  const failed = parsed.cases.filter((row) => row.result === 'not ok');
  t.true(failed.length > 5);
  t.deepEqual(parsed.cases[0] && [parsed.cases[0].name, parsed.cases[0].result], ['amdv1_iommu_test.test_increase_level.amdv1_cfg_0', 'ok']);
  t.is(parsed.cases[1]?.result, 'skip');
  const first = failed[0]!;
  t.is(first.name, 'amdv1_iommu_test.test_map_simple.amdv1_cfg_0');
  t.true(first.diagnostics.some((line) => line.includes('ASSERTION FAILED at drivers/iommu/generic_pt/fmt/../kunit_iommu_pt.h:473')));
  t.true(failed[1]!.diagnostics.some((line) => line.includes('failed to initialize: -16')));
});

test('verdict: a suite scenario that marked a step of its own (huge pages) but ran no case is inconclusive, never a pass (6.12.118: its iommufd selftest does not build)', (t) => {
  const runs = judgeBoot({
    iommu: 'intel',
    accel: 'tcg',
    console: '[    0.000000] Linux version 6.12.118 (gcc) #1 SMP\n[    2.0] iommu-harness: step selftest-iommufd/hugepages\n',
    consolePath: '/tmp/console.log',
    outcomes: [{ scenario: 'selftest-iommufd', goneDevices: [], devices: [], runsSuites: true, skippedSteps: [{ step: 'selftest-iommufd/iommufd', reason: 'tools/testing/selftests/iommu does not build from this tree' }] }],
    known: [],
  });
  const run = runs.find((candidate) => candidate.scenario === 'selftest-iommufd')!;
  t.is(run.verdict, 'inconclusive');
  t.regex(run.inconclusive.join('\n'), /does not build from this tree/);
});
