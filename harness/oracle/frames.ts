// SPDX-License-Identifier: Apache-2.0
// Derived from google/syzkaller pkg/report (linux.go: linuxStackParams, the frame extractors; report.go: extractStackFrame), Copyright syzkaller project authors,
// Apache License 2.0 (LICENSES/Apache-2.0.txt, NOTICE). Ported to TypeScript and modified for
// iommu-harness; the changes are this project's.
// Picking the guilty frame out of a stack trace, ported from syzkaller's pkg/report
// (linuxStackParams, extractStackFrame). A title names the first frame that is not a helper:
// the WARN machinery, lockdep, allocators, lock and refcount wrappers, kobject/kref release
// paths and so on, so the same bug gets the same title however it was reached.
import { compile, matchesAny } from './regex.ts';

/** A step of a StackFmt that means: parse frames from here to the next stack start. */
export const parseStackTrace = Symbol('parseStackTrace');
export type StackPart = RegExp | typeof parseStackTrace;

/** Picks the guilty frame from the candidate frames; returns the frame and its index, or undefined. */
export type FrameExtractor = (frames: string[]) => [string, number] | undefined;

export interface StackFmt {
  /** Matched in order: a regexp advances to its line (and yields its captured frame); parseStackTrace parses frames. */
  parts: StackPart[];
  /** Tried when parts yield no frame (older kernels print no RIP line before the trace). */
  parts2?: StackPart[];
  /** Extra helper patterns for this kind of report, on top of the common ones. */
  skip?: string[];
  extractor?: FrameExtractor;
}

export const linuxRipFrame = compile(
  '(?:IP|NIP|pc |PC is at):? (?:(?:[0-9]+:)?(?:{{PC}} +){0,2}{{FUNC}}|(?:[0-9]+:)?0x[0-9a-f]+|(?:[0-9]+:)?{{PC}} +\\[< *\\(null\\)>\\] +\\(null\\)|[0-9]+: +\\(null\\))',
);
export const linuxCallTrace = compile('(?:Call (?:T|t)race:)|(?:Backtrace:)');

export const stackStartRes: RegExp[] = [
  /Call (?:T|t)race/,
  /Allocated:/,
  /Allocated by task [0-9]+:/,
  /Freed:/,
  /Freed by task [0-9]+:/,
  // 'backtrace:' of kmemleak, not lockdep's 'stack backtrace:'; newer kmemleak adds a crc.
  /[^k] backtrace(?: \(crc [0-9a-fA-F]*\))?:/,
  /Backtrace:/,
  /Uninit was stored to memory at/,
];

export const frameRes: RegExp[] = [
  compile('^ *(?:{{PC}} ){0,2}{{FUNC}}'),
  // arm prints "[<pc>] (func) from [<pc>] (caller+0x..)".
  compile('^ *{{PC}} \\(([a-zA-Z0-9_.]+)\\) from {{PC}} \\({{FUNC}}'),
];

