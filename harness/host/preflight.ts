// Before any unpack or build: is every program and file of the registry here?
// A long build must never start on a machine that cannot finish it (6.12's
// headers_install runs rsync only after the whole bzImage is built). Looks
// files up without running anything, so it takes milliseconds.
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { HarnessError } from '../errors.ts';
import { requirements, runPurposes, type Purpose, type Requirement } from './requirements.ts';

async function usable(file: string, mode: number): Promise<boolean> {
  return access(file, mode).then(
    () => true,
    () => false,
  );
}

/** Where a program name resolves on PATH, or undefined. An absolute name is checked as a file. */
export async function locate(name: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  if (path.isAbsolute(name)) return (await usable(name, constants.R_OK)) ? name : undefined;
  for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, name);
    if (await usable(candidate, constants.X_OK)) return candidate;
  }
  return undefined;
}

/** The requirements of these purposes that this machine lacks (optional ones only when asked). */
export async function missingRequirements(purposes: readonly Purpose[], options: { includeOptional?: boolean } = {}): Promise<Requirement[]> {
  const wanted = requirements.filter((requirement) => purposes.includes(requirement.purpose) && (options.includeOptional || !requirement.optional));
  const found = await Promise.all(wanted.map((requirement) => locate(requirement.name)));
  return wanted.filter((_, index) => found[index] === undefined);
}

/** One line a user acts on: what is missing, and the exact command that installs it. */
export function describeMissing(missing: readonly Requirement[]): string {
  const names = missing.map((requirement) => `${requirement.name} (${requirement.package}: ${requirement.why})`);
  const packages = [...new Set(missing.map((requirement) => requirement.package))];
  return `missing ${names.join('; ')}. Install: apt-get install --no-install-recommends ${packages.join(' ')} (or run iommu-harness setup as root)`;
}

const checks = new Map<string, Promise<void>>();

/** Throws a 'prerequisite' HarnessError naming every missing program and its package; a passed check is not repeated. */
export function preflight(options: { debianSource: string | undefined; arm64?: boolean; selftests?: boolean }): Promise<void> {
  const purposes = runPurposes(options);
  const key = purposes.join(',');
  let check = checks.get(key);
  if (!check) {
    check = missingRequirements(purposes).then((missing) => {
      if (missing.length > 0) throw new HarnessError('prerequisite', describeMissing(missing));
    });
    checks.set(key, check);
    // A failed check is forgotten: the user may install and retry in the same process (nightly, tests).
    check.catch(() => checks.delete(key));
  }
  return check;
}
