// Keys are made once per installation, never shipped: the client key lets the
// harness into its guests, and the guest's host key is pinned so the harness
// knows it talks to its own guest and not to whatever answers on the port.
import { chmod, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import ssh2 from 'ssh2';
import { ensureDir, type CacheLayout } from '../cache.ts';
import { HarnessError } from '../errors.ts';
import { exists } from '../files.ts';
import { withLock } from '../lock.ts';

export interface HarnessKeys {
  /** OpenSSH private key the harness logs in with. */
  clientPrivateKey: string;
  /** `ssh-ed25519 AAAA...` line for the guest's authorized_keys. */
  clientPublicKey: string;
  /** The guest's host key in dropbear's own format, baked into the image. */
  hostKeyDropbear: string;
  /** The host key's public blob, which the SSH client accepts and nothing else. */
  hostKeyBlob: Buffer;
}

export async function ensureKeys(layout: CacheLayout): Promise<HarnessKeys> {
  const dir = await ensureDir(layout.keys);
  await chmod(dir, 0o700);
  const files = keyFiles(dir);
  if (!(await complete(files))) {
    await withLock(layout.locks, 'keys', 60_000, async () => {
      if (!(await complete(files))) await makeKeys(dir, files);
    });
  }
  const hostPublic = (await readFile(files.hostPublic, 'utf8')).trim();
  return {
    clientPrivateKey: await readFile(files.clientPrivate, 'utf8'),
    clientPublicKey: (await readFile(files.clientPublic, 'utf8')).trim(),
    hostKeyDropbear: files.host,
    hostKeyBlob: Buffer.from(hostPublic.split(' ')[1] ?? '', 'base64'),
  };
}

type KeyFiles = ReturnType<typeof keyFiles>;

/** The key files, in the order they are put in place: the host's public key, which marks a complete set, last. */
function keyFiles(dir: string) {
  return {
    clientPrivate: path.join(dir, 'client_ed25519'),
    clientPublic: path.join(dir, 'client_ed25519.pub'),
    host: path.join(dir, 'host_ed25519.dropbear'),
    hostPublic: path.join(dir, 'host_ed25519.pub'),
  };
}

async function complete(files: KeyFiles): Promise<boolean> {
  for (const file of Object.values(files)) if (!(await exists(file))) return false;
  return true;
}

/**
 * Makes a whole new set in a fresh folder and renames it into place, so an
 * interruption leaves either the old set, or an incomplete one that the next
 * run replaces: never a host key that dropbearkey refuses to overwrite, nor a
 * public key that belongs to another private key. The caller holds the lock.
 */
async function makeKeys(dir: string, files: KeyFiles): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name.startsWith(stagingPrefix)) await rm(path.join(dir, name), { recursive: true, force: true });
  }
  // The marker goes first, so a set half renamed is never taken as complete.
  await rm(files.hostPublic, { force: true });
  const staging = await mkdtemp(path.join(dir, stagingPrefix));
  try {
    const staged = (file: string) => path.join(staging, path.basename(file));
    const client = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'iommu-harness' });
    await writeFile(staged(files.clientPrivate), client.private, { mode: 0o600 });
    await writeFile(staged(files.clientPublic), `${client.public}\n`, { mode: 0o600 });
    await dropbearkey(['-t', 'ed25519', '-f', staged(files.host)]);
    await chmod(staged(files.host), 0o600);
    const shown = await dropbearkey(['-y', '-f', staged(files.host)]);
    const publicLine = shown.split('\n').find((line) => line.startsWith('ssh-ed25519 '));
    if (!publicLine) throw new HarnessError('setup', 'dropbearkey -y printed no ssh-ed25519 public key');
    await writeFile(staged(files.hostPublic), `${publicLine}\n`, { mode: 0o600 });
    for (const file of Object.values(files)) await rename(staged(file), file);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

const stagingPrefix = 'staging-';

async function dropbearkey(args: string[]): Promise<string> {
  const result = await execa('dropbearkey', args, { reject: false, timeout: 60_000 });
  if (result.exitCode === undefined && (result.cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new HarnessError('prerequisite', 'dropbearkey is not installed: apt-get install dropbear-bin');
  }
  if (result.exitCode !== 0) throw new HarnessError('setup', `dropbearkey ${args.join(' ')} failed: ${(result.stderr || result.shortMessage || 'no output').trim().split('\n')[0] ?? ''}`);
  return result.stdout;
}
