// Night results built by hand, for the nightly unit tests.
import type { MatrixCell } from '../../harness/nightly/matrix.ts';
import { assembleNight, type Night, type NightBuild, type NightRun } from '../../harness/nightly/night.ts';
import { parsePlan, type Plan } from '../../harness/nightly/plan.ts';
import type { ResultReport, ScenarioRun } from '../../harness/report/result.ts';

export const plan: Plan = parsePlan(JSON.stringify({ iommus: ['intel'], scenarios: ['vfio-bind-unbind', 'pci-hotplug'] }), 'plan.json', {
  baseDir: '/',
  scenarios: ['vfio-bind-unbind', 'pci-hotplug'],
  builtinProfiles: { lockdep: '/k/lockdep.config' },
});

export const cell = (scenario: string, iommu: 'intel' | 'virtio' = 'intel'): MatrixCell => ({
  id: `default.lockdep.${iommu}.${scenario}`,
  kernel: 'default',
  profile: 'lockdep',
  iommu,
  scenario,
});
export const cells = [cell('vfio-bind-unbind'), cell('pci-hotplug')];

export interface RunShape {
  scenario: string;
  cycle?: number;
  reports?: Partial<ResultReport>[];
  leaks?: { group: number; devices: string[]; step?: string }[];
  error?: string;
  /** The error's kind (default "boot"). */
  errorKind?: string;
  /** Why a check was blind: the run is inconclusive when nothing else failed. */
  inconclusive?: string[];
}

export function run(shape: RunShape): NightRun {
  const c = cell(shape.scenario);
  const cycle = shape.cycle ?? 1;
  const unit = `${c.id}.c${cycle}`;
  const reports: ResultReport[] = (shape.reports ?? []).map((r) => ({ kind: 'warning', title: 'WARNING in x', text: 'WARNING: CPU: 0 PID: 1 at x\n<script>alert(1)</script> & "q"', corrupted: false, ...r }) as ResultReport);
  const leaks = shape.leaks ?? [];
  const failing = leaks.length > 0 || reports.some((r) => !r.known);
  const verdict = failing ? 'fail' : shape.error ? 'error' : shape.inconclusive?.length ? 'inconclusive' : 'pass';
  const result: ScenarioRun = {
    iommu: 'intel',
    scenario: shape.scenario,
    verdict,
    groups: [],
    leaks,
    reports,
    failedChecks: [],
    inconclusive: shape.inconclusive ?? [],
    ...(shape.error ? { error: shape.error } : {}),
    notes: [],
    accel: 'tcg',
    logs: { console: `runs/${unit}/intel/console.log`, dmesg: `runs/${unit}/intel/dmesg.txt` },
  };
  return {
    unit,
    cell: c.id,
    cycle,
    kernel: 'default',
    profile: 'lockdep',
    iommu: 'intel',
    scenario: shape.scenario,
    verdict,
    ...(shape.error ? { error: { kind: shape.errorKind ?? 'boot', message: shape.error } } : {}),
    startedAt: '2026-11-25T00:00:00.000Z',
    seconds: 12.5,
    results: [result],
    logs: { console: `runs/${unit}/intel/console.log`, dmesg: `runs/${unit}/intel/dmesg.txt`, config: 'builds/default.lockdep/config', buildLog: 'builds/default.lockdep/build.log' },
  };
}

export const goodBuild: NightBuild = { kernel: 'default', profile: 'lockdep', patches: [], release: '6.12.57', config: 'builds/default.lockdep/config', buildLog: 'builds/default.lockdep/build.log' };

export function night(runs: NightRun[], baseline?: Night, name = '2026-11-25', builds: NightBuild[] = [goodBuild]): Night {
  return assembleNight({
    name,
    plan,
    cells,
    runs,
    builds,
    startedAt: '2026-11-25T00:00:00.000Z',
    finishedAt: '2026-11-25T00:01:00.000Z',
    ...(baseline ? { baseline: { name: baseline.name, file: `/nights/${baseline.name}/night.json`, night: baseline } } : {}),
  });
}
