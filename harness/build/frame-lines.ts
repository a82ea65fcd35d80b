// Source lines for report frames, from a kernel built without DWARF. Line
// tables in every object cost about two minutes of each cold build on 2 cores,
// and only the few functions a report's stack names ever need them. So the
// kernel is built without debug info, and when a report needs file:line the
// objects that define its frames' functions are compiled once more, with -g,
// by the very command kbuild recorded for them (`savedcmd_` in `.NAME.o.cmd`),
// into a scratch folder. GCC generates the same code with and without -g, so
// a frame's offset into its function is the same in that object as in
// vmlinux; each match is checked on the function's size before it is trusted.
// The object files are found by name with nm over the build's objects; a
// static function that two objects define with the same size is left
// unsymbolized rather than guessed.
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { buildEnv } from '../child-env.ts';
import { register } from '../machine/reaper.ts';

export interface FrameQuery {
  function: string;
  offset: number;
}

/** Frame key: `function+offset` (offset in decimal). */
export const frameKey = (frame: FrameQuery) => `${frame.function}+${frame.offset}`;

/** One defined text symbol of `nm -A -S`: the object (build-relative), its size. */
interface Definition {
  object: string;
  size: bigint;
}

/** `nm -A -S --defined-only` lines (`OBJ:ADDR SIZE TYPE NAME`), text symbols of the wanted names only. */
export function parseObjectSymbols(output: string, wanted: ReadonlySet<string>): Map<string, Definition[]> {
  const found = new Map<string, Definition[]>();
  for (const line of output.split('\n')) {
    const match = /^(.+?\.o):[0-9a-f]+ ([0-9a-f]+) [tTwW] (\S+)$/.exec(line);
    if (!match?.[1] || !match[2] || !match[3] || !wanted.has(match[3])) continue;
    const list = found.get(match[3]) ?? [];
    list.push({ object: match[1], size: BigInt(`0x${match[2]}`) });
    found.set(match[3], list);
  }
  return found;
}

/** Sizes of text symbols in vmlinux (`nm -S`), every definition of each name. */
export function parseSymbolSizes(output: string): Map<string, bigint[]> {
  const sizes = new Map<string, bigint[]>();
  for (const line of output.split('\n')) {
    const match = /^[0-9a-f]+ ([0-9a-f]+) [tTwW] (\S+)$/.exec(line);
    if (!match?.[1] || !match[2]) continue;
    const list = sizes.get(match[2]) ?? [];
    list.push(BigInt(`0x${match[1]}`));
    sizes.set(match[2], list);
  }
  return sizes;
}

/**
 * The object that defines a function as linked into vmlinux: one whose definition
 * has the size vmlinux's has; undefined when none does or more than one could.
 */
export function objectFor(definitions: Definition[] | undefined, vmlinuxSizes: bigint[] | undefined): string | undefined {
  if (!definitions?.length || !vmlinuxSizes?.length) return undefined;
  const matching = definitions.filter((definition) => vmlinuxSizes.includes(definition.size));
  const objects = [...new Set(matching.map((definition) => definition.object))];
  return objects.length === 1 ? objects[0] : undefined;
}

/**
 * The compile command kbuild saved for `object` (6.1 names it `cmd_`, later
 * releases `savedcmd_`), turned into one that writes a debug-info copy to
 * `output`: the objtool pass that follows it is dropped (it changes no code
 * size), the dependency file goes to the scratch folder, `-g` is added last.
 */
export function debugCompileCommand(cmdFile: string, object: string, output: string, depFile: string): string | undefined {
  const line = cmdFile.split('\n').find((each) => each.startsWith(`savedcmd_${object} := `) || each.startsWith(`cmd_${object} := `));
  if (!line) return undefined;
  const command = line.slice(line.indexOf(' := ') + 4);
  // Only a C compile is redone: an assembler object has no function lines worth the trouble.
  const compile = command.split(/\s;\s/)[0] ?? '';
  if (!/(^|\s)-c\s/.test(compile) || !compile.includes(` -o ${object} `)) return undefined;
  const written = compile.replace(` -o ${object} `, ` -o ${output} `).replace(/-Wp,-MMD,\S+/, `-Wp,-MMD,${depFile}`);
  return `${written.trimEnd()} -g -fno-var-tracking -femit-struct-debug-baseonly`;
}

/** `nm -f sysv` on one object: a function's section-relative address, size and section. */
export function parseSysvSymbol(output: string, name: string): { value: bigint; size: bigint; section: string } | undefined {
  for (const line of output.split('\n')) {
    const fields = line.split('|').map((field) => field.trim());
    if (fields[0] !== name || !/FUNC/.test(fields[3] ?? '')) continue;
    const [value, size, section] = [fields[1], fields[4], fields[6]];
    if (!value || !size || !section) continue;
    return { value: BigInt(`0x${value}`), size: BigInt(`0x${size}`), section };
  }
  return undefined;
}

/** Runs the kernel's binutils tool `name` (`prefix`: '' or aarch64-linux-gnu-); a failure throws, naming it. */
export async function binutils(name: string, args: string[], options: { prefix: string; cwd?: string }): Promise<string> {
  const program = `${options.prefix}${name}`;
  const result = await execa(program, args, { reject: false, timeout: 120_000, maxBuffer: 512 * 1024 * 1024, ...(options.cwd ? { cwd: options.cwd } : {}) });
  if (result.exitCode !== 0) throw new Error(`${program} failed: ${(result.stderr || result.shortMessage || 'no output').split('\n')[0]}`);
  return result.stdout;
}

