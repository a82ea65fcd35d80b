// The pure half of harness/build/frame-lines.ts, on what a real 6.12 build
// directory holds (test/fixtures/build: kbuild's .iommu.o.cmd and nm -A -S
// over three of its objects); the compile and addr2line half runs in the
// integration tests that symbolize a real report's frames.
import { readFile } from 'node:fs/promises';
import test from 'ava';
import { debugCompileCommand, objectFor, parseInnermost, parseObjectSymbols, parseSymbolSizes, parseSysvSymbol, treeRelative } from '../../harness/build/frame-lines.ts';

const fixture = (name: string) => readFile(new URL(`../fixtures/build/${name}`, import.meta.url), 'utf8');

test("kbuild's saved compile command becomes one that writes a debug copy to the scratch folder", async (t) => {
  const cmd = await fixture('6.12-iommu.o.cmd');
  const command = debugCompileCommand(cmd, 'drivers/iommu/iommu.o', '/tmp/lines-x/0.o', '/tmp/lines-x/0.d');
  t.truthy(command);
  t.true(command!.includes(' -c -o /tmp/lines-x/0.o '));
  t.false(command!.includes('-o drivers/iommu/iommu.o'), 'the build directory\'s object is never overwritten');
  t.true(command!.includes('-Wp,-MMD,/tmp/lines-x/0.d '));
  t.false(command!.includes('objtool'), 'the objtool pass is dropped');
  t.regex(command!, / -g -fno-var-tracking -femit-struct-debug-baseonly$/);
  // kbuild's quoting stays as it was: the command runs under sh as make runs it.
  t.true(command!.includes(`-DKBUILD_MODFILE='"drivers/iommu/iommu"'`));
  // Another object's name, or a file without the command, gives nothing.
  t.is(debugCompileCommand(cmd, 'drivers/iommu/iova.o', '/tmp/x.o', '/tmp/x.d'), undefined);
  t.is(debugCompileCommand('', 'drivers/iommu/iommu.o', '/tmp/x.o', '/tmp/x.d'), undefined);
});

test("6.1's cmd_ line is read as well; an assembler object is not recompiled", (t) => {
  const old = "cmd_drivers/iommu/iommu.o := gcc -Wp,-MMD,drivers/iommu/.iommu.o.d -nostdinc -O2 -c -o drivers/iommu/iommu.o /w/drivers/iommu/iommu.c  ; ./tools/objtool/objtool --orc drivers/iommu/iommu.o\n";
  t.is(debugCompileCommand(old, 'drivers/iommu/iommu.o', '/s/0.o', '/s/0.d'), 'gcc -Wp,-MMD,/s/0.d -nostdinc -O2 -c -o /s/0.o /w/drivers/iommu/iommu.c -g -fno-var-tracking -femit-struct-debug-baseonly');
  const assembler = 'savedcmd_arch/x86/entry/entry_64.o := gcc -Wp,-MMD,arch/x86/entry/.entry_64.o.d -D__ASSEMBLY__ -o arch/x86/entry/entry_64.o /w/arch/x86/entry/entry_64.S\n';
  t.is(debugCompileCommand(assembler, 'arch/x86/entry/entry_64.o', '/s/0.o', '/s/0.d'), undefined);
});

test('the object of a frame: the one whose definition is as long as vmlinux says; a tie is no answer', async (t) => {
  const wanted = new Set(['iommu_group_release', 'iommu_release_device', 'alloc_iova', 'not_there']);
  const found = parseObjectSymbols(await fixture('6.12-nm-objects.txt'), wanted);
  t.deepEqual(found.get('iommu_group_release'), [{ object: 'drivers/iommu/iommu.o', size: 0x7an }]);
  t.is(found.get('not_there'), undefined);
  t.false(found.has('__iommu_probe_device'), 'names no frame asked for are not kept');
  t.is(objectFor(found.get('iommu_group_release'), [0x7an]), 'drivers/iommu/iommu.o');
  t.is(objectFor(found.get('iommu_group_release'), [0x80n]), undefined, 'another size in vmlinux: not this object');
  t.is(objectFor(undefined, [0x7an]), undefined);
  // A static function two objects define: the size tells them apart, or nothing is said.
  const twice = parseObjectSymbols('a/x.o:0000000000000010 0000000000000040 t release\nb/y.o:0000000000000200 0000000000000058 t release\n', new Set(['release']));
  t.is(objectFor(twice.get('release'), [0x58n]), 'b/y.o');
  t.is(objectFor(twice.get('release'), [0x40n, 0x58n]), undefined);
  const same = parseObjectSymbols('a/x.o:0000000000000010 0000000000000040 t release\nb/y.o:0000000000000200 0000000000000040 t release\n', new Set(['release']));
  t.is(objectFor(same.get('release'), [0x40n]), undefined);
});

test("vmlinux's sizes, every definition of a name", (t) => {
  const sizes = parseSymbolSizes('ffffffff81234560 000000000000007a t iommu_group_release\nffffffff81000000 0000000000000040 t release\nffffffff81100000 0000000000000058 t release\nffffffff82000000 D some_data\n');
  t.deepEqual(sizes.get('iommu_group_release'), [0x7an]);
  t.deepEqual(sizes.get('release'), [0x40n, 0x58n]);
  t.false(sizes.has('some_data'));
});

test("nm -f sysv: a function's address, size and section in the debug copy", (t) => {
  const output = [
    'Symbols from /tmp/lines/0.o:',
    '',
    'Name                  Value           Class        Type         Size             Line  Section',
    '',
    'iommu_group_release |0000000000000455|   t  |              FUNC|000000000000007a|     |.text',
    'iommu_init         |0000000000000000|   t  |              FUNC|0000000000000041|     |.init.text',
    'iommu_group_ktype   |0000000000000120|   d  |            OBJECT|0000000000000038|     |.data',
  ].join('\n');
  t.deepEqual(parseSysvSymbol(output, 'iommu_group_release'), { value: 0x455n, size: 0x7an, section: '.text' });
  t.deepEqual(parseSysvSymbol(output, 'iommu_init'), { value: 0n, size: 0x41n, section: '.init.text' });
  t.is(parseSysvSymbol(output, 'iommu_group_ktype'), undefined, 'data is not a frame');
});

test("addr2line on the debug copy: the innermost location, relative to the tree (the harness's worktree or the build directory's ../)", (t) => {
  const output = [
    '0x0000000000000485',
    'kobject_put',
    '/root/.cache/iommu-harness/worktrees/wt-ba35280b12c5854c/include/linux/kobject.h:120',
    'iommu_group_release',
    '/root/.cache/iommu-harness/worktrees/wt-ba35280b12c5854c/drivers/iommu/iommu.c:934 (discriminator 5)',
    '0x0000000000000020',
    '??',
    '??:0',
  ].join('\n');
  const lines = parseInnermost(output);
  t.is(lines.get(0x485n), 'include/linux/kobject.h:120');
  t.false(lines.has(0x20n));
  t.is(treeRelative('../drivers/iommu/iommu.c:934'), 'drivers/iommu/iommu.c:934');
});
