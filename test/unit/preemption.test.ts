// The preemption model is the harness's choice where the kernel offers it (PREEMPT_NONE on 6.1
// and 6.12) and the release's default where it does not (PREEMPT_LAZY on 7.2 x86), stated with
// the reason. The .config excerpts are the PREEMPT lines of real builds of each release.
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { describePreemption, preemptionOf, preemptionRequest } from '../../harness/build/preemption.ts';
import { renderTable } from '../../harness/report/table.ts';
import type { HarnessResult } from '../../harness/report/result.ts';

const config612 = [
  'CONFIG_PREEMPT_NONE_BUILD=y',
  'CONFIG_PREEMPT_NONE=y',
  '# CONFIG_PREEMPT_VOLUNTARY is not set',
  '# CONFIG_PREEMPT is not set',
  '# CONFIG_PREEMPT_RT is not set',
  'CONFIG_PREEMPT_COUNT=y',
  '# CONFIG_PREEMPT_DYNAMIC is not set',
].join('\n');
const config72 = [
  'CONFIG_PREEMPT_BUILD=y',
  'CONFIG_ARCH_HAS_PREEMPT_LAZY=y',
  '# CONFIG_PREEMPT is not set',
  'CONFIG_PREEMPT_LAZY=y',
  '# CONFIG_PREEMPT_RT is not set',
  'CONFIG_PREEMPT_COUNT=y',
  'CONFIG_PREEMPTION=y',
  '# CONFIG_PREEMPT_DYNAMIC is not set',
].join('\n');

// kernel/Kconfig.preempt's choice, as 6.12 and 7.2 spell it (abridged to the lines that decide).
const kconfig612 = `choice
	prompt "Preemption Model"
	default PREEMPT_NONE

config PREEMPT_NONE
	bool "No Forced Preemption (Server)"
	depends on !PREEMPT_RT
	select PREEMPT_NONE_BUILD if !PREEMPT_DYNAMIC

config PREEMPT_VOLUNTARY
	bool "Voluntary Kernel Preemption (Desktop)"
	depends on !ARCH_NO_PREEMPT
`;
const kconfig72 = `choice
	prompt "Preemption Model"
	default PREEMPT_LAZY if ARCH_HAS_PREEMPT_LAZY
	default PREEMPT_NONE

config PREEMPT_NONE
	bool "No Forced Preemption (Server)"
	depends on !PREEMPT_RT
	depends on ARCH_NO_PREEMPT
	select PREEMPT_NONE_BUILD if !PREEMPT_DYNAMIC

config PREEMPT_VOLUNTARY
	bool "Voluntary Kernel Preemption (Desktop)"
	depends on !ARCH_HAS_PREEMPT_LAZY
`;

test('6.12: PREEMPT_NONE, the harness choice; 7.2: PREEMPT_LAZY, the release default, because PREEMPT_NONE is not offered', (t) => {
  const on612 = preemptionOf(config612);
  t.like(on612, { model: 'none', option: 'CONFIG_PREEMPT_NONE', dynamic: false });
  t.regex(on612?.reason ?? '', /the harness's choice/);
  const on72 = preemptionOf(config72);
  t.like(on72, { model: 'lazy', option: 'CONFIG_PREEMPT_LAZY', dynamic: false });
  t.regex(on72?.reason ?? '', /the release's default: this kernel does not offer PREEMPT_NONE/);
  t.is(describePreemption(on72!), `preemption: lazy (CONFIG_PREEMPT_LAZY): ${on72!.reason}`);
});

test("a fragment's model wins and is named as the reason", (t) => {
  const config = config612.replace('CONFIG_PREEMPT_NONE=y', '# CONFIG_PREEMPT_NONE is not set').replace('# CONFIG_PREEMPT is not set', 'CONFIG_PREEMPT=y');
  t.like(preemptionOf(config, new Map([['CONFIG_PREEMPT', 'y']])), { model: 'full', reason: 'asked for by a kconfig fragment (CONFIG_PREEMPT=y)' });
  t.deepEqual([...preemptionRequest(kconfig612, new Map([['CONFIG_PREEMPT', 'y']]))], []);
});

test('the harness asks for PREEMPT_NONE only where the kernel offers it and would not choose it by itself (no cache key change on 6.x)', (t) => {
  t.deepEqual([...preemptionRequest(kconfig612, new Map())], [], '6.12 defaults to PREEMPT_NONE already');
  t.deepEqual([...preemptionRequest(kconfig72, new Map())], [], '7.2 x86 does not offer it');
  const offeredElsewhere = kconfig612.replace('default PREEMPT_NONE', 'default PREEMPT_VOLUNTARY');
  t.deepEqual([...preemptionRequest(offeredElsewhere, new Map())], [['CONFIG_PREEMPT_NONE', 'y']]);
  t.deepEqual([...preemptionRequest(undefined, new Map())], []);
  t.deepEqual([...preemptionRequest('', new Map())], []);
});

// The real Kconfig files, when the cache holds the Debian trees (skipped with the reason otherwise).
const cacheSources = path.join(process.env.IOMMU_HARNESS_CACHE ?? path.join(os.homedir(), '.cache', 'iommu-harness'), 'sources');
const tree72 = path.join(cacheSources, 'debian-linux-source-7.2_7.2.13-1');
const real72 = existsSync(path.join(tree72, 'kernel/Kconfig.preempt')) ? test : test.skip;
real72(`7.2's own Kconfig.preempt offers no PREEMPT_NONE on x86${existsSync(tree72) ? '' : ` (skipped: no ${tree72})`}`, (t) => {
  t.deepEqual([...preemptionRequest(readFileSync(path.join(tree72, 'kernel/Kconfig.preempt'), 'utf8'), new Map())], []);
});
for (const release of ['6.12', '6.1']) {
  const tarball = `/usr/src/linux-source-${release}.tar.xz`;
  const installed = existsSync(tarball) ? test : test.skip;
  installed(`${release}'s own Kconfig.preempt defaults to PREEMPT_NONE: nothing asked, the cache key unchanged${existsSync(tarball) ? '' : ` (skipped: no linux-source-${release})`}`, (t) => {
    const text = execFileSync('tar', ['-xJOf', tarball, `linux-source-${release}/kernel/Kconfig.preempt`], { encoding: 'utf8' });
    t.deepEqual([...preemptionRequest(text, new Map())], []);
    t.regex(text, /^\s*default PREEMPT_NONE$/m);
  });
}

test('the table states the model and the JSON carries it', (t) => {
  const preemption = preemptionOf(config72)!;
  const result: HarnessResult = {
    verdict: 'pass',
    kernel: { source: 'debian:linux-source-7.2', packageVersion: '7.2.13-1', commit: 'c', patches: [], release: '7.2.13', preemption },
    runs: [],
    timings: { buildSeconds: 0, bootSeconds: {}, totalSeconds: 0 },
    accelerator: { accel: 'tcg', reason: 'test' },
  };
  t.regex(renderTable(result), /^preemption: lazy \(CONFIG_PREEMPT_LAZY\): the release's default/m);
  t.like(JSON.parse(JSON.stringify(result)).kernel.preemption, { model: 'lazy', option: 'CONFIG_PREEMPT_LAZY' });
});