const commonSkip = [
  '__sanitizer', '__asan', 'kasan', 'hwasan', '__msan', 'kmsan', 'kcsan_setup_watchpoint',
  'check_memory_region', 'check_heap_object', 'check_object', 'read_word_at_a_time',
  '(read|write)_once_.*nocheck', 'print_address_description', 'panic', 'invalid_op', 'report_bug',
  'fixup_bug', 'print_report', 'print_usage_bug', 'do_error', '_trap$|do_trap', 'show_stack',
  'dump_stack', 'walk_stack', 'dump_backtrace', 'warn_slowpath', 'warn_alloc', 'warn_bogus', '__warn',
  'alloc_page', 'k?v?(?:m|z|c)alloc', 'krealloc', 'kmem_cache', 'allocate_slab',
  '__alloc_frozen_pages_noprof', 'folio_(?:alloc|unlock)', 'filemap_alloc_folio',
  '__filemap_get_folio', 'find_or_create_page', 'do_read_cache_folio', 'read_cache_page',
  'pagecache_get_page', 'grab_cache_page_write_begin', 'slab_', 'debug_object',
  'timer_is_static_object', 'work_is_static_object', '__might_fault', 'print_unlock', 'imbalance_bug',
  'lockdep', 'bh_enable', 'bh_disable', 'perf_trace', 'lock_acquire', 'lock_release', 'lock_class',
  'mark_lock', '(reacquire|mark)_held_locks', 'raw_spin_rq', 'spin_lock', 'spin_trylock',
  'spin_unlock', 'read_lock', 'read_trylock', 'write_lock', 'write_trylock', 'read_unlock',
  'write_unlock', '^down$', 'down_read', 'down_write', 'down_read_trylock', 'down_write_trylock',
  'down_trylock', 'up_read', 'up_write', '^mutex_', '^__mutex_', '^rt_mutex_', 'owner_on_cpu',
  'osq_lock', 'osq_unlock', 'atomic(64)?_(dec|inc|read|set|or|xor|and|add|sub|fetch|xchg|cmpxchg|try)',
  '(set|clear|change|test)_bit', '__wake_up', '^refcount_', '^kref_', 'ref_tracker', 'seqprop_assert',
  'memcpy', 'memcmp', 'memset', 'memchr', 'memmove', 'memdup', 'strcmp', 'strncmp', 'strcpy',
  'strlcpy', 'strncpy', 'strscpy', 'strlen', 'strstr', 'strnstr', 'strnlen', 'strchr', 'strdup',
  'strndup', 'copy_to_user', 'copy_from_user', 'copy_to_iter', 'copy_from_iter', 'copy_page_to_iter',
  'copy_page_from_iter', 'copy_folio_to_iter', '^copyin$', '^copyout$', 'put_user', 'get_user',
  'might_fault', 'might_sleep', 'list_add', 'list_del', 'list_replace', 'list_move', 'list_splice',
  '^rb_', '^__rb_', '_indirect_thunk_', 'string', 'pointer', 'snprintf', 'scnprintf', 'kasprintf',
  'kvasprintf', 'printk', 'va_format', 'dev_info', 'dev_notice', 'dev_warn', 'dev_err', 'dev_alert',
  'dev_crit', 'dev_emerg', 'program_check_exception', 'program_check_common', 'del_timer',
  'flush_work', '__cancel_work_timer', 'cancel_work_sync', 'try_to_grab_pending', 'flush_workqueue',
  'drain_workqueue', 'destroy_workqueue', 'queue_work', 'finish_wait', 'kthread_stop', 'kobject_',
  'add_uevent_var', 'get_device_parent', 'device_add', 'device_del', 'device_unregister',
  'device_destroy', 'device_release', 'devres_release_all', 'hwrng_unregister', 'i2c_del_adapter',
  '__unregister_client', 'device_for_each_child', 'rollback_registered', 'unregister_netdev',
  'sysfs_remove', 'device_remove_file', 'tty_unregister_device', 'dummy_urb_enqueue', 'usb_kill_urb',
  'usb_kill_anchored_urbs', 'usb_control_msg', 'usb_hcd_submit_urb', 'usb_submit_urb', '^complete$',
  'wait_for_completion', '^kv?free$', 'kfree_skb', 'readb$', 'readw$', 'readl$', 'readq$', 'writeb$',
  'writew$', 'writel$', 'writeq$', 'logic_in', 'logic_out', '^crc\\d+', 'crc_itu_t',
  '__might_resched', 'assertfail', '^iput$', '^iput_final$', '^ihold$', 'hex_dump_to_buffer',
  'print_hex_dump', '^klist_', '(trace|lockdep)_(hard|soft)irq', '^(un)?lock_page',
  'stack_trace_consume_entry', 'arch_stack_walk', 'stack_trace_save', 'insert_work',
  '__queue_delayed_work', 'queue_delayed_work_on', 'ida_free', 'do_(kernel|translation)_fault',
  'do_mem_abort', 'el1_abort', 'el1h_64_sync(?:_handler)?', 'print_tainted', 'xas_(?:start|load|find)',
  'find_lock_entries', 'truncate_inode_pages_range', '__phys_addr', '__fortify_report',
  'cleanup_srcu_struct', 'rhashtable_lookup', 'extract_(user|iter)_to_sg', 'drop_nlink',
  '^get_taint$', '^put_device$', 'lock_timer_base', '__timer_delete_sync', 'sk_stop_timer_sync',
  '__mod_timer', 'fast_dput', 'dput',
];

