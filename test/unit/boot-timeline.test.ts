// The boot timeline on a real console capture (intel-iommu, TCG, a loaded
// 2-core host: test/fixtures/machine/intel-boot-console.log, the first 500
// lines of a run's console.log).
import { readFile } from 'node:fs/promises';
import test from 'ava';
import { bootTimeline, kernelTime } from '../../harness/machine/boot-timeline.ts';

const console = await readFile(new URL('../fixtures/machine/intel-boot-console.log', import.meta.url), 'utf8');

test('kernel timestamps of /init and the guest-ready line are read from the console', (t) => {
  t.is(kernelTime(console, /Run \/init as init process/), 6.713339);
  t.is(kernelTime(console, /iommu-harness: guest ready/), 7.498048);
  t.is(kernelTime(console, /no such line/), undefined);
});

test('a boot splits into QEMU to console, kernel to /init, /init to ready, ready to SSH', (t) => {
  t.deepEqual(bootTimeline(console, 1200, 9500), {
    totalSeconds: 9.5,
    qemuToConsoleSeconds: 1.2,
    kernelToInitSeconds: 6.713,
    initToReadySeconds: 0.785,
    readyToSshSeconds: 0.802,
  });
});

test('without a console byte or kernel lines only the total is known', (t) => {
  t.deepEqual(bootTimeline('', undefined, 4000), { totalSeconds: 4 });
});
