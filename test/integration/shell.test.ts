// `iommu-harness shell`: the kernel a run would build, booted on one machine
// with a scenario's devices, a shell in the guest until it exits, QEMU gone after.
import { connect } from 'node:net';
import test from 'ava';
import { execa } from 'execa';
import { cli } from './helpers.ts';

test.serial("shell boots the machine with a scenario's devices, runs what the user types (vfio-helper on PATH), returns the shell's exit code and leaves no QEMU", async (t) => {
  t.timeout(20 * 60_000);
  const shell = await execa('node', [cli, 'shell', '--iommu', 'intel', '--scenario', 'vfio-bind-unbind'], {
    input: 'uname -r\nls /sys/bus/pci/devices | wc -l\ncommand -v vfio-helper\nexit 3\n',
    reject: false,
    all: true,
  });
  t.is(shell.exitCode, 3, shell.all);
  t.regex(shell.stdout, /^6\.\d+\.\d+/m);
  t.regex(shell.stdout, /^\/bin\/vfio-helper$/m);
  const console = /the console is (\S+);/.exec(shell.stderr)?.[1];
  t.truthy(console, shell.stderr);
  const left = await execa('pgrep', ['-f', `qemu-system.*${console!.replace(/\/console\.log$/, '')}`], { reject: false });
  t.is(left.stdout.trim(), '', 'QEMU ended with the shell');
});

test.serial('shell --gdb opens the gdbstub on 127.0.0.1 and prints the gdb command line', async (t) => {
  t.timeout(20 * 60_000);
  const child = execa('node', [cli, 'shell', '--iommu', 'virtio', '--gdb'], { input: 'sleep 8\nexit 0\n', reject: false, all: true });
  let line = '';
  await new Promise<void>((resolve) => {
    child.stderr?.on('data', (chunk: Buffer) => {
      line ||= /gdb: gdb \S+vmlinux -ex 'target remote 127\.0\.0\.1:(\d+)'/.exec(chunk.toString())?.[0] ?? '';
      if (line) resolve();
    });
    void child.then(() => resolve());
  });
  t.truthy(line, 'the gdb line was printed');
  const port = Number(/127\.0\.0\.1:(\d+)/.exec(line)?.[1]);
  // The gdb remote protocol: "?" asks why the target stopped; a stub answers with a stop reply ($S.. or $T..).
  const reply = await new Promise<string>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write('$?#3f'));
    let data = '';
    socket.on('data', (chunk) => {
      data += chunk.toString();
      if (/\$[ST][0-9a-f]{2}/.test(data)) {
        // Attaching stops the guest, as gdb does; "c" lets it go on, so the shell can finish.
        socket.end('+$c#63');
        resolve(data);
      }
    });
    socket.on('error', reject);
    setTimeout(() => reject(new Error(`no stop reply: ${data}`)), 10_000);
  });
  t.regex(reply, /\$[ST][0-9a-f]{2}/);
  const result = await child;
  t.is(result.exitCode, 0, result.all);
});