// Fault injection stacks get mixed into crash reports; a report that shows one is not trusted.
const corruptedLines = [compile('^( \\[<?(?:0x)?[0-9a-f]+>?\\])? should_fail(slab)?(\\.[a-z0-9.]+)?\\+0x')];

// Syscall entry points are spelled differently per arch and kernel version.
const stripFramePrefixes = [
  'SYSC_', 'SyS_', 'sys_', '__x64_', '__ia32_', '__arm64_', '____sys_', '___sys_', '__sys_', '__se_',
  '__se_sys_', '__do_sys_', 'compat_SYSC_', 'compat_SyS_', 'ksys_',
];

function stripFrame(frame: string): string {
  let best = frame;
  for (const prefix of stripFramePrefixes) {
    if (frame.startsWith(prefix) && frame.length - prefix.length < best.length) best = frame.slice(prefix.length);
  }
  return best;
}

export interface ExtractedFrames {
  /** One guilty frame per stack the format parses ("corrupted" when a stack gave none). */
  frames: string[];
  ok: boolean;
}

const skipCache = new Map<StackFmt, RegExp>();

function skipRe(stack: StackFmt): RegExp {
  let re = skipCache.get(stack);
  if (!re) {
    re = new RegExp([...commonSkip, ...(stack.skip ?? [])].join('|'));
    skipCache.set(stack, re);
  }
  return re;
}

export function extractStackFrames(stack: StackFmt, text: string): ExtractedFrames {
  const skip = skipRe(stack);
  const first = extractWith(stack.parts, text, skip, stack.extractor);
  if (first.ok || !stack.parts2) return first;
  return extractWith(stack.parts2, text, skip, stack.extractor);
}

function pick(raw: string[], extractor: FrameExtractor | undefined): string | undefined {
  if (raw.length === 0) return undefined;
  const stripped = raw.map(stripFrame);
  if (!extractor) return stripped[0];
  return extractor(stripped)?.[0];
}

function appendFrames(frames: string[], match: RegExpExecArray | null, skip: RegExp): void {
  if (!match) return;
  for (const frame of match.slice(1)) {
    if (frame !== undefined && !skip.test(frame)) frames.push(frame);
  }
}

function extractWith(
  parts: StackPart[],
  text: string,
  skip: RegExp,
  extractor: FrameExtractor | undefined,
): ExtractedFrames {
  const lines = text.split('\n');
  let pos = 0;
  let raw: string[] = [];
  const results: string[] = [];
  let ok = true;
  let stacks = 0;
  const emit = (): void => {
    const frame = pick(raw, extractor);
    if (frame === undefined) ok = false;
    results.push(frame ?? 'corrupted');
    raw = [];
  };
  for (let partIdx = 0; ; partIdx++) {
    const part = parts[partIdx];
    if (part === undefined || (part === parseStackTrace && stacks > 0)) emit();
    if (part === undefined) break;
    if (part === parseStackTrace) {
      stacks++;
      while (pos < lines.length) {
        const ln = lines[pos++] ?? '';
        if (matchesAny(ln, corruptedLines)) {
          ok = false;
          break;
        }
        if (matchesAny(ln, stackStartRes)) break;
        const next = parts[partIdx + 1];
        if (next !== undefined && next !== parseStackTrace) {
          const m = next.exec(ln);
          if (m) {
            appendFrames(raw, m, skip);
            partIdx++;
            break;
          }
        }
        let m: RegExpExecArray | null = null;
        for (const re of frameRes) {
          m = re.exec(ln);
          if (m) break;
        }
        appendFrames(raw, m, skip);
      }
    } else {
      while (pos < lines.length) {
        const ln = lines[pos++] ?? '';
        if (matchesAny(ln, corruptedLines)) {
          ok = false;
          break;
        }
        const m = part.exec(ln);
        if (!m) continue;
        appendFrames(raw, m, skip);
        break;
      }
    }
  }
  return { frames: results, ok };
}

