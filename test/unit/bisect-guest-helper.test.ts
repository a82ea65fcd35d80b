// The guest helper is compiled against each commit's own uapi headers (harness/image/guest-helpers.ts),
// so a bisect range can hold commits whose headers it does not fit. Such a commit cannot be run:
// a skip (125), as a commit that does not build, not an abort that ends the whole bisect.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bisectRunExitCode } from '../../harness/bisect/judge.ts';
import { isCommitFailure, tryCommit, type TrialRequest, type TrialStages } from '../../harness/bisect/trial.ts';
import { cacheLayout } from '../../harness/cache.ts';
import { HarnessError } from '../../harness/errors.ts';
import { compileGuestHelper } from '../../harness/image/guest-helpers.ts';
import { silentProgress } from '../../harness/log.ts';

const gcc = spawnSync('gcc', ['--version']).status === 0;
// Without gcc the real helper's failure cannot be produced: skipped, and the title says why.
const withGcc = gcc ? test : test.skip;

const commit = 'c0ffee0000000000000000000000000000000000';

function request(root: string): TrialRequest {
  // Cast: a trial whose kernel never gets ready reads nothing else of the request.
  return { iommus: ['intel'], scenarios: [], patches: [], kconfigs: [], progress: silentProgress, layout: cacheLayout(path.join(root, 'cache')) } as unknown as TrialRequest;
}

function failingWith(error: unknown): TrialStages {
  return {
    prepareKernel: async () => {
      throw error;
    },
    runHarness: async () => {
      throw new Error('a commit whose guest could not be made was booted');
    },
  };
}

withGcc(`a guest helper that does not compile against the commit's uapi headers is a skip (125), not an abort${gcc ? '' : ' (skipped: no gcc on this machine)'}`, async (t) => {
  const root = await mkdtemp(path.join(os.tmpdir(), 'helper-misfit-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  // A commit's headers_install tree whose vfio.h lacks what the helper uses.
  const headers = path.join(root, 'headers');
  await mkdir(path.join(headers, 'include', 'linux'), { recursive: true });
  await writeFile(path.join(headers, 'include', 'linux', 'vfio.h'), '#ifndef _UAPIVFIO_H\n#define _UAPIVFIO_H\n#endif\n');
  const error = await t.throwsAsync(compileGuestHelper(cacheLayout(path.join(root, 'cache')), 'vfio-helper', headers), { instanceOf: HarnessError });
  t.is(error?.kind, 'image', 'the suspicion holds: kind image, which the trial rethrew (an abort)');
  t.true(isCommitFailure(error));

  const trial = await tryCommit(request(root), commit, 1, undefined, failingWith(error));
  t.is(trial.judgement.verdict, 'skip');
  t.is(bisectRunExitCode[trial.judgement.verdict], 125);
  t.regex(trial.judgement.reason, /^image error: guest helper vfio-helper does not compile/);
  t.is(trial.buildError, error as HarnessError);
  t.deepEqual(trial.results, []);
});

test("an image the host cannot make still aborts: dropbear's libraries are not the commit's", async (t) => {
  const error = new HarnessError('image', "cannot list dropbear's libraries (ldd /usr/sbin/dropbear): not a dynamic executable");
  t.false(isCommitFailure(error));
  t.true(isCommitFailure(new HarnessError('build', 'make failed')));
  t.false(isCommitFailure(new HarnessError('qemu', 'QEMU ended')));
  await t.throwsAsync(tryCommit(request(os.tmpdir()), commit, 1, undefined, failingWith(error)), { is: error });
});
