import test from 'ava';
import { framesOf, parseAddr2line, parseNm } from '../../harness/report/symbolize.ts';

test('frames come from call traces and RIP, each once, unreliable ones skipped', (t) => {
  const text = [
    'WARNING: CPU: 1 PID: 53 at drivers/iommu/iommu.c:940 iommu_group_release+0x5b/0x7e',
    'RIP: 0010:iommu_group_release+0x5b/0x7e',
    'Call Trace:',
    ' <TASK>',
    ' ? __warn+0x7d/0x130',
    ' kobject_put+0xa3/0x190',
    ' __iommu_group_remove_device+0xe5/0x100',
    ' </TASK>',
    'hardirqs last  enabled at (3591): [<ffffffff8108f9e2>] __up_console_sem+0x4e/0x50',
  ].join('\n');
  t.deepEqual(framesOf(text), [
    { function: 'iommu_group_release', offset: 0x5b },
    { function: 'kobject_put', offset: 0xa3 },
    { function: '__iommu_group_remove_device', offset: 0xe5 },
  ]);
});

test('nm text symbols, first of duplicates kept', (t) => {
  const symbols = parseNm('ffffffff81000000 T _text\nffffffff8142b230 t iommu_group_release\nffffffff81ffffff t iommu_group_release\nffffffff82000000 D some_data\n');
  t.is(symbols.get('iommu_group_release'), 0xffffffff8142b230n);
  t.false(symbols.has('some_data'));
});

test('addr2line output: the innermost location per address, relative to the tree', (t) => {
  const output = [
    '0xffffffff8142b28a',
    'iommu_group_release',
    '/root/.cache/iommu-harness/worktrees/wt-4a62dd19727890fd/drivers/iommu/iommu.c:940',
    '0xffffffff81300010',
    'inlined_helper',
    '/root/.cache/iommu-harness/worktrees/wt-4a62dd19727890fd/include/linux/kref.h:65 (discriminator 1)',
    'kobject_put',
    '/root/.cache/iommu-harness/worktrees/wt-4a62dd19727890fd/lib/kobject.c:737',
    '0xffffffff81300020',
    '??',
    '??:0',
  ].join('\n');
  const locations = parseAddr2line(output);
  t.is(locations.get(0xffffffff8142b28an), 'drivers/iommu/iommu.c:940');
  t.is(locations.get(0xffffffff81300010n), 'include/linux/kref.h:65');
  t.false(locations.has(0xffffffff81300020n));
});
