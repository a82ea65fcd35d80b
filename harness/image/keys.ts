// Keys are made once per installation, never shipped: the client key lets the
// harness into its guests, and the guest's host key is pinned so the harness
// knows it talks to its own guest and not to whatever answers on the port.
import { chmod, readFile, writeFile } from 'node:fs/promises';
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
  const files = {
    clientPrivate: path.join(dir, 'client_ed25519'),
    clientPublic: path.join(dir, 'client_ed25519.pub'),
    host: path.join(dir, 'host_ed25519.dropbear'),
    hostPublic: path.join(dir, 'host_ed25519.pub'),
  };
  if (!(await exists(files.hostPublic))) {
    await withLock(layout.locks, 'keys', 60_000, async () => {
      if (await exists(files.hostPublic)) return;
      const client = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'iommu-harness' });
      await writeFile(files.clientPrivate, client.private, { mode: 0o600 });
      await writeFile(files.clientPublic, `${client.public}\n`, { mode: 0o600 });
      const made = await execa('dropbearkey', ['-t', 'ed25519', '-f', files.host], { reject: false });
      if (made.exitCode !== 0) throw new HarnessError('setup', `dropbearkey failed: ${made.stderr.trim()}`);
      await chmod(files.host, 0o600);
      const shown = await execa('dropbearkey', ['-y', '-f', files.host], { reject: false });
      const publicLine = shown.stdout.split('\n').find((line) => line.startsWith('ssh-ed25519 '));
      if (!publicLine) throw new HarnessError('setup', 'dropbearkey -y printed no ssh-ed25519 public key');
      // Written last: its presence means the set is complete.
      await writeFile(files.hostPublic, `${publicLine}\n`, { mode: 0o600 });
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
