// `doctor` names the QEMU binary and version that serves each machine: what a
// machine can show is that QEMU's (the amd row's limits are QEMU 7.2's), so a
// user who put another QEMU first on PATH sees it per machine.
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { machineQemuChecks, type QemuProbe } from '../../harness/cli/doctor.ts';
import { iommuModels } from '../../harness/machine/machines.ts';

function fakeProbe(found: Record<string, string>, versions: Record<string, string>): QemuProbe & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    locate: async (name) => found[name],
    version: async (binary) => {
      asked.push(binary);
      return versions[binary];
    },
  };
}

test('one line per machine with its binary and version; a missing arm64 QEMU warns with its package, a missing x86 one fails', async (t) => {
  const x86 = '/opt/qemu/bin/qemu-system-x86_64';
  const probe = fakeProbe({ 'qemu-system-x86_64': x86 }, { [x86]: 'QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)' });
  const checks = await machineQemuChecks(probe);
  t.deepEqual(
    checks.map((check) => check.name),
    iommuModels.map((model) => `QEMU for ${model}`),
  );
  const amd = checks.find((check) => check.name === 'QEMU for amd')!;
  t.deepEqual(amd, { name: 'QEMU for amd', ok: true, required: true, detail: `${x86}: QEMU 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)` });
  const smmuv3 = checks.find((check) => check.name === 'QEMU for smmuv3')!;
  t.false(smmuv3.ok);
  t.false(smmuv3.required, 'the arm64 QEMU is needed only for --iommu smmuv3');
  t.is(smmuv3.detail, 'missing qemu-system-aarch64: apt-get install qemu-system-arm');
  t.deepEqual(probe.asked, [x86], 'each binary is asked its version once');

  const none = await machineQemuChecks(fakeProbe({}, {}));
  const intel = none.find((check) => check.name === 'QEMU for intel')!;
  t.true(intel.required && !intel.ok, 'no x86 QEMU is a failed required check');
  t.is(intel.detail, 'missing qemu-system-x86_64: apt-get install qemu-system-x86');
});

test('a QEMU that does not answer --version is a failed check naming the binary', async (t) => {
  const broken = '/tmp/broken/qemu-system-x86_64';
  const checks = await machineQemuChecks(fakeProbe({ 'qemu-system-x86_64': broken }, {}));
  const amd = checks.find((check) => check.name === 'QEMU for amd')!;
  t.false(amd.ok);
  t.is(amd.detail, `${broken} does not answer --version`);
});

// Found as locate() finds it, but synchronously: ava declares its tests before any await.
const hostQemu = (process.env.PATH ?? '')
  .split(path.delimiter)
  .filter(Boolean)
  .map((dir) => path.join(dir, 'qemu-system-x86_64'))
  .find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
(hostQemu ? test : test.skip)(`the host's own QEMU answers for the x86 machines${hostQemu ? '' : ' (skipped: no qemu-system-x86_64 on PATH)'}`, async (t) => {
  const checks = await machineQemuChecks();
  for (const model of ['intel', 'virtio', 'none', 'amd']) {
    const check = checks.find((candidate) => candidate.name === `QEMU for ${model}`);
    t.true(check?.ok, JSON.stringify(check));
    t.regex(check?.detail ?? '', new RegExp(`^${hostQemu}: QEMU \\d+\\.\\d+\\.\\d+`));
  }
});
