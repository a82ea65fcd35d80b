// One real run written in every format the community reads: the list-ready
// report (with the kernel's .config beside it), KCIDB validated against the
// 5.3 schema in ../shared, KTAP and JUnit; and `report` renders the saved JSON again.
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { execa } from 'execa';
import { cli } from './helpers.ts';

const schemaFile = new URL('../../../shared/schemas/kcidb.v5.3.schema.json', import.meta.url);
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv;

(existsSync(schemaFile) ? test.serial : test.serial.skip)(`a passing run writes the report (80 columns, .config beside it), valid KCIDB, KTAP and JUnit; report re-renders the saved result${existsSync(schemaFile) ? '' : ' (skipped: no ../shared/schemas beside the checkout)'}`, async (t) => {
  t.timeout(30 * 60_000);
  const out = await mkdtemp(path.join(os.tmpdir(), 'iommu-harness-formats-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const file = (name: string) => path.join(out, name);
  const run = await execa('node', [cli, 'run', '--iommu', 'virtio', '--scenario', 'vfio-bind-unbind', '--report', file('r.txt'), '--kcidb', file('k.json'), '--junit', file('j.xml'), '--tap', file('t.tap'), '--json', file('res.json')], { reject: false, all: true });
  t.is(run.exitCode, 0, run.all.split('\n').slice(-20).join('\n'));
  const report = await readFile(file('r.txt'), 'utf8');
  t.true(report.split('\n').every((line) => line.length <= 80), report);
  t.regex(report, /^iommu-harness tested the kernel below: every scenario passed\./);
  t.regex(report, /full \.config: r\.txt\.config/);
  t.regex(await readFile(file('r.txt.config'), 'utf8'), /^CONFIG_PROVE_LOCKING=y$/m);
  t.regex(report, /\nTested-by: NAME <EMAIL>\n$/);
  const validate = addFormats(new Ajv({ allErrors: true, strict: false })).compile(JSON.parse(readFileSync(schemaFile, 'utf8')) as object);
  const kcidb = JSON.parse(await readFile(file('k.json'), 'utf8')) as { tests: { path: string; status: string }[] };
  t.true(validate(kcidb), JSON.stringify(validate.errors));
  t.true(kcidb.tests.some((entry) => entry.path === 'iommu.virtio.vfio_bind_unbind' && entry.status === 'PASS'), JSON.stringify(kcidb.tests));
  // Every step of the pass is a test of its own; the build names its log and config.
  t.true(kcidb.tests.some((entry) => entry.path === 'iommu.virtio.vfio_bind_unbind.remove' && entry.status === 'PASS'), JSON.stringify(kcidb.tests.map((entry) => entry.path)));
  const build = (kcidb as unknown as { builds: { log_url?: string; config_url?: string; architecture?: string }[] }).builds[0];
  t.regex(build?.log_url ?? '', /^file:\/\/.*build\.log$/);
  t.regex(build?.config_url ?? '', /^file:\/\/.*r\.txt\.config$|^file:\/\/.*\/config$/);
  t.is(build?.architecture, 'x86_64');
  t.regex(await readFile(file('t.tap'), 'utf8'), /^KTAP version 1\n[\s\S]*^ok \d+ virtio\.vfio-bind-unbind$/m);
  t.regex(await readFile(file('j.xml'), 'utf8'), /<testcase classname="iommu\.virtio" name="vfio-bind-unbind"/);
  const again = await execa('node', [cli, 'report', file('res.json'), '--format', 'tap']);
  t.regex(again.stdout, /^ok \d+ virtio\.vfio-bind-unbind$/m);
});
