// What lets the harness judge Debian 12's 6.1 LTS beside 6.12: fragment
// options annotated with the release that brought them, Debian's sources by
// release, and scenario steps skipped (with the reason) on a kernel without
// the feature they need.
import test from 'ava';
import { loadFragments } from '../../harness/build/index.ts';
import { packagesFor, runPurposes } from '../../harness/host/requirements.ts';
import { absentOptions, makefileVersion, mergeFragments, parseConfig } from '../../harness/build/kconfig.ts';
import { parsePlan } from '../../harness/nightly/plan.ts';
import { overallVerdict, type HarnessResult } from '../../harness/report/result.ts';
import { renderTable } from '../../harness/report/table.ts';
import { judgeBoot } from '../../harness/report/verdict.ts';
import { featuresOf, missingFeatureReason } from '../../harness/scenario/features.ts';
import { debianReleaseOf, isInstalledRelease } from '../../harness/source/debian-source.ts';
import { debianMirror, expiredRelease, kernelSourcePackages, parseDeb822Sources, parseOneLineSources, privateAptOptions, showVersion } from '../../harness/source/debian-download.ts';
import { releaseNotice } from '../../harness/source/releases.ts';

const v61 = { major: 6, minor: 1 };
const v612 = { major: 6, minor: 12 };

test('a fragment option annotated `# since X.Y` is left out of older kernels and listed, kept in newer ones', (t) => {
  const fragments = [{ name: 'vfio.config', text: 'CONFIG_VFIO=y\nCONFIG_IOMMUFD=y  # since 6.2\nCONFIG_VFIO_DEVICE_CDEV=y # since 6.6\n' }];
  t.deepEqual(Object.fromEntries(mergeFragments(fragments, v61)), { CONFIG_VFIO: 'y' });
  t.deepEqual(absentOptions(fragments, v61), [
    { option: 'CONFIG_IOMMUFD', since: { major: 6, minor: 2 } },
    { option: 'CONFIG_VFIO_DEVICE_CDEV', since: { major: 6, minor: 6 } },
  ]);
  t.deepEqual(Object.fromEntries(mergeFragments(fragments, v612)), { CONFIG_VFIO: 'y', CONFIG_IOMMUFD: 'y', CONFIG_VFIO_DEVICE_CDEV: 'y' });
  t.deepEqual(absentOptions(fragments, v612), []);
  // A 7.0 tree is newer than 6.6, whatever the minor number says.
  t.deepEqual(absentOptions(fragments, { major: 7, minor: 0 }), []);
  // Without a version (a tree whose Makefile could not be read) every option is asked for.
  t.is(mergeFragments(fragments).get('CONFIG_IOMMUFD'), 'y');
  // The annotation is not part of the value, and other trailing text is still refused.
  t.is(parseConfig('CONFIG_IOMMUFD=y  # since 6.2\n').get('CONFIG_IOMMUFD'), 'y');
  t.throws(() => parseConfig('CONFIG_IOMMUFD=y # needed\nBAD\n', 'x.config'), { message: /x\.config:2: not a config line/ });
});

test('a later fragment that sets an annotated option without the annotation asks for it on every kernel', (t) => {
  const fragments = [
    { name: 'vfio.config', text: 'CONFIG_IOMMUFD=y  # since 6.2\n' },
    { name: 'user.config', text: 'CONFIG_IOMMUFD=y\n' },
  ];
  t.is(mergeFragments(fragments, v61).get('CONFIG_IOMMUFD'), 'y');
  t.deepEqual(absentOptions(fragments, v61), []);
});

test("the shipped fragments on 6.1 leave out exactly the options 6.1 lacks", async (t) => {
  const fragments = await loadFragments([]);
  t.deepEqual(absentOptions(fragments, v61).map((option) => option.option).sort(), [
    'CONFIG_IOMMUFD',
    'CONFIG_VFIO_CONTAINER',
    'CONFIG_VFIO_DEVICE_CDEV',
    'CONFIG_VFIO_GROUP',
  ]);
  const on61 = mergeFragments(fragments, v61);
  for (const option of ['CONFIG_VFIO', 'CONFIG_VFIO_PCI', 'CONFIG_VFIO_IOMMU_TYPE1', 'CONFIG_VFIO_NOIOMMU', 'CONFIG_INTEL_IOMMU', 'CONFIG_VIRTIO_IOMMU', 'CONFIG_PROVE_LOCKING']) {
    t.is(on61.get(option), 'y', option);
  }
  t.deepEqual(absentOptions(fragments, v612), []);
});

test("a kernel's version is read from its Makefile", (t) => {
  t.deepEqual(makefileVersion('# SPDX\nVERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 192\n'), v61);
  t.is(makefileVersion('all:\n'), undefined);
});

test('--src names a git tree or a Debian release; an unknown Debian release is a usage error', (t) => {
  t.is(debianReleaseOf(undefined), '6.12');
  t.is(debianReleaseOf('debian:6.1'), '6.1');
  t.is(debianReleaseOf('debian:6.12'), '6.12');
  t.is(debianReleaseOf('/home/me/linux'), undefined);
  t.throws(() => debianReleaseOf('debian:5.10'), { message: /linux-source-6\.12 and linux-source-6\.1, not 5\.10/ });
});

