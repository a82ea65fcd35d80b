// SPDX-License-Identifier: Apache-2.0
// Derived from google/syzkaller pkg/report (linux.go: linuxOopses, reportStartIgnores), Copyright syzkaller project authors,
// Apache License 2.0 (LICENSES/Apache-2.0.txt, NOTICE). Ported to TypeScript and modified for
// iommu-harness; the changes are this project's.
// The table of kernel report formats, ported from syzkaller's pkg/report/linux.go (linuxOopses).
// A row: the header that opens a report, the formats that title it (first match in the text wins,
// then later rows matching at the same place), and the lines that look like the header but are not
// reports. Adding a kind of report is adding a row. Titles use syzkaller's `%[N]v` notation:
// N counts the captures of `report` (or `title`), then one guilty frame per parsed stack.
import {
  hangFrameExtractor,
  linuxCallTrace,
  linuxRipFrame,
  parseStackTrace,
  stallFrameExtractor,
  type StackFmt,
} from './frames.ts';
import { compile } from './regex.ts';

export interface OopsFormat {
  title: RegExp;
  /** When set, the captures come from here; a title match without a report match is corrupted. */
  report?: RegExp;
  fmt: string;
  stack?: StackFmt;
  /** The kernel prints no stack for this one, so a missing trace does not make it corrupted. */
  noStackTrace?: boolean;
  /** Matching this format means the real header was lost. */
  corrupted?: boolean;
}

export interface Oops {
  header: string;
  formats: OopsFormat[];
  /** Lines containing the header that are not reports. */
  suppressions: RegExp[];
}

const r = String.raw;

function warningStackFmt(...skip: string[]): StackFmt {
  return {
    // x86_64 WARN traps: the stack starts at the RIP line; powerpc64 prints "--- interrupt:".
    parts: [compile(`(?:${linuxRipFrame.source}|--- interrupt: [0-9]+ at {{FUNC}})`), parseStackTrace],
    parts2: [linuxCallTrace, parseStackTrace],
    skip,
  };
}

const callTrace = (skip?: string[], extractor?: StackFmt['extractor']): StackFmt => ({
  parts: [linuxCallTrace, parseStackTrace],
  ...(skip ? { skip } : {}),
  ...(extractor ? { extractor } : {}),
});
const ripThenTrace = (extractor?: StackFmt['extractor']): StackFmt => ({
  parts: [linuxRipFrame, linuxCallTrace, parseStackTrace],
  ...(extractor ? { extractor } : {}),
});
const ripOnly: StackFmt = { parts: [linuxRipFrame] };

// The leaked object's allocation stack, allocator frames skipped: the title names who allocated.
const kmemleakStack: StackFmt = {
  parts: [compile(r`backtrace(?: \(crc [0-9a-fA-F]*\))?:`), parseStackTrace],
  skip: [
    'kmemleak', 'mmap', 'kmem', 'slab', 'alloc', 'create_object', 'idr_get', 'list_lru_init',
    'kasprintf', 'kvasprintf', 'pcpu_create', 'strdup', 'strndup', 'memdup',
  ],
};

const lockdepAt = (what: string, header: string, fmt: string, prefix = 'WARNING'): OopsFormat => ({
  title: compile(`${prefix}: ${header}`),
  report: compile(`${prefix}: ${header}(?:.*\\n)+?.*${what}(?:.*\\n)+?.*at: (?:{{PC}} +)?{{FUNC}}`),
  fmt,
});