// During stalls the kernel loops somewhere and the trace stops at a random point of the loop,
// so syzkaller names the frame just above a well-known dispatch point instead of the top frame.
const stallAnchorFrames = [
  'process_one_work', 'do_syscall_', 'do_fast_syscall_', 'sysenter_dispatch', 'tracesys_phase2',
  'el0_svc_handler', 'invoke_syscall', 'ret_fast_syscall', 'netif_receive_skb', 'do_softirq',
  'call_timer_fn', '_run_timers', 'run_timer_softirq', 'hrtimer_run', 'run_ksoftirqd',
  'smpboot_thread_fn', '^kthread$', 'start_secondary', 'cpu_startup_entry', 'ret_from_fork',
  'vfs_write', 'vfs_read', 'vfs_iter_read', 'vfs_iter_write', 'do_iter_read', 'do_iter_write',
  'call_read_iter', 'call_write_iter', 'new_sync_read', 'new_sync_write', 'vfs_ioctl', 'ksys_ioctl',
  'compat_ioctl', 'compat_sys_ioctl', 'blkdev_driver_ioctl', 'blkdev_ioctl', 'do_iter_readv_writev',
  '^call_mmap', 'mmap_region', 'do_mmap', 'do_dentry_open', 'vfs_open', '^sock_sendmsg',
  '^sock_recvmsg', '^sock_release', '^__sock_release', '^setsockopt$', 'kernel_setsockopt',
  'sock_common_setsockopt', '^listen$', 'kernel_listen', 'sk_common_release', '^sock_mmap',
  '^accept$', 'kernel_accept', '^sock_do_ioctl', '^sock_ioctl', '^compat_sock_ioctl',
  '^nfnetlink_rcv_msg', '^rtnetlink_rcv_msg', '^netlink_dump', '^(sys_)?(socketpair|connect|ioctl)',
  '__do_fault', 'do_page_fault', '^page_fault$', '__fput', 'task_work_run', 'exit_to_usermode',
  'smp_call_function', 'tasklet_action', 'tasklet_hi_action',
].map((s) => new RegExp(s));

export const stallFrameExtractor: FrameExtractor = (frames) => {
  let prev = frames[0];
  let prevIdx = 0;
  for (const [i, frame] of frames.entries()) {
    if (matchesAny(frame, stallAnchorFrames)) {
      if (frame.includes('smp_call_function')) return ['smp_call_function', i];
      return prev === undefined ? undefined : [prev, prevIdx];
    }
    prev = frame;
    prevIdx = i;
  }
  return undefined;
};

// Hung tasks show victims, not culprits: hangs on synchronize_rcu or rtnl_lock are bucketed
// together, and scheduler/locking/waiting frames are passed over.
const hangAnchors: Array<[string, string]> = [
  ['rtnl_lock', ''],
  ['synchronize_rcu', 'synchronize_rcu'],
  ['synchronize_srcu', 'synchronize_rcu'],
  ['synchronize_net', 'synchronize_rcu'],
  ['synchronize_sched', 'synchronize_rcu'],
];
const hangSkip = [
  'sched', '_lock', '_slowlock', 'down', 'rwsem', 'completion', 'kthread', 'wait', 'synchronize',
  'context_switch', '__switch_to', 'cancel_delayed_work', 'rcu_barrier',
];

export const hangFrameExtractor: FrameExtractor = (frames) => {
  for (const [i, frame] of frames.entries()) {
    for (const [anchor, replacement] of hangAnchors) {
      if (frame.includes(anchor)) return [replacement || frame, i];
    }
  }
  for (const [i, frame] of frames.entries()) {
    if (!hangSkip.some((s) => frame.includes(s))) return [frame, i];
  }
  return undefined;
};