test("a kernel's features come from its .config; a missing one names the option and the release that brought it", (t) => {
  t.deepEqual([...featuresOf('CONFIG_IOMMUFD=y\nCONFIG_VFIO_DEVICE_CDEV=y\n')].sort(), ['iommufd', 'vfio-cdev']);
  t.deepEqual([...featuresOf('CONFIG_VFIO=y\n# CONFIG_VFIO_DEVICE_CDEV is not set\n')], []);
  t.is(missingFeatureReason('vfio-cdev'), "the kernel has no VFIO's device cdev (/dev/vfio/devices): CONFIG_VFIO_DEVICE_CDEV is not set (the option arrived in 6.6)");
});

test('a skipped step is in the run, the table and the JSON; the verdict covers the steps that ran', (t) => {
  const reason = missingFeatureReason('vfio-cdev');
  const runs = judgeBoot({
    iommu: 'intel',
    accel: 'tcg',
    // 6.1's messages: a device leaving its group says so.
    console: [
      '[    0.500000] pci 0000:01:00.0: Adding to iommu group 3',
      '[    5.000000] iommu-harness: step vfio-bind-unbind/bind',
      '[    6.000000] iommu-harness: step vfio-bind-unbind/remove',
      '[    6.100000] pci 0000:01:00.0: Removing from iommu group 3',
      '[    6.100100] iommu: Releasing group 3',
      '[    6.200000] iommu-harness: device-gone 0000:01:00.0',
    ].join('\n'),
    consolePath: 'console.log',
    outcomes: [{ scenario: 'vfio-bind-unbind', goneDevices: ['0000:01:00.0'], devices: ['0000:01:00.0'], skippedSteps: [{ step: 'vfio-bind-unbind/iommufd', reason }] }],
    known: [],
  });
  const run = runs.find((candidate) => candidate.scenario === 'vfio-bind-unbind')!;
  t.is(run.verdict, 'pass');
  t.deepEqual(run.skippedSteps, [{ step: 'vfio-bind-unbind/iommufd', reason }]);
  t.false('skippedSteps' in runs[0]!, 'no empty list on runs that skipped nothing');
  const result: HarnessResult = { verdict: overallVerdict(runs), kernel: { source: 'debian:linux-source-6.1', commit: 'c', patches: [], release: '6.1.192' }, runs, timings: { buildSeconds: 0, bootSeconds: {}, totalSeconds: 0 }, accelerator: { accel: 'tcg', reason: 'test' } };
  const table = renderTable(result);
  t.regex(table, /vfio-bind-unbind +PASS \(1 step\(s\) skipped\)/);
  t.regex(table, /intel\/vfio-bind-unbind: skipped step vfio-bind-unbind\/iommufd: the kernel has no VFIO's device cdev/);
  t.deepEqual(JSON.parse(JSON.stringify(result)).runs[1].skippedSteps, [{ step: 'vfio-bind-unbind/iommufd', reason }]);
});

test('a nightly plan names Debian sources by release, next to trees', (t) => {
  const plan = parsePlan(JSON.stringify({ kernels: [{}, { src: 'debian:6.1' }, { src: 'linux', ref: 'v6.13' }] }), 'plan.json', {
    baseDir: '/plans',
    builtinProfiles: { lockdep: '/k/lockdep.config' },
    scenarios: ['vfio-bind-unbind'],
  });
  t.deepEqual(plan.kernels.map((kernel) => [kernel.name, kernel.src]), [
    ['default', undefined],
    ['debian-6-1', 'debian:6.1'],
    ['linux-v6-13', '/plans/linux'],
  ]);
});

test("a run checks the Debian source it will unpack, and only that one", (t) => {
  t.deepEqual(packagesFor(runPurposes({ debianSource: '6.1' })).filter((name) => name.startsWith('linux-source')), ['linux-source-6.1']);
  t.deepEqual(packagesFor(runPurposes({ debianSource: '6.12' })).filter((name) => name.startsWith('linux-source')), ['linux-source-6.12']);
  t.deepEqual(packagesFor(runPurposes({ debianSource: undefined })).filter((name) => name.startsWith('linux-source') || name === 'xz-utils'), []);
});

test('debian:7.2 and debian:unstable name Debian unstable sources; older unknown releases stay a usage error', (t) => {
  t.is(debianReleaseOf('debian:7.2'), '7.2');
  t.is(debianReleaseOf('debian:unstable'), 'unstable');
  t.is(debianReleaseOf('debian:6.13'), '6.13');
  t.false(isInstalledRelease('7.2'));
  t.true(isInstalledRelease('6.1'));
  t.throws(() => debianReleaseOf('debian:6.6'), { message: /not 6\.6; a newer release comes from Debian sid/ });
  t.throws(() => debianReleaseOf('debian:sid'), { message: /not sid/ });
});

test("a downloaded Debian source needs apt, dpkg-deb and Debian's archive key, not an installed linux-source package", (t) => {
  const packages = packagesFor(runPurposes({ debianSource: '7.2' }));
  t.deepEqual(packages.filter((name) => name.startsWith('linux-source')), []);
  for (const name of ['apt', 'dpkg', 'debian-archive-keyring', 'xz-utils', 'tar']) t.true(packages.includes(name), name);
  t.deepEqual(runPurposes({ debianSource: 'unstable' }), runPurposes({ debianSource: '7.2' }));
});

test('the host mirror is read from one-line and deb822 sources, Debian archive only', (t) => {
  const deb822 = [
    'Types: deb',
    '# http://snapshot.debian.org/archive/debian/20250520T000000Z',
    'URIs: http://deb.debian.org/debian',
    'Suites: bookworm bookworm-updates',
    'Components: main',
    'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
    '',
    'Types: deb',
    'URIs: http://deb.debian.org/debian-security',
    'Suites: bookworm-security',
    'Components: main',
  ].join('\n');
  t.is(debianMirror(parseDeb822Sources(deb822)), 'http://deb.debian.org/debian');
  t.is(debianMirror(parseDeb822Sources('Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n')), undefined);
  t.is(debianMirror(parseDeb822Sources('Types: deb\nURIs: http://local/debian\nSuites: bookworm\nEnabled: no\n')), undefined);
  const oneLine = '# comment\ndeb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\ndeb [arch=amd64] http://ftp.de.debian.org/debian/ bookworm main\n';
  t.deepEqual(parseOneLineSources(oneLine).map((source) => source.uri), ['https://packages.cloud.google.com/apt', 'http://ftp.de.debian.org/debian/']);
  t.is(debianMirror(parseOneLineSources(oneLine)), 'http://ftp.de.debian.org/debian');
});

test("the private apt state never names the host's sources, lists, status or locks", (t) => {
  const options = privateAptOptions('/cache/sources/apt-sid');
  t.true(options.includes('Dir::Etc::sourcelist=/cache/sources/apt-sid/sources.list'));
  t.true(options.includes('Dir::Etc::sourceparts=/nonexistent'));
  t.true(options.includes('Dir::State::Lists=/cache/sources/apt-sid/lists'));
  t.true(options.includes('Dir::State::status=/dev/null'));
  t.true(options.includes('Debug::NoLocking=1'));
  t.false(options.some((option) => option.includes('/etc/apt') || option.includes('/var/lib')));
});

test("unstable's kernel sources are its linux-source-X.Y packages, newest first; show's Version is the exact one", (t) => {
  t.deepEqual(kernelSourcePackages(['linux-source', 'linux-source-7.2', 'linux-source-6.19', 'linux-source-7.10', 'linux-source-7.2-rt']), [
    'linux-source-7.10',
    'linux-source-7.2',
    'linux-source-6.19',
  ]);
  t.is(showVersion('Package: linux-source-7.2\nSource: linux\nVersion: 7.2.13-1\nInstalled-Size: 1\n'), '7.2.13-1');
  t.is(showVersion('Package: x\n'), undefined);
});

test('a tree newer than every verified release gets a one-line notice naming them; one inside the range none', (t) => {
  t.is(releaseNotice({ major: 7, minor: 2 }), undefined);
  t.is(releaseNotice({ major: 6, minor: 6 }), undefined);
  t.is(releaseNotice({ major: 6, minor: 1 }), undefined);
  const newer = releaseNotice({ major: 7, minor: 3 });
  t.regex(newer ?? '', /^notice: Linux 7\.3 is newer than every release the harness was verified on \(6\.1, 6\.12, 7\.2\)/);
  t.false((newer ?? '').includes('\n'));
  t.regex(releaseNotice({ major: 5, minor: 15 }) ?? '', /older than every release the harness was verified on \(6\.1, 6\.12, 7\.2\)/);
});

test('the JSON and the table carry the Debian package version', (t) => {
  const result: HarnessResult = {
    verdict: 'pass',
    kernel: { source: 'debian:linux-source-7.2', packageVersion: '7.2.13-1', commit: 'c', patches: [], release: '7.2.13' },
    runs: [],
    timings: { buildSeconds: 0, bootSeconds: {}, totalSeconds: 0 },
    accelerator: { accel: 'tcg', reason: 'test' },
  };
  t.regex(renderTable(result), /^kernel 7\.2\.13 from debian:linux-source-7\.2 \(7\.2\.13-1\)$/m);
  t.is(JSON.parse(JSON.stringify(result)).kernel.packageVersion, '7.2.13-1');
});

test("a mirror whose sid Release file expired is named with how long ago (apt's own message), other failures are not", (t) => {
  // apt-get update against a mirror that stopped following sid (seen on 2026-12-07).
  const output = 'E: Release file for http://deb.debian.org/debian/dists/sid/InRelease is expired (invalid since 31d 15h 51min 59s). Updates for this repository will not be applied.';
  t.is(expiredRelease(output), '31d 15h 51min 59s');
  t.is(expiredRelease("E: The repository 'http://deb.debian.org/debian sid Release' does not have a Release file."), undefined);
  t.is(expiredRelease(''), undefined);
});