export const linuxOopses: Oops[] = [
  {
    header: 'BUG:',
    formats: [
      {
        title: compile('BUG: KASAN:'),
        report: compile(r`BUG: KASAN: ([a-z\-]+) in {{FUNC}}(?:.*\n)+?.*(Read|Write) (?:of size|at addr) (?:[0-9a-f]+)`),
        fmt: 'KASAN: %[1]v %[3]v in %[4]v',
        stack: {
          parts: [compile(r`BUG: KASAN: (?:[a-z\-]+) in {{FUNC}}`), linuxCallTrace, parseStackTrace],
          skip: ['kernel_fault', 'tag_check', 'mem_abort', '^el1_', '^el1h_'],
        },
      },
      {
        title: compile('BUG: KASAN:'),
        report: compile('BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in {{FUNC}}'),
        fmt: 'KASAN: invalid-free in %[2]v',
        stack: {
          parts: [
            compile('BUG: KASAN: (?:double-free or invalid-free|double-free|invalid-free) in {{FUNC}}'),
            linuxCallTrace,
            parseStackTrace,
          ],
          skip: ['slab_', 'kfree', 'vunmap', 'vfree'],
        },
      },
      {
        title: compile(r`BUG: KASAN: ([a-z\-]+) on address(?:.*\n)+?.*(Read|Write) of size ([0-9]+)`),
        fmt: 'KASAN: %[1]v %[2]v',
      },
      { title: compile('BUG: KASAN: (.*)'), fmt: 'KASAN: %[1]v', corrupted: true },
      {
        title: compile('BUG: KMSAN: kernel-usb-infoleak'),
        report: compile('BUG: KMSAN: kernel-usb-infoleak in {{FUNC}}'),
        fmt: 'KMSAN: kernel-usb-infoleak in %[2]v',
        stack: {
          parts: [parseStackTrace, compile('(Local variable .* created at:|Uninit was created at:)'), parseStackTrace],
          skip: ['alloc_skb', 'usb_submit_urb', 'usb_start_wait_urb', 'usb_bulk_msg', 'usb_interrupt_msg', 'usb_control_msg'],
        },
        noStackTrace: true,
      },
      {
        title: compile('BUG: KMSAN:'),
        report: compile(r`BUG: KMSAN: ([a-z\-]+) in {{FUNC}}`),
        fmt: 'KMSAN: %[1]v in %[3]v',
        stack: {
          parts: [parseStackTrace, compile('(Local variable .* created at:|Uninit was created at:)'), parseStackTrace],
          skip: ['alloc_skb', 'netlink_ack', 'netlink_rcv_skb', '_encrypt$', '^(?:crypto|cipher|drbg|rng)_'],
        },
        noStackTrace: true,
      },
      { title: compile('BUG: KCSAN:'), report: compile('BUG: KCSAN: (.*)'), fmt: 'KCSAN: %[1]v', noStackTrace: true },
      {
        title: compile('BUG: KFENCE: (use-after-free|out-of-bounds) (read|write) in {{FUNC}}'),
        fmt: 'KFENCE: %[1]v %[2]v in %[4]v',
        stack: { parts: [compile(r`BUG: KFENCE: (?:[a-z\- ]+) in {{FUNC}}`), parseStackTrace] },
      },
      {
        title: compile('BUG: KFENCE: invalid free in {{FUNC}}'),
        fmt: 'KFENCE: invalid free in %[2]v',
        noStackTrace: true,
        stack: { parts: [compile(r`BUG: KFENCE: (?:[a-z\- ]+) in {{FUNC}}`), parseStackTrace] },
      },
      {
        title: compile('BUG: KFENCE: invalid (read|write) in {{FUNC}}'),
        fmt: 'KFENCE: invalid %[1]v in %[3]v',
        stack: { parts: [compile(r`BUG: KFENCE: (?:[a-z\- ]+) in {{FUNC}}`), parseStackTrace] },
      },
      {
        title: compile('BUG: KFENCE: memory corruption in {{FUNC}}'),
        fmt: 'KFENCE: memory corruption in %[2]v',
        noStackTrace: true,
        stack: { parts: [compile(r`BUG: KFENCE: (?:[a-z\- ]+) in {{FUNC}}`), parseStackTrace] },
      },
      {
        title: compile(
          'BUG: (?:unable to handle kernel paging request|unable to handle page fault for address|Unable to handle kernel data access)',
        ),
        fmt: 'BUG: unable to handle kernel paging request in %[1]v',
        stack: ripThenTrace(),
      },
      {
        title: compile(
          'BUG: (?:unable to handle kernel NULL pointer dereference|kernel NULL pointer dereference|Kernel NULL pointer dereference)',
        ),
        fmt: 'BUG: unable to handle kernel NULL pointer dereference in %[1]v',
        stack: ripThenTrace(),
      },
      {
        // The kernel prints this header in two printk calls; the second half can be lost.
        title: compile('BUG: (?:unable to handle kernel|Unable to handle kernel)'),
        fmt: 'BUG: unable to handle kernel',
        corrupted: true,
      },
      {
        title: compile(
          'BUG: (spinlock|rwlock) (lockup suspected|already unlocked|recursion|cpu recursion|bad magic|wrong owner|wrong CPU|trylock failure on UP)',
        ),
        fmt: 'BUG: %[1]v %[2]v in %[3]v',
        stack: callTrace(['spin_', '_lock', '_unlock']),
      },
      {
        title: compile('BUG: soft lockup'),
        fmt: 'BUG: soft lockup in %[1]v',
        stack: ripThenTrace(stallFrameExtractor),
      },
      {
        title: compile('BUG: .*still has locks held!'),
        report: compile(r`BUG: .*still has locks held!(?:.*\n)+?.*{{PC}} +{{FUNC}}`),
        fmt: 'BUG: still has locks held in %[1]v',
      },
      { title: compile('BUG: scheduling while atomic'), fmt: 'BUG: scheduling while atomic in %[1]v', stack: callTrace(['schedule']) },
      {
        title: compile('BUG: lock held when returning to user space'),
        report: compile(
          r`BUG: lock held when returning to user space(?:.*\n)+?.*leaving the kernel with locks still held(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}`,
        ),
        fmt: 'BUG: lock held when returning to user space in %[1]v',
        noStackTrace: true,
      },
      {
        title: compile('BUG: bad unlock balance detected!'),
        fmt: 'BUG: bad unlock balance in %[1]v',
        stack: { parts: [compile('{{PC}} +{{FUNC}}'), linuxCallTrace, parseStackTrace] },
      },
      {
        title: compile('BUG: held lock freed!'),
        report: compile(r`BUG: held lock freed!(?:.*\n)+?.*{{PC}} +{{FUNC}}`),
        fmt: 'BUG: held lock freed in %[1]v',
      },
      { title: compile('BUG: Bad rss-counter state'), fmt: 'BUG: Bad rss-counter state', noStackTrace: true },
      { title: compile('BUG: non-zero nr_ptes on freeing mm'), fmt: 'BUG: non-zero nr_ptes on freeing mm', noStackTrace: true },
      { title: compile('BUG: non-zero nr_pmds on freeing mm'), fmt: 'BUG: non-zero nr_pmds on freeing mm', noStackTrace: true },
      {
        title: compile('BUG: Dentry .* still in use'),
        report: compile(r`BUG: Dentry .* still in use \([0-9]+\) \[(unmount) of ([^\]]+)\]`),
        fmt: 'BUG: Dentry still in use in %[1]v',
      },
      {
        title: compile('BUG: Bad page (state|cache)'),
        fmt: 'BUG: Bad page %[1]v in %[2]v',
        stack: {
          parts: [compile('page last allocated'), parseStackTrace],
          skip: ['(free|put|get|update|release)_page', 'free_unref', '^_*folio', 'truncate_inode_pages', 'page_frag_free', 'alloc', 'vmap', 'page_owner'],
        },
      },
      { title: compile('BUG: Bad page map'), fmt: 'BUG: Bad page map' },
      { title: compile('BUG: workqueue lockup'), fmt: 'BUG: workqueue lockup', noStackTrace: true },
      {
        title: compile('BUG: sleeping function called from invalid context at (.*)'),
        fmt: 'BUG: sleeping function called from invalid context in %[2]v',
        stack: callTrace(),
      },
      {
        title: compile(r`BUG: using ([a-z_]+)\(\) in preemptible`),
        fmt: 'BUG: using %[1]v() in preemptible code in %[2]v',
        stack: callTrace(['dump_stack', 'preemption', 'preempt', 'debug_', 'processor_id', 'this_cpu']),
      },
      {
        title: compile('BUG: workqueue leaked lock or atomic'),
        report: compile(r`BUG: workqueue leaked lock or atomic(?:.*\n)+?.*last function: ([a-zA-Z0-9_]+)\n`),
        fmt: 'BUG: workqueue leaked lock or atomic in %[1]v',
        noStackTrace: true,
      },
      { title: compile('BUG: memory leak'), fmt: 'memory leak in %[1]v', stack: kmemleakStack },
      {
        title: compile('BUG: .*stack guard page was hit at'),
        fmt: 'BUG: stack guard page was hit in %[1]v',
        stack: ripThenTrace(stallFrameExtractor),
      },
      {
        // arm reports this where x86 prints a lockdep WARNING; same title to keep one bug one title.
        title: compile('BUG: Invalid wait context'),
        fmt: 'WARNING: locking bug in %[1]v',
        stack: callTrace(['lock_sock', 'release_sock']),
      },
      { title: compile(r`BUG:\s*(?:\n|$)`), fmt: 'BUG: corrupted', corrupted: true },
    ],
    suppressions: [
      compile('ODEBUG:'), // CONFIG_DEBUG_OBJECTS chatter.
      compile('Boot_DEBUG:'),
      compile('xlog_status:'),
      compile('DEBUG:'),
      compile('BUG: no syscalls can create resource'),
    ],
  },
  {
    header: 'WARNING:',
    formats: [
      {
        title: compile(r`WARNING: .*lib/debugobjects\.c.* (?:debug_print|debug_check|at)`),
        fmt: 'WARNING: ODEBUG bug in %[1]v',
        stack: warningStackFmt('debug_', 'rcu', 'hrtimer_', 'timer_', 'work_', 'percpu_', 'vunmap', 'vfree', '__free_', 'debug_check', 'kobject_'),
      },
      {
        title: compile(r`WARNING: .*mm/usercopy\.c.* (?:usercopy_warn|at)`),
        fmt: 'WARNING: bad usercopy in %[1]v',
        stack: warningStackFmt('usercopy', '__check'),
      },
      {
        title: compile(r`WARNING: .*lib/kobject\.c.* (?:kobject_|at)`),
        fmt: 'WARNING: kobject bug in %[1]v',
        stack: warningStackFmt('kobject_'),
      },
      {
        title: compile(r`WARNING: .*fs/proc/generic\.c.* (?:proc_register|at)`),
        fmt: 'WARNING: proc registration bug in %[1]v',
        stack: warningStackFmt('proc_'),
      },
      {
        // refcount_warn_saturate: the title names the refcount's user, not the refcount helpers.
        title: compile(r`WARNING: .*lib/refcount\.c.* (?:refcount_|at)`),
        fmt: 'WARNING: refcount bug in %[1]v',
        stack: warningStackFmt('refcount', 'kobject_'),
      },
      {
        title: compile(r`WARNING: .*kernel/locking/lockdep\.c.*lock_`),
        fmt: 'WARNING: locking bug in %[1]v',
        stack: warningStackFmt('lock_sock', 'release_sock'),
      },
      {
        title: compile('WARNING: .*still has locks held!'),
        report: compile(r`WARNING: .*still has locks held!(?:.*\n)+?.*at: {{FUNC}}`),
        fmt: 'WARNING: still has locks held in %[1]v',
      },
      { title: compile('WARNING: Nested lock was not taken'), fmt: 'WARNING: nested lock was not taken in %[1]v', stack: warningStackFmt() },
      {
        title: compile('WARNING: lock held when returning to user space'),
        report: compile(
          r`WARNING: lock held when returning to user space(?:.*\n)+?.*leaving the kernel with locks still held(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}`,
        ),
        fmt: 'WARNING: lock held when returning to user space in %[1]v',
        noStackTrace: true,
      },
      {
        title: compile(r`WARNING: .*mm/.*\.c.* k?.?malloc`),
        fmt: 'WARNING: kmalloc bug in %[1]v',
        stack: warningStackFmt('kmalloc', 'krealloc', 'slab', 'kmem'),
      },
      { title: compile(r`WARNING: .*mm/vmalloc.c.*__vmalloc_node`), fmt: 'WARNING: zero-size vmalloc in %[1]v', stack: warningStackFmt() },
      {
        title: compile('WARNING: .* usb_submit_urb'),
        fmt: 'WARNING in %[1]v/usb_submit_urb',
        stack: warningStackFmt('usb_submit_urb', 'usb_start_wait_urb', 'usb_bulk_msg', 'usb_interrupt_msg', 'usb_control_msg'),
      },
      // 6.19+ prints "WARNING: file.c:123 at 0x.., CPU#1" without the function.
      { title: compile(r`WARNING: {{SRC}} at 0x\d+, CPU#\d+`), fmt: 'WARNING in %[2]v', stack: warningStackFmt() },
      // 7.2's __warn() (kernel/panic.c) prints "WARNING: FILE:LINE at FUNC+0x../0x.., CPU#N: COMM/PID",
      // read by the {{SRC}} at {{FUNC}} row below; without a file (a WARN from code built without
      // bug-table file names) it is "WARNING: at FUNC+0x../0x.., CPU#N: COMM/PID".
      { title: compile(r`WARNING: at {{FUNC}}[^,\n]*, CPU#\d+`), fmt: 'WARNING in %[2]v', stack: warningStackFmt() },
      { title: compile('WARNING: .* at {{SRC}} {{FUNC}}'), fmt: 'WARNING in %[3]v', stack: warningStackFmt() },
      { title: compile('WARNING: {{SRC}} at {{FUNC}}'), fmt: 'WARNING in %[3]v', stack: warningStackFmt() },
      { title: compile(r`WARNING: \[.*\] {{SRC}} at {{FUNC}}.*`), fmt: 'WARNING in %[3]v', stack: warningStackFmt() },
      {
        title: compile('WARNING: possible circular locking dependency detected'),
        report: compile(r`WARNING: possible circular locking dependency detected(?:.*\n)+?.*is trying to acquire lock`),
        fmt: 'possible deadlock in %[1]v',
        stack: {
          // The lock being taken ("at:" after "is trying to acquire"), then the one held.
          parts: [compile('at: (?:{{PC}} +)?{{FUNC}}'), compile('at: (?:{{PC}} +)?{{FUNC}}'), parseStackTrace],
          // Workqueue flushing takes pseudo-locks of work items: the deadlock is the work's, not theirs.
          skip: ['process_one_work', 'flush_workqueue', 'drain_workqueue', 'destroy_workqueue'],
        },
      },
      lockdepAt('just changed the state of lock', 'possible irq lock inversion dependency detected', 'possible deadlock in %[1]v'),
      {
        title: compile('WARNING: .*-safe -> .*-unsafe lock order detected'),
        fmt: 'possible deadlock in %[1]v',
        stack: { parts: [compile('which became (?:.*) at:'), parseStackTrace] },
      },
      lockdepAt('is trying to acquire lock', 'possible recursive locking detected', 'possible deadlock in %[1]v'),
      {
        title: compile('WARNING: inconsistent lock state'),
        report: compile(r`WARNING: inconsistent lock state(?:.*\n)+?.*takes(?:.*\n)+?.*at: (?:{{PC}} +)?{{FUNC}}`),
        fmt: 'inconsistent lock state in %[2]v',
        stack: callTrace(),
      },
      {
        title: compile('WARNING: suspicious RCU usage'),
        report: compile(r`WARNING: suspicious RCU usage(?:.*\n)+?.*?{{SRC}}`),
        fmt: 'WARNING: suspicious RCU usage in %[2]v',
        stack: callTrace(['rcu', 'kmem', 'slab']),
      },
      {
        title: compile("WARNING: kernel stack regs at [0-9a-f]+ in [^ ]* has bad '([^']+)' value"),
        fmt: "WARNING: kernel stack regs has bad '%[1]v' value",
        noStackTrace: true,
      },
      {
        title: compile('WARNING: kernel stack frame pointer at [0-9a-f]+ in [^ ]* has bad value'),
        fmt: 'WARNING: kernel stack frame pointer has bad value',
        noStackTrace: true,
      },
      {
        title: compile('WARNING: bad unlock balance detected!'),
        fmt: 'WARNING: bad unlock balance in %[1]v',
        stack: { parts: [compile('{{PC}} +{{FUNC}}'), linuxCallTrace, parseStackTrace] },
      },
      {
        title: compile('WARNING: held lock freed!'),
        report: compile(r`WARNING: held lock freed!(?:.*\n)+?.*at:(?: {{PC}})? +{{FUNC}}`),
        fmt: 'WARNING: held lock freed in %[1]v',
      },
      { title: compile("WARNING: kernel stack regs .* has bad 'bp' value"), fmt: 'WARNING: kernel stack regs has bad value', noStackTrace: true },
      { title: compile('WARNING: kernel stack frame pointer .* has bad value'), fmt: 'WARNING: kernel stack regs has bad value', noStackTrace: true },
      { title: compile(r`WARNING:\s*(?:\n|$)`), fmt: 'WARNING: corrupted', corrupted: true },
    ],
    suppressions: [
      compile('WARNING: /etc/ssh/moduli does not exist, using fixed modulus'),
      compile('WARNING: workqueue cpumask: online intersect > possible intersect'),
      compile('WARNING: [Tt]he mand mount option'),
      compile(r`WARNING: Unsupported flag value\(s\) of 0x%x in DT_FLAGS_1`),
      compile('WARNING: Unprivileged eBPF is enabled with eIBRS'),
      compile('WARNING: fbcon: Driver'),
      compile('WARNING: See https.* for mitigation options.'),
      compile('WARNING: kernel not compiled with CPU_SRSO'),
      compile(r`EXT4-[Ff][Ss](?: \(.*\))?:`),
      /warning: .* uses (deprecated v2 capabilities|wireless extensions)/i,
      compile(r`XFS \(\w+\): WARNING`),
    ],
  },
  {
    header: 'INFO:',
    formats: [
      // Pre-4.x kernels printed lockdep headers as "INFO:" inside "[ INFO: ... ]".
      lockdepAt('is trying to acquire lock', r`possible circular locking dependency detected \]`, 'possible deadlock in %[1]v', 'INFO'),
      lockdepAt('just changed the state of lock', r`possible irq lock inversion dependency detected \]`, 'possible deadlock in %[1]v', 'INFO'),
      lockdepAt('is trying to acquire', r`SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected \]`, 'possible deadlock in %[1]v', 'INFO'),
      lockdepAt('is trying to acquire lock', r`possible recursive locking detected \]`, 'possible deadlock in %[1]v', 'INFO'),
      lockdepAt('takes', r`inconsistent lock state \]`, 'inconsistent lock state in %[1]v', 'INFO'),
      {
        title: compile('INFO: rcu_(?:preempt|sched|bh) (?:self-)?detected(?: expedited)? stall|INFO: rcu_tasks detected stalls'),
        fmt: 'INFO: rcu detected stall in %[1]v',
        stack: {
          parts: [compile('apic_timer_interrupt'), linuxRipFrame, parseStackTrace],
          parts2: [compile('(?:apic_timer_interrupt|Exception stack|el1h_64_irq)'), parseStackTrace],
          skip: ['apic_timer_interrupt', 'rcu'],
          extractor: stallFrameExtractor,
        },
      },
      {
        title: compile('INFO: trying to register non-static key'),
        fmt: 'INFO: trying to register non-static key in %[1]v',
        stack: callTrace(['stack', 'lock', 'IRQ']),
      },
      {
        title: compile('INFO: suspicious RCU usage'),
        report: compile(r`INFO: suspicious RCU usage(?:.*\n)+?.*?{{SRC}}`),
        fmt: 'INFO: suspicious RCU usage in %[2]v',
        stack: callTrace(['rcu', 'kmem', 'slab']),
      },
      {
        // 6.19+ says "blocked in I/O wait for more than" for tasks in D state on I/O.
        title: compile('INFO: task .* blocked (?:in I/O wait )?for more than [0-9]+ seconds'),
        fmt: 'INFO: task hung in %[1]v',
        stack: callTrace(undefined, hangFrameExtractor),
      },
      {
        title: compile("INFO: task .* can't die for more than .* seconds"),
        fmt: "INFO: task can't die in %[1]v",
        stack: callTrace(['schedule']),
      },
      // What is left of an old-style KASAN report whose header was lost.
      { title: compile('INFO: (Freed|Allocated) in (.*)'), fmt: 'INFO: %[1]v in %[2]v', corrupted: true },
      { title: compile(r`INFO:\s*(?:\n|$)`), fmt: 'INFO: corrupted', corrupted: true },
    ],
    suppressions: [
      compile('INFO: lockdep is turned off'),
      compile('INFO: Stall ended before state dump start'),
      compile('INFO: NMI handler'),
      compile('INFO: recovery required on readonly filesystem'),
      compile('(handler|interrupt).*took too long'),
      compile('INFO: sys_.* is not present in /proc/kallsyms'),
      compile('INFO: no syscalls can create resource'),
      compile('rmt_storage:INFO:'),
      compile('_INFO:'),
    ],
  },
  {
    header: 'Unable to handle kernel',
    formats: [
      {
        title: compile('Unable to handle kernel (paging request|NULL pointer dereference|access to user memory)'),
        fmt: 'BUG: unable to handle kernel %[1]v in %[2]v',
        stack: ripThenTrace(),
      },
    ],
    suppressions: [],
  },
  {
    header: 'general protection fault',
    formats: [{ title: compile('general protection fault.*:'), fmt: 'general protection fault in %[1]v', stack: ripThenTrace() }],
    // A user-space segfault report ("... error:0 in libc.so"), not a kernel oops.
    suppressions: [compile(r`general protection fault .* error:\d+ in `)],
  },
  {
    header: 'stack segment: ',
    formats: [{ title: compile('stack segment: '), fmt: 'stack segment fault in %[1]v', stack: ripThenTrace() }],
    suppressions: [],
  },
  {
    header: 'Kernel panic',
    formats: [
      {
        title: compile('Kernel panic - not syncing: stack-protector:'),
        report: compile('Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: {{FUNC}}'),
        fmt: 'kernel panic: stack is corrupted in %[1]v',
        noStackTrace: true,
      },
      {
        title: compile('Kernel panic - not syncing: stack-protector:'),
        report: compile('Kernel panic - not syncing: stack-protector: Kernel stack is corrupted in: [a-f0-9]+'),
        fmt: 'kernel panic: stack is corrupted in %[1]v',
        stack: callTrace(['stack_chk']),
      },
      {
        title: compile('Kernel panic - not syncing: corrupted stack end'),
        report: compile('Kernel panic - not syncing: corrupted stack end detected inside scheduler'),
        fmt: 'kernel panic: corrupted stack end in %[1]v',
        stack: callTrace(['schedule', 'retint_kernel'], stallFrameExtractor),
      },
      {
        title: compile('Kernel panic - not syncing: kernel stack overflow'),
        fmt: 'kernel stack overflow in %[1]v',
        stack: callTrace(['bad_stack'], stallFrameExtractor),
      },
      { title: compile('Kernel panic - not syncing: Attempted to kill init!'), fmt: 'kernel panic: Attempted to kill init!' },
      {
        title: compile("Kernel panic - not syncing: Couldn't open N_TTY ldisc for [^ ]+ --- error -[0-9]+"),
        fmt: "kernel panic: Couldn't open N_TTY ldisc",
      },
      // These follow another report (BUG, WARNING with panic_on_warn, hung task); seeing one
      // as the title means the report before it was lost.
      { title: compile('Kernel panic - not syncing: Fatal exception'), fmt: 'kernel panic: Fatal exception', corrupted: true },
      { title: compile('Kernel panic - not syncing: panic_on_warn set'), fmt: 'kernel panic: panic_on_warn set', corrupted: true },
      { title: compile('Kernel panic - not syncing: hung_task: blocked tasks'), fmt: 'kernel panic: hung_task: blocked tasks', corrupted: true },
      { title: compile('Kernel panic - not syncing: (.*)'), fmt: 'kernel panic: %[1]v' },
    ],
    suppressions: [],
  },
  {
    header: 'PANIC: double fault',
    formats: [{ title: compile('PANIC: double fault'), fmt: 'PANIC: double fault in %[1]v', stack: ripOnly }],
    suppressions: [],
  },
  {
    header: 'kernel BUG',
    formats: [
      { title: compile('kernel BUG at mm/usercopy.c'), fmt: 'BUG: bad usercopy in %[1]v', stack: callTrace(['usercopy', '__check']) },
      { title: compile('kernel BUG at lib/list_debug.c'), fmt: 'BUG: corrupted list in %[1]v', stack: callTrace() },
      {
        title: compile('kernel BUG at (.*)'),
        fmt: 'kernel BUG in %[2]v',
        // skb helpers BUG_ON their callers' mistakes.
        stack: { parts: [linuxRipFrame, linuxCallTrace, parseStackTrace], skip: ['^skb_'] },
      },
    ],
    suppressions: [],
  },
  { header: 'Kernel BUG', formats: [{ title: compile('Kernel BUG (.*)'), fmt: 'kernel BUG %[1]v' }], suppressions: [] },
  {
    header: 'BUG kmalloc-',
    formats: [{ title: compile('BUG kmalloc-.*: Object already free'), fmt: 'BUG: Object already free' }],
    suppressions: [],
  },
  { header: 'divide error:', formats: [{ title: compile('divide error: '), fmt: 'divide error in %[1]v', stack: ripOnly }], suppressions: [] },
  // Misspelt so by 9d06c4027f21 ("x86/entry: Convert Divide Error to IDTENTRY").
  { header: 'divide_error:', formats: [{ title: compile('divide_error: '), fmt: 'divide error in %[1]v', stack: ripOnly }], suppressions: [] },
  { header: 'invalid opcode:', formats: [{ title: compile('invalid opcode: '), fmt: 'invalid opcode in %[1]v', stack: ripOnly }], suppressions: [] },
  {
    header: 'UBSAN:',
    formats: [
      {
        title: compile('UBSAN:'),
        report: compile('UBSAN: Undefined behaviour in'),
        fmt: 'UBSAN: undefined-behaviour in %[1]v',
        stack: callTrace(['ubsan', 'overflow']),
      },
      { title: compile('UBSAN: array-index-out-of-bounds in'), fmt: 'UBSAN: array-index-out-of-bounds in %[1]v', stack: callTrace(['ubsan', 'overflow']) },
      { title: compile('UBSAN:'), report: compile('UBSAN: (.*?) in'), fmt: 'UBSAN: %[1]v in %[2]v', stack: callTrace(['ubsan', 'overflow']) },
    ],
    suppressions: [],
  },
  {
    header: 'Booting the kernel.',
    formats: [{ title: compile('^Booting the kernel'), fmt: 'unexpected kernel reboot', noStackTrace: true }],
    suppressions: [compile("Parsing ELF|Decompressing Linux|Unknown parameter '")],
  },
  {
    header: 'unregister_netdevice: waiting for',
    formats: [
      {
        title: compile('unregister_netdevice: waiting for (?:.*) to become free'),
        fmt: 'unregister_netdevice: waiting for DEV to become free',
        noStackTrace: true,
      },
    ],
    suppressions: [],
  },
  {
    // drivers/iommu/iommufd/main.c iommufd_object_dec_wait() (pr_crit; 6.12 in iommufd_object_remove()): an object that
    // must be destroyed now (a device unbound, an ioas torn down) still had a short-term
    // reference after 60 s, so it is left behind until the file is closed: a leaked reference,
    // the iommufd twin of unregister_netdevice's wait.
    header: 'Time out waiting for iommufd object to become free',
    formats: [
      {
        title: compile('Time out waiting for iommufd object to become free'),
        fmt: 'iommufd: leaked object reference: timed out waiting for an iommufd object to become free',
        noStackTrace: true,
      },
    ],
    suppressions: [],
  },
  {
    header: 'VFS: Close: file count is 0',
    formats: [{ title: compile('VFS: Close: file count is 0'), fmt: 'VFS: Close: file count is zero (use-after-free)', noStackTrace: true }],
    suppressions: [],
  },
  {
    header: 'VFS: Busy inodes after unmount',
    formats: [{ title: compile('VFS: Busy inodes after unmount'), fmt: 'VFS: Busy inodes after unmount (use-after-free)', noStackTrace: true }],
    suppressions: [],
  },
  {
    // /sys/kernel/debug/kmemleak, copied to the console by the harness; syzkaller's executor
    // prints "BUG: memory leak" before each such object instead.
    header: 'unreferenced object 0x',
    formats: [{ title: compile(r`unreferenced object 0x[0-9a-f]+ \(size [0-9]+\):`), fmt: 'memory leak in %[1]v', stack: kmemleakStack }],
    suppressions: [],
  },
  {
    header: 'trusty: panic',
    formats: [
      {
        title: compile('trusty: panic.* ASSERT FAILED'),
        report: compile(r`trusty: panic \(.*?\):(?: DEBUG)? ASSERT FAILED at \(.*?\): (.+)`),
        fmt: 'trusty: ASSERT FAILED: %[1]v',
        noStackTrace: true,
      },
      { title: compile('trusty: panic.* ASSERT FAILED.*: *(.*)'), fmt: 'trusty: ASSERT FAILED: %[1]v', corrupted: true },
      { title: compile('trusty: panic'), report: compile(r`trusty: panic \(.*?\): (.+)`), fmt: 'trusty: panic: %[1]v', noStackTrace: true },
    ],
    suppressions: [],
  },
  {
    header: 'Internal error:',
    formats: [{ title: compile('Internal error:'), fmt: 'Internal error in %[1]v', stack: ripThenTrace() }],
    suppressions: [],
  },
  {
    header: 'Unhandled fault:',
    formats: [{ title: compile('Unhandled fault:'), fmt: 'Unhandled fault in %[1]v', stack: ripThenTrace() }],
    suppressions: [],
  },
  {
    header: 'Alignment trap:',
    formats: [{ title: compile('Alignment trap:'), fmt: 'Alignment trap in %[1]v', stack: ripThenTrace() }],
    suppressions: [],
  },
];

/** Headers that can sit inside another report without starting a new one. */
export const reportStartIgnores: RegExp[] = [
  compile('invalid opcode: 0000'),
  compile('Kernel panic - not syncing'),
  compile('unregister_netdevice: waiting for'),
  // A double fault often happens while handling a page fault on badly corrupted memory.
  compile('PANIC: double fault'),
  compile('Internal error:'),
];

/** A header that continues the report whose header is the line just before it. */
export const reportContinuations: Array<{ header: RegExp; after: RegExp }> = [
  { header: /unreferenced object 0x/, after: /BUG: memory leak/ },
];

export function matchOops(line: string): Oops | undefined {
  return linuxOopses.find((oops) => line.includes(oops.header) && !oops.suppressions.some((re) => re.test(line)));
}
