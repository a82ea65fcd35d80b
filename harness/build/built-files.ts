// What kbuild compiled, read back from the build directory, for the files a
// patch changed. Each object's `.NAME.o.cmd` names its source (`source_X :=`)
// and every file the compiler read for it (`deps_X :=`, from -MMD), as
// absolute paths into the worktree: exact, where guessing from Makefiles and
// the config would not be (a .c #included by another, a header used by one
// object only).
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { git } from '../source/git.ts';

/** The record kept beside a built kernel, so a kernel from the cache still knows. */
export const builtChangesFile = 'changed-files.json';

export interface BuiltChanges {
  /** Files that differ from the base commit: the patches and any uncommitted change, worktree-relative. */
  changed: string[];
  /** Those of them the compiler read for some object of this build. */
  built: string[];
}

/** Those of `files` (worktree-relative) that some object of the build was compiled from or included. */
export async function compiledSources(buildDir: string, worktree: string, files: readonly string[]): Promise<Set<string>> {
  const prefix = `${path.resolve(worktree)}/`;
  // A path is followed by a space, a newline or a backslash-newline in a .cmd file.
  const wanted = files.map((file) => ({ file, pattern: new RegExp(`${(prefix + file).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?=[\\s\\\\]|$)`, 'm') }));
  const sources = new Set<string>();
  const walk = async (dir: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    await Promise.all(
      entries.map(async (entry) => {
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) return walk(full);
        if (!entry.name.endsWith('.o.cmd')) return;
        const text = await readFile(full, 'utf8').catch(() => '');
        for (const { file, pattern } of wanted) if (!sources.has(file) && pattern.test(text)) sources.add(file);
      }),
    );
  };
  await walk(buildDir);
  return sources;
}

/** Files of the worktree that differ from `base`: committed patches, applied diffs, new untracked files. */
export async function changedFiles(worktree: string, base: string): Promise<string[]> {
  const diff = await git(worktree, ['diff', '--name-only', '--no-renames', base]);
  const untracked = await git(worktree, ['ls-files', '--others', '--exclude-standard']);
  return [...new Set([...diff.stdout.split('\n'), ...untracked.stdout.split('\n')].map((line) => line.trim()).filter(Boolean))].sort();
}

export async function recordBuiltChanges(kernelDir: string, buildDir: string, worktree: string, base: string): Promise<BuiltChanges> {
  const changed = await changedFiles(worktree, base);
  const compiled = changed.length > 0 ? await compiledSources(buildDir, worktree, changed) : new Set<string>();
  const record: BuiltChanges = { changed, built: changed.filter((file) => compiled.has(file)) };
  await writeFile(path.join(kernelDir, builtChangesFile), `${JSON.stringify(record, null, 2)}\n`);
  return record;
}

/** The record of a built kernel; undefined for a kernel an older harness built. */
export async function readBuiltChanges(kernelDir: string): Promise<BuiltChanges | undefined> {
  try {
    return JSON.parse(await readFile(path.join(kernelDir, builtChangesFile), 'utf8')) as BuiltChanges;
  } catch {
    return undefined;
  }
}
