import test from 'ava';
import { milestoneLine, percentDone, statusLine } from '../../harness/build/build-progress.ts';

test('percent and ETA come from the previous build\'s line count, capped below 100 until make ends', (t) => {
  t.is(percentDone(1500, { expectedLines: 3000 }), 50);
  t.is(percentDone(3500, { expectedLines: 3000 }), 99);
  t.is(percentDone(10, {}), undefined);
  t.is(statusLine(1500, 240_000, { expectedLines: 3000 }, 'CC drivers/iommu/iommu.o'), '[#####.....] 50% 1500/3000, ETA 4 min 00 s  CC drivers/iommu/iommu.o');
  t.is(statusLine(12, 5000, {}, 'CC a.o'), 'building: 12 targets, 5 s  CC a.o');
});

test('logs get a plain line at each tenth, once', (t) => {
  const estimate = { expectedLines: 1000 };
  const lines = Array.from({ length: 1000 }, (_, index) => milestoneLine(index + 1, (index + 1) * 100, estimate)).filter(Boolean);
  t.deepEqual(lines[0], 'building: 10% (100/1000 targets), ETA 1 min 30 s');
  t.is(lines.length, 9, 'at 10% ... 90%; 99% is the cap, not a tenth');
  t.is(milestoneLine(500, 1000, {}), 'building: 500 targets in 1 s');
  t.is(milestoneLine(501, 1000, {}), undefined);
  t.is(milestoneLine(10, 1000, { expectedLines: 40 }), undefined, 'an incremental rebuild prints no milestones');
});
