// `iommu-harness setup`: installs the Debian packages the harness uses.
// Not as root, it prints the exact command instead of half-installing.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { HarnessError } from '../errors.ts';

export const packageList = fileURLToPath(new URL('../../scripts/debian-packages.txt', import.meta.url));

export async function debianPackages(): Promise<string[]> {
  const text = await readFile(packageList, 'utf8');
  return text
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .filter(Boolean);
}

export function aptCommand(packages: string[]): string[] {
  return ['apt-get', 'install', '-y', '--no-install-recommends', ...packages];
}

export async function setup(): Promise<void> {
  const packages = await debianPackages();
  if (process.getuid?.() !== 0) {
    process.stdout.write(`Run as root:\n  apt-get update && ${aptCommand(packages).join(' ')}\n`);
    return;
  }
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  for (const argv of [['apt-get', 'update'], aptCommand(packages)]) {
    const [file, ...args] = argv as [string, ...string[]];
    const result = await execa(file, args, { env, stdio: 'inherit', reject: false, timeout: 30 * 60_000 });
    if (result.exitCode !== 0) throw new HarnessError('setup', `${argv.join(' ')} failed with exit code ${result.exitCode}`);
  }
}
