// Joining shard results into one night. Pure: the shards' night.json in, the
// runs and builds of the whole matrix out, or an error naming the conflict.
import { isDeepStrictEqual } from 'node:util';
import type { Night, NightBuild, NightRun } from './night.ts';
import type { Plan } from './plan.ts';

export class MergeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MergeError';
  }
}

export interface ShardResult {
  /** Where it came from, to name it in errors. */
  label: string;
  night: Night;
}

export interface JoinedShards {
  plan: Plan;
  runs: NightRun[];
  builds: NightBuild[];
  startedAt: string;
  finishedAt: string;
}

export function joinShards(shards: readonly ShardResult[]): JoinedShards {
  const [first] = shards;
  if (!first) throw new MergeError('no shard results to merge');
  for (const shard of shards.slice(1)) {
    if (!isDeepStrictEqual(shard.night.plan, first.night.plan)) throw new MergeError(`${shard.label} ran a different plan than ${first.label}`);
    if (shard.night.shard?.count !== first.night.shard?.count) {
      throw new MergeError(`${shard.label} is shard ${describe(shard.night)} but ${first.label} is shard ${describe(first.night)}`);
    }
  }
  const seenShards = new Map<number, string>();
  for (const shard of shards) {
    const index = shard.night.shard?.index;
    if (index === undefined) continue;
    const other = seenShards.get(index);
    if (other) throw new MergeError(`${shard.label} and ${other} are both shard ${index}/${shard.night.shard?.count}`);
    seenShards.set(index, shard.label);
  }

  const runs = new Map<string, { run: NightRun; label: string }>();
  for (const shard of shards) {
    for (const run of shard.night.runs) {
      const other = runs.get(run.unit);
      if (other) throw new MergeError(`run ${run.unit} is in both ${other.label} and ${shard.label}`);
      runs.set(run.unit, { run, label: shard.label });
    }
  }
  // Two shards may build the same kernel x profile; a build that worked tells more than one that did not.
  const builds = new Map<string, NightBuild>();
  for (const build of shards.flatMap((shard) => shard.night.builds)) {
    const key = `${build.kernel}.${build.profile}`;
    const other = builds.get(key);
    if (!other || (other.error && !build.error)) builds.set(key, build);
  }
  const times = shards.map((shard) => shard.night);
  return {
    plan: first.night.plan,
    runs: [...runs.values()].map((entry) => entry.run),
    builds: [...builds.values()],
    startedAt: times.map((night) => night.startedAt).sort()[0]!,
    finishedAt: times.map((night) => night.finishedAt).sort().at(-1)!,
  };
}

function describe(night: Night): string {
  return night.shard ? `${night.shard.index}/${night.shard.count}` : '(whole night)';
}