/** Every object kbuild compiled in the build directory, build-relative, from its `.NAME.o.cmd`. */
async function compiledObjects(buildDir: string): Promise<string[]> {
  const objects: string[] = [];
  const walk = async (relative: string): Promise<void> => {
    const entries = await readdir(path.join(buildDir, relative), { withFileTypes: true }).catch(() => []);
    await Promise.all(
      entries.map(async (entry) => {
        const child = relative ? `${relative}/${entry.name}` : entry.name;
        if (entry.isDirectory()) {
          // Host tools and the guest-side programs are not in vmlinux.
          if (!relative && ['scripts', 'tools', 'usr', 'include', 'source'].includes(entry.name)) return;
          return walk(child);
        }
        const match = /^\.(.+\.o)\.cmd$/.exec(entry.name);
        if (match?.[1] && match[1] !== 'vmlinux.o' && !match[1].endsWith('.mod.o')) objects.push(relative ? `${relative}/${match[1]}` : match[1]);
      }),
    );
  };
  await walk('');
  return objects.sort();
}

/**
 * file:line (tree-relative, innermost inlined location) for each frame, keyed
 * by frameKey; frames it cannot place are absent. `buildDir` and its worktree
 * must hold the kernel `vmlinux` came from (withKernelPlace).
 */
export async function frameLines(buildDir: string, vmlinux: string, frames: FrameQuery[], prefix: string): Promise<Map<string, string>> {
  const lines = new Map<string, string>();
  const wanted = new Set(frames.map((frame) => frame.function));
  if (wanted.size === 0) return lines;
  const vmlinuxSizes = parseSymbolSizes(await binutils('nm', ['-S', '--defined-only', vmlinux], { prefix }));
  const objects = await compiledObjects(buildDir);
  const definitions = new Map<string, Definition[]>();
  for (let i = 0; i < objects.length; i += 400) {
    const batch = objects.slice(i, i + 400);
    const found = parseObjectSymbols(await binutils('nm', ['-A', '-S', '--defined-only', ...batch], { prefix, cwd: buildDir }).catch(() => ''), wanted);
    for (const [name, list] of found) definitions.set(name, [...(definitions.get(name) ?? []), ...list]);
  }
  const byObject = new Map<string, FrameQuery[]>();
  for (const frame of frames) {
    const object = objectFor(definitions.get(frame.function), vmlinuxSizes.get(frame.function));
    if (object) byObject.set(object, [...(byObject.get(object) ?? []), frame]);
  }
  const scratch = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-lines-'));
  const forget = register({ reap: () => void rm(scratch, { recursive: true, force: true }) });
  try {
    let index = 0;
    const work = [...byObject.entries()];
    const one = async ([object, objectFrames]: [string, FrameQuery[]]) => {
      const n = index++;
      const output = path.join(scratch, `${n}.o`);
      const cmdFile = await readFile(path.join(buildDir, path.dirname(object), `.${path.basename(object)}.cmd`), 'utf8').catch(() => '');
      const command = debugCompileCommand(cmdFile, object, output, path.join(scratch, `${n}.d`));
      if (!command) return;
      // The command is kbuild's own, from the build directory (quoted -D values
      // and all), run the way make runs it; the only values put into it are
      // the scratch folder's paths, which the harness made.
      const compiled = await execa('sh', ['-c', command], { cwd: buildDir, reject: false, timeout: 300_000, extendEnv: false, env: buildEnv() });
      if (compiled.exitCode !== 0) return;
      const symbols = await binutils('nm', ['-f', 'sysv', '--defined-only', output], { prefix });
      const addresses: { frame: FrameQuery; address: bigint; section: string }[] = [];
      for (const frame of objectFrames) {
        const symbol = parseSysvSymbol(symbols, frame.function);
        // Same code or no answer: the debug copy's function must be as long as vmlinux's.
        if (!symbol || !(vmlinuxSizes.get(frame.function) ?? []).includes(symbol.size)) continue;
        // The return address points after the call: step back one byte into it.
        addresses.push({ frame, address: symbol.value + BigInt(Math.max(0, frame.offset - 1)), section: symbol.section });
      }
      for (const section of new Set(addresses.map((each) => each.section))) {
        const inSection = addresses.filter((each) => each.section === section);
        const text = await binutils('addr2line', ['-e', output, '-j', section, '-a', '-f', '-i', ...inSection.map((each) => `0x${each.address.toString(16)}`)], { prefix });
        const located = parseInnermost(text);
        for (const each of inSection) {
          const location = located.get(each.address);
          if (location) lines.set(frameKey(each.frame), location);
        }
      }
    };
    const workers = Array.from({ length: Math.min(os.availableParallelism(), work.length) }, async () => {
      while (work.length) await one(work.shift() as [string, FrameQuery[]]);
    });
    await Promise.all(workers);
  } finally {
    forget();
    await rm(scratch, { recursive: true, force: true });
  }
  return lines;
}

/**
 * `addr2line -a -f -i`: per address, the address line then function/location
 * pairs (several when inlined; the first is the innermost, where the frame
 * points). Paths are made relative to the tree.
 */
export function parseInnermost(output: string): Map<bigint, string> {
  const locations = new Map<bigint, string>();
  const lines = output.split('\n');
  let address: bigint | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (/^0x[0-9a-f]+$/.test(line)) {
      address = BigInt(line);
      continue;
    }
    const location = lines[i + 1];
    if (address !== undefined && location !== undefined && !locations.has(address)) {
      const clean = location.replace(/ \(discriminator \d+\)$/, '');
      if (!clean.startsWith('??')) locations.set(address, treeRelative(clean));
      i++;
    }
  }
  return locations;
}

/** A source path as the tree names it: builds run in the harness's worktree (absolute) or the build directory (`../`). */
export function treeRelative(location: string): string {
  return location.replace(/^.*\/worktrees\/wt-[0-9a-f]+\//, '').replace(/^(\.\.\/)+/, '');
}
