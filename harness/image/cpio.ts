// A writer for the kernel's initramfs format (cpio "newc", see the kernel's
// Documentation/driver-api/early-userspace/buffer-format.rst), so image
// building needs no external cpio and its output depends only on its input.

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Buffer; mode?: number }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'chardev'; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

/** Serialises entries in order, then the trailer. Paths are relative (no leading slash). */
export function writeCpio(entries: CpioEntry[]): Buffer {
  const chunks: Buffer[] = [];
  let offset = 0;
  const push = (chunk: Buffer) => {
    chunks.push(chunk);
    offset += chunk.length;
  };
  const pad = () => {
    const rest = offset % 4;
    if (rest) push(Buffer.alloc(4 - rest));
  };
  const record = (name: string, mode: number, data: Buffer, rdev: [number, number], ino: number) => {
    const nameBytes = Buffer.from(`${name}\0`);
    const fields = [ino, mode, 0, 0, 1, 0, data.length, 0, 0, rdev[0], rdev[1], nameBytes.length, 0];
    push(Buffer.from(`070701${fields.map((field) => field.toString(16).padStart(8, '0')).join('')}`, 'ascii'));
    push(nameBytes);
    pad();
    push(data);
    pad();
  };

  entries.forEach((entry, index) => {
    const name = entry.path.replace(/^\/+/, '');
    const ino = index + 1;
    switch (entry.type) {
      case 'dir':
        record(name, S_IFDIR | (entry.mode ?? 0o755), Buffer.alloc(0), [0, 0], ino);
        break;
      case 'file':
        record(name, S_IFREG | (entry.mode ?? 0o644), entry.data, [0, 0], ino);
        break;
      case 'symlink':
        record(name, S_IFLNK | 0o777, Buffer.from(entry.target), [0, 0], ino);
        break;
      case 'chardev':
        record(name, S_IFCHR | (entry.mode ?? 0o600), Buffer.alloc(0), [entry.major, entry.minor], ino);
        break;
    }
  });
  record('TRAILER!!!', 0, Buffer.alloc(0), [0, 0], 0);
  return Buffer.concat(chunks);
}

/** Every parent directory of the given paths, parents first, each once. */
export function parentDirs(paths: string[]): string[] {
  const dirs = new Set<string>();
  for (const file of paths) {
    const parts = file.replace(/^\/+/, '').split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return [...dirs].sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b));
}
