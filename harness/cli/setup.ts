// `iommu-harness setup`: installs the Debian packages of the requirement
// registry. Not as root, it prints the exact command instead of half-installing.
import { execa } from 'execa';
import { HarnessError } from '../errors.ts';
import { installPurposes, packagesFor } from '../host/requirements.ts';

export function aptCommand(packages: string[]): string[] {
  return ['apt-get', 'install', '-y', '--no-install-recommends', ...packages];
}

export async function setup(): Promise<void> {
  const packages = packagesFor(installPurposes);
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
