// A lost guest's vCPUs, read from QEMU. Fixtures are real captures from an
// idle intel-iommu guest of the default 6.12 kernel under TCG: `info registers -a`,
// `x/64gx` at vCPU 0's stack pointer (same moment), `info lapic 0`, and the
// lines of that kernel's `nm -n vmlinux` the addresses fall in.
import { readFile } from 'node:fs/promises';
import test from 'ava';
import { describeVcpus, parseInfoRegisters, parseKernelText, parseLapic, parseMemoryWords, renderVcpuSnapshot, symbolAt } from '../../harness/machine/vcpu-state.ts';

const fixture = (name: string) => readFile(new URL(`../fixtures/machine/${name}`, import.meta.url), 'utf8');

test('info registers -a: every vCPU with its instruction and stack pointers, interrupt flag, halt state and privilege level', async (t) => {
  const vcpus = parseInfoRegisters(await fixture('info-registers-a.txt'));
  t.deepEqual(
    vcpus.map((vcpu) => [vcpu.cpu, vcpu.rip.toString(16), vcpu.halted, vcpu.interruptsOn, vcpu.cpl]),
    [
      [0, 'ffffffff8142ce6c', true, true, 0],
      [1, 'ffffffff8142ce6c', true, true, 0],
    ],
  );
  t.is(vcpus[0]?.rsp.toString(16), 'ffffffff81c03ea0');
  // One vCPU's block without the CPU# header (plain `info registers`) is vCPU 0.
  const single = (await fixture('info-registers-a.txt')).split(/^CPU#1\s*$/m)[0]!.replace(/^CPU#0\s*$/m, '');
  t.deepEqual(parseInfoRegisters(single).map((vcpu) => vcpu.cpu), [0]);
  t.deepEqual(parseInfoRegisters('Error: no CPU'), []);
});

test('kernel text addresses become function+offset; data and addresses outside _stext.._etext do not', async (t) => {
  const text = parseKernelText(await fixture('nm-n-excerpt.txt'));
  t.truthy(text);
  t.is(symbolAt(text!, 0xffffffff8142ce6cn), 'default_idle+0x13');
  t.is(symbolAt(text!, 0xffffffff8107983dn), 'do_idle+0x0');
  t.is(symbolAt(text!, 0xffffffff81800000n), undefined, '_etext is the end');
  t.is(symbolAt(text!, 0xffff88803e600000n), undefined, 'the direct map is not text');
  t.is(parseKernelText('ffffffff81000000 T _stext\n'), undefined, 'no _etext: no end to trust');
});

test('the stack words that point into text name the idle path the vCPU came from', async (t) => {
  const words = parseMemoryWords(await fixture('x-64gx-stack.txt'));
  t.is(words.length, 64);
  const text = parseKernelText(await fixture('nm-n-excerpt.txt'))!;
  const frames = words.map((word) => symbolAt(text, word)).filter((name) => name !== undefined);
  for (const expected of ['default_idle_call+0x7b', 'do_idle+0x9f', 'cpu_startup_entry+0x24']) t.true(frames.includes(expected), `${expected} in ${frames.join(', ')}`);
});

test('the summary tells halted, stuck and running vCPUs apart, with where and the interrupt flag', async (t) => {
  const raw = await fixture('info-registers-a.txt');
  const text = parseKernelText(await fixture('nm-n-excerpt.txt'));
  const halted = parseInfoRegisters(raw);
  t.is(describeVcpus({ samples: [halted, halted], stacks: new Map() }, text), 'vCPU 0 halted in default_idle+0x13, interrupts on; vCPU 1 halted in default_idle+0x13, interrupts on');
  // The same vCPUs spinning on one instruction with interrupts off, and vCPU 1 moving.
  const spinning = parseInfoRegisters(raw.replaceAll('HLT=1', 'HLT=0').replaceAll('RFL=00000246', 'RFL=00000046'));
  const moved = spinning.map((vcpu) => (vcpu.cpu === 1 ? { ...vcpu, rip: 0xffffffff8107984dn } : vcpu));
  t.is(describeVcpus({ samples: [spinning, moved], stacks: new Map() }, text), 'vCPU 0 stuck in default_idle+0x13, interrupts off; vCPU 1 running in do_idle+0x10, interrupts off');
  // Without symbols the address is given as is; user space is named as such.
  const user = spinning.map((vcpu) => ({ ...vcpu, cpl: vcpu.cpu === 1 ? 3 : 0 }));
  t.is(describeVcpus({ samples: [user], stacks: new Map() }, undefined), 'vCPU 0 stuck in 0xffffffff8142ce6c, interrupts off; vCPU 1 stuck in user space, interrupts off');
  const record = renderVcpuSnapshot({ samples: [halted], stacks: new Map([[0, parseMemoryWords(await fixture('x-64gx-stack.txt'))]]) }, [raw], text);
  t.regex(record, /^summary: vCPU 0 halted/);
  t.regex(record, /vCPU 0 stack, words pointing into kernel text[^\n]*\n {2}\? default_idle_call\+0x7b/);
  t.regex(record, /--- info registers -a, sample 1 ---\nCPU#0\nRAX=/);
});

test('info lapic: the vectors in service and pending; an interrupt never acknowledged shows in the summary', async (t) => {
  // Captured while vCPU 0 served its timer (vector 236).
  const serving = await fixture('info-lapic-0.txt');
  t.deepEqual(parseLapic(serving), { inService: [236], pending: [] });
  // As QEMU prints set bits: `VECTOR ` or `VECTOR(level) `, else `(none)`.
  const idle = serving.replace(/^ISR\t 236 /m, 'ISR\t (none)');
  t.deepEqual(parseLapic(idle), { inService: [], pending: [] });
  const blocked = serving.replace(/^IRR\t \(none\)/m, 'IRR\t 34(level) 236 ');
  t.deepEqual(parseLapic(blocked), { inService: [236], pending: [34, 236] });
  t.is(parseLapic('Error: no APIC'), undefined);
  const halted = parseInfoRegisters(await fixture('info-registers-a.txt'));
  const text = parseKernelText(await fixture('nm-n-excerpt.txt'));
  t.is(
    describeVcpus({ samples: [halted], stacks: new Map(), lapics: new Map([[0, parseLapic(blocked)!], [1, parseLapic(idle)!]]) }, text),
    'vCPU 0 halted in default_idle+0x13, interrupts on, vector 236 in service, vector 34 236 pending; vCPU 1 halted in default_idle+0x13, interrupts on',
  );
});
