// The requirement registry is the only list of host programs: every program
// the source starts must be in it, with its Debian package, and the preflight
// built on it must name what is missing, fast, before any work.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { execa } from 'execa';
import { describeMissing, locate, missingRequirements } from '../../harness/host/preflight.ts';
import { installPurposes, packagesFor, requirements } from '../../harness/host/requirements.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const cli = path.join(root, 'bin/iommu-harness.js');

async function sourceFiles(dir: string): Promise<string[]> {
  const entries = await readdir(path.join(root, dir), { withFileTypes: true });
  const files: string[] = [];
  for (const entry of entries) {
    const relative = path.join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await sourceFiles(relative)));
    else if (/\.(ts|mjs|js)$/.test(entry.name)) files.push(relative);
  }
  return files;
}

/** Program names passed as a literal to execa/spawn, to a `file:` of a command, or started by zx. */
function spawnedPrograms(text: string): string[] {
  const patterns = [
    /\b(?:execa|execaSync|spawn|spawnSync|execFile|binutils)\(\s*['"`]([^'"`\s]+)['"`]/g,
    /\bfile:\s*['"]([^'"\s]+)['"],\s*args:/g,
    /\bqemuBinary\s*=\s*['"]([^'"]+)['"]/g,
    /\$`([a-z0-9_.+-]+)[\s`]/g,
  ];
  return patterns.flatMap((pattern) => [...text.matchAll(pattern)].map((match) => match[1]!));
}

// Node itself and the npm it ships with (the README's prerequisite), and programs of Debian's
// essential packages, which every Debian machine has.
const basePrograms = new Set(['node', 'npm', 'apt-get', 'sh', 'true']);

test('every program the source starts is in the requirement registry', async (t) => {
  const registered = new Set(requirements.map((requirement) => path.basename(requirement.name)));
  const files = (await Promise.all(['harness', 'scripts', 'scenarios', 'test'].map(sourceFiles))).flat();
  const found = new Map<string, string>();
  for (const file of files) {
    for (const program of spawnedPrograms(await readFile(path.join(root, file), 'utf8'))) found.set(path.basename(program), file);
  }
  // The scan itself must see the known spawns, or it proves nothing.
  for (const known of ['qemu-system-x86_64', 'git', 'make', 'addr2line', 'setpriv', 'dropbearkey']) t.true(found.has(known), `the scan missed ${known}`);
  const missing = [...found].filter(([program]) => !registered.has(program) && !basePrograms.has(program));
  t.deepEqual(missing, [], `spawned but not in harness/host/requirements.ts: ${missing.map(([program, file]) => `${program} (${file})`).join(', ')}`);
});

test('the kernel build tools that bit fresh machines are registered with their packages', (t) => {
  const packageOf = (name: string) => requirements.find((requirement) => requirement.name === name)?.package;
  t.is(packageOf('rsync'), 'rsync');
  t.is(packageOf('/usr/include/libelf.h'), 'libelf-dev');
  t.is(packageOf('/usr/include/openssl/ssl.h'), 'libssl-dev');
  t.is(packageOf('bc'), 'bc');
  t.is(packageOf('setpriv'), 'util-linux');
  const packages = packagesFor(installPurposes);
  t.is(new Set(packages).size, packages.length, 'each package once');
  t.false(packages.includes('debootstrap'), 'CI-only packages are not a user install');
});

test('the preflight names each missing program and the package that installs it', async (t) => {
  t.is(await locate('sh', { PATH: '/nonexistent:/bin' }), '/bin/sh');
  t.is(await locate('sh', { PATH: '/nonexistent' }), undefined);
  const rsync = requirements.find((requirement) => requirement.name === 'rsync')!;
  t.regex(describeMissing([rsync]), /^missing rsync \(rsync: .*headers_install.*\)\. Install: apt-get install --no-install-recommends rsync/);
  const started = Date.now();
  await missingRequirements(['harness', 'kernel-build', 'debian-source', 'debian-6.12'], { includeOptional: true });
  t.true(Date.now() - started < 2000, 'the preflight takes well under 2 s');
});

test('run stops with exit 2 before any work when a program is missing, naming it and its package', async (t) => {
  const cache = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-test-cache-'));
  // Node is started by its absolute path; PATH holds nothing the harness needs.
  const result = await execa(process.execPath, [cli, 'run', '--iommu', 'intel'], {
    reject: false,
    env: { PATH: '/nonexistent', IOMMU_HARNESS_CACHE: cache },
    extendEnv: false,
    timeout: 60_000,
  });
  await rm(cache, { recursive: true, force: true });
  t.is(result.exitCode, 2, result.stderr);
  t.regex(result.stderr, /missing .*qemu-system-x86_64 \(qemu-system-x86: /);
  t.regex(result.stderr, /rsync \(rsync: /);
  t.regex(result.stderr, /apt-get install --no-install-recommends .*qemu-system-x86/);
  t.notRegex(result.stderr, /unpacking|building/);
});
