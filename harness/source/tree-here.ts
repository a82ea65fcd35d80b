// The kernel tree the user stands in, if any: `run` without --src tests it,
// as `check` does, rather than Debian's 6.12 behind the user's back.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { git } from './git.ts';

/** A top-level kernel Makefile names its VERSION and PATCHLEVEL first. */
export function isKernelMakefile(text: string): boolean {
  return /^VERSION = \d+$/m.test(text) && /^PATCHLEVEL = \d+$/m.test(text);
}

/** The top of the kernel git tree containing `dir`, or undefined when `dir` is in none. */
export async function kernelTreeAt(dir: string): Promise<string | undefined> {
  const top = await git(dir, ['rev-parse', '--show-toplevel'], { allowFailure: true }).catch(() => undefined);
  if (!top || top.exitCode !== 0) return undefined;
  const root = top.stdout.trim();
  const makefile = await readFile(path.join(root, 'Makefile'), 'utf8').catch(() => '');
  return isKernelMakefile(makefile) ? root : undefined;
}
