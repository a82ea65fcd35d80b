// How every QEMU is started: under a parent-death signal, so it dies with the
// harness whatever kills the harness (kill -9 and the OOM killer included),
// which no exit handler can promise. setpriv execs QEMU, which keeps the signal.
// Linux ties the signal to the thread that forked; Node forks from its main thread.
export const qemuBinary = 'qemu-system-x86_64';

/** `binary`: the machine's architecture's QEMU (qemuBinaryFor in qemu-args.ts); x86_64's by default. */
export function qemuCommand(args: string[], binary: string = qemuBinary): { file: string; args: string[] } {
  return { file: 'setpriv', args: ['--pdeathsig', 'KILL', '--', binary, ...args] };
}
