// The reading under `parse`: compression known by the bytes, stdin, and input that holds no kernel log.
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import test from 'ava';
import { execa } from 'execa';
import { compressionOf, holdsKernelLog, readLog, requireKernelLog } from '../../harness/cli/read-log.ts';
import { HarnessError } from '../../harness/errors.ts';

const log = '[    0.000000] Linux version 6.12.0 (x@y) #1 SMP\n[    1.234567] iommu: Adding device 0000:01:00.0 to group 4\n';

test('gzip and xz are known by their magic bytes; text is text', async (t) => {
  t.is(compressionOf(gzipSync(log)), 'gzip');
  t.is(compressionOf((await execa('xz', ['--stdout'], { input: log, encoding: 'buffer' })).stdout), 'xz');
  t.is(compressionOf(Buffer.from(log)), 'none');
  t.is(compressionOf(Buffer.alloc(0)), 'none');
});

test('stdin is read whole and decompressed like a file', async (t) => {
  t.is(await readLog('-', Readable.from([gzipSync(log)])), log);
  t.is(await readLog('-', Readable.from([Buffer.from(log.slice(0, 10)), Buffer.from(log.slice(10))])), log);
});

test('a kernel log is a printk timestamp or the boot banner; anything else is a usage error naming the input', (t) => {
  t.true(holdsKernelLog(log));
  t.true(holdsKernelLog('<6>[   12.000001] pci 0000:00:01.0: [1b36:000c] type 01 class 0x060400\n'));
  t.true(holdsKernelLog('Linux version 6.1.0-28-amd64 (debian-kernel@lists.debian.org)\n'));
  t.false(holdsKernelLog('root:x:0:0:root:/root:/bin/bash\nLinux rocks [1.0]\n'));
  t.throws(() => requireKernelLog('root:x:0:0:root:/root:/bin/bash\n', '/etc/passwd'), { instanceOf: HarnessError, message: /^\/etc\/passwd holds no kernel log/ });
  t.throws(() => requireKernelLog('\n \n', '-'), { instanceOf: HarnessError, message: /^stdin is empty/ });
  t.notThrows(() => requireKernelLog(log, 'x.log'));
});
