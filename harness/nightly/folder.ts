// A night's folder on disk, and everything written into it:
//
//   night.json  junit.xml  index.html  iommu-harness-NIGHT.tar.gz
//   plan.json                       the checked plan (resume refuses another)
//   units/UNIT.json                 each run's result, written when it ends (what --resume reads)
//   runs/UNIT/IOMMU/console.log     and dmesg.txt, qemu.log
//   builds/KERNEL.PROFILE/          config, build.log, build.json
import { cp, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tar from 'tar';
import { HarnessError } from '../errors.ts';
import { exists } from '../files.ts';
import { renderHtml } from './html.ts';
import { renderJUnit } from './junit.ts';
import { nightSchemaId, type Night, type NightBuild, type NightRun } from './night.ts';

export const nightFiles = { night: 'night.json', junit: 'junit.xml', html: 'index.html', plan: 'plan.json' } as const;

export const unitFile = (dir: string, unit: string) => path.join(dir, 'units', `${unit}.json`);
export const runDirOf = (dir: string, unit: string) => path.join(dir, 'runs', unit);
export const buildDirOf = (dir: string, kernel: string, profile: string) => path.join(dir, 'builds', `${kernel}.${profile}`);
export const tarballOf = (dir: string) => path.join(dir, `iommu-harness-${path.basename(dir)}.tar.gz`);

export async function writeJson(file: string, value: unknown): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  // Written whole or not at all: an interrupted night must not leave half a result for --resume.
  const partial = `${file}.partial-${process.pid}`;
  await writeFile(partial, `${JSON.stringify(value, null, 2)}\n`);
  await rename(partial, file);
}

async function readJson<T>(file: string): Promise<T> {
  const text = await readFile(file, 'utf8').catch(() => {
    throw new HarnessError('usage', `cannot read ${file}`);
  });
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new HarnessError('usage', `${file}: not JSON (${(error as Error).message})`);
  }
}

export async function readUnits(dir: string): Promise<NightRun[]> {
  const folder = path.join(dir, 'units');
  const names = (await readdir(folder).catch(() => [] as string[])).filter((name) => name.endsWith('.json')).sort();
  return Promise.all(names.map((name) => readJson<NightRun>(path.join(folder, name))));
}

export async function readBuilds(dir: string): Promise<NightBuild[]> {
  const folder = path.join(dir, 'builds');
  const names = (await readdir(folder).catch(() => [] as string[])).sort();
  const builds: NightBuild[] = [];
  for (const name of names) {
    const file = path.join(folder, name, 'build.json');
    if (await exists(file)) builds.push(await readJson<NightBuild>(file));
  }
  return builds;
}

/** A night.json, from its file or its folder. */
export async function readNight(fileOrDir: string): Promise<{ night: Night; file: string; dir: string }> {
  const isDir = (await stat(fileOrDir).catch(() => undefined))?.isDirectory();
  const file = isDir ? path.join(fileOrDir, nightFiles.night) : fileOrDir;
  const night = await readJson<Night>(file);
  if (night.schema !== nightSchemaId) throw new HarnessError('usage', `${file}: not a night result (schema ${JSON.stringify(night.schema)}, expected ${nightSchemaId})`);
  return { night, file, dir: path.dirname(file) };
}

/**
 * The previous whole night next to this one: the latest sibling folder, by
 * name (nights are named by date), before this one, holding a night.json that
 * is not a single shard's.
 */
export async function findPreviousNight(dir: string): Promise<{ night: Night; file: string } | undefined> {
  const parent = path.dirname(path.resolve(dir));
  const self = path.basename(path.resolve(dir));
  const siblings = (await readdir(parent).catch(() => [] as string[])).filter((name) => name < self).sort().reverse();
  for (const name of siblings) {
    const file = path.join(parent, name, nightFiles.night);
    if (!(await exists(file))) continue;
    const found = await readNight(file).catch(() => undefined);
    if (found && !found.night.shard) return found;
  }
  return undefined;
}

/** night.json, junit.xml, index.html, then the tarball of the whole folder. */
export async function writeNightOutputs(dir: string, night: Night): Promise<{ tarball: string }> {
  await writeJson(path.join(dir, nightFiles.night), night);
  await writeFile(path.join(dir, nightFiles.junit), renderJUnit(night));
  await writeFile(path.join(dir, nightFiles.html), renderHtml(night));
  const tarball = tarballOf(dir);
  const parent = path.dirname(path.resolve(dir));
  const base = path.basename(path.resolve(dir));
  const partial = `${tarball}.partial`;
  await tar.create(
    {
      gzip: true,
      file: partial,
      cwd: parent,
      portable: true,
      // Sockets and the tarball itself stay out; everything else a reader may need goes in.
      filter: (entry, info) => !entry.endsWith('.tar.gz') && !entry.includes('.partial') && !('isSocket' in info && info.isSocket()),
    },
    [base],
  );
  await rename(partial, tarball);
  return { tarball };
}

/** Copies a shard's runs and builds into the merged night's folder, keeping their relative paths. */
export async function copyShardFiles(shardDir: string, outDir: string): Promise<void> {
  if (path.resolve(shardDir) === path.resolve(outDir)) return;
  for (const sub of ['runs', 'builds', 'units']) {
    const from = path.join(shardDir, sub);
    if (await exists(from)) await cp(from, path.join(outDir, sub), { recursive: true, force: true, filter: (source) => !source.endsWith('.sock') });
  }
}
