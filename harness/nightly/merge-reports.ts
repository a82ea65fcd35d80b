// `iommu-harness merge-reports`: shard folders in, one night folder out, with
// the baseline diff, JUnit, HTML and tarball of the whole matrix.
import path from 'node:path';
import { ensureDir } from '../cache.ts';
import { HarnessError } from '../errors.ts';
import { copyShardFiles, readNight, writeNightOutputs } from './folder.ts';
import { cellsOf } from './matrix.ts';
import { joinShards, MergeError, type ShardResult } from './merge.ts';
import { assembleNight } from './night.ts';
import { loadBaseline, planUnits, type NightlyOutcome } from './runner.ts';

export interface MergeRequest {
  /** Shard night folders (or their night.json). */
  shards: string[];
  /** The merged night's folder; its name is the night's name. */
  out: string;
  baseline?: string;
}

export async function mergeNightReports(request: MergeRequest): Promise<NightlyOutcome> {
  const dir = path.resolve(request.out);
  const found = await Promise.all(request.shards.map((shard) => readNight(shard)));
  const shards: ShardResult[] = found.map((entry, index) => ({ label: request.shards[index]!, night: entry.night }));
  let joined;
  try {
    joined = joinShards(shards);
  } catch (error) {
    if (error instanceof MergeError) throw new HarnessError('usage', `cannot merge: ${error.message}`);
    throw error;
  }
  await ensureDir(dir);
  for (const entry of found) await copyShardFiles(entry.dir, dir);
  // The whole matrix, so a shard that never reported shows as cells not run.
  const baseline = await loadBaseline(dir, request.baseline);
  const night = assembleNight({
    name: path.basename(dir),
    plan: joined.plan,
    cells: cellsOf(planUnits(joined.plan)),
    runs: joined.runs,
    builds: joined.builds,
    startedAt: joined.startedAt,
    finishedAt: joined.finishedAt,
    mergedFrom: request.shards,
    ...(baseline ? { baseline } : {}),
  });
  const { tarball } = await writeNightOutputs(dir, night);
  return { night, dir, tarball };
}
