// Debian unstable's kernel source (`--src debian:7.2`, `debian:unstable`),
// downloaded as one .deb through the host's own Debian mirror with an apt
// state of the harness's own: the host's sources, lists, dpkg status and
// locks are never touched, and nothing is installed.
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { ensureDir } from '../cache.ts';
import { buildEnv } from '../child-env.ts';
import { HarnessError, hostTrouble } from '../errors.ts';

/** The suite the newest kernel source comes from. */
export const unstableSuite = 'sid';

/** The archive key Debian's own Release files are signed with (package debian-archive-keyring). */
export const debianArchiveKeyring = '/usr/share/keyrings/debian-archive-keyring.gpg';

/** Lists younger than this are reused: a run does not fetch 11 MB of index to learn nothing changed. */
export const listsMaxAgeMs = 24 * 3600_000;

/** One `deb` source of the host's apt configuration. */
export interface AptSource {
  uri: string;
  suites: string[];
}

/** The `deb` entries of a one-line sources.list file (`deb [opts] URI SUITE COMPONENT...`). */
export function parseOneLineSources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    const match = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
    if (match?.[1] && match[2]) sources.push({ uri: match[1], suites: [match[2]] });
  }
  return sources;
}

/** The `deb` stanzas of a deb822 .sources file (`Types: deb`, `URIs:`, `Suites:`, `Enabled: no` skipped). */
export function parseDeb822Sources(text: string): AptSource[] {
  const sources: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    for (const line of stanza.split('\n')) {
      if (line.startsWith('#')) continue;
      const field = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
      if (field?.[1] && field[2] !== undefined) fields.set(field[1].toLowerCase(), field[2].trim());
    }
    if (!(fields.get('types') ?? '').split(/\s+/).includes('deb')) continue;
    if ((fields.get('enabled') ?? 'yes').toLowerCase() === 'no') continue;
    const suites = (fields.get('suites') ?? '').split(/\s+/).filter(Boolean);
    for (const uri of (fields.get('uris') ?? '').split(/\s+/).filter(Boolean)) sources.push({ uri, suites });
  }
  return sources;
}

/**
 * The host's Debian archive mirror: the first source whose URI is a Debian
 * archive (`.../debian`, not `debian-security`, not a third-party repository),
 * the one the host already trusts and reaches (a proxy or a local mirror included).
 */
export function debianMirror(sources: readonly AptSource[]): string | undefined {
  const archive = sources.find((source) => /\/debian\/?$/.test(source.uri) && /^(https?|file):/.test(source.uri));
  return archive?.uri.replace(/\/$/, '');
}

/** The host's apt sources, as apt reads them: sources.list and sources.list.d/*.list|*.sources. */
export async function hostAptSources(etc = '/etc/apt'): Promise<AptSource[]> {
  const sources = parseOneLineSources(await readFile(path.join(etc, 'sources.list'), 'utf8').catch(() => ''));
  const partsDir = path.join(etc, 'sources.list.d');
  for (const name of (await readdir(partsDir).catch(() => [] as string[])).sort()) {
    const text = await readFile(path.join(partsDir, name), 'utf8').catch(() => '');
    if (name.endsWith('.list')) sources.push(...parseOneLineSources(text));
    else if (name.endsWith('.sources')) sources.push(...parseDeb822Sources(text));
  }
  return sources;
}

/** `linux-source-X.Y` package names, newest release first (the `linux-source` metapackage left out). */
export function kernelSourcePackages(names: readonly string[]): string[] {
  const release = (name: string) => name.replace('linux-source-', '').split('.').map(Number) as [number, number];
  return names
    .filter((name) => /^linux-source-\d+\.\d+$/.test(name))
    .sort((a, b) => {
      const [am, an] = release(a);
      const [bm, bn] = release(b);
      return bm - am || bn - an;
    });
}

/** The `Version:` of `apt-cache show` output. */
export function showVersion(show: string): string | undefined {
  return /^Version:\s*(\S+)$/m.exec(show)?.[1];
}

/** The apt options that make apt use only the harness's own state under `stateDir`. */
export function privateAptOptions(stateDir: string): string[] {
  return [
    `Dir::Etc::sourcelist=${path.join(stateDir, 'sources.list')}`,
    'Dir::Etc::sourceparts=/nonexistent',
    // The host's pins are about the host's packages, not this download.
    'Dir::Etc::preferences=/nonexistent',
    'Dir::Etc::preferencesparts=/nonexistent',
    `Dir::State::Lists=${path.join(stateDir, 'lists')}`,
    `Dir::State::status=/dev/null`,
    `Dir::Cache=${path.join(stateDir, 'cache')}`,
    // No lock of the host's dpkg or lists is taken: nothing of the host's changes.
    'Debug::NoLocking=1',
    'Acquire::Languages=none',
    'APT::Get::List-Cleanup=0',
    // The state lives in the user's private cache, which apt's _apt sandbox user
    // cannot enter (as root apt would warn and download unsandboxed anyway; as
    // another user apt does not drop privileges at all).
    'APT::Sandbox::User=root',
  ].flatMap((option) => ['-o', option]);
}

/** What was downloaded: the .deb, its package and exact Debian version. */
export interface DownloadedPackage {
  deb: string;
  package: string;
  version: string;
}

async function apt(program: 'apt-get' | 'apt-cache', stateDir: string, args: string[], options: { cwd?: string; cancelSignal?: AbortSignal; timeout?: number } = {}) {
  return execa(program, [...privateAptOptions(stateDir), ...args], {
    reject: false,
    timeout: options.timeout ?? 10 * 60_000,
    extendEnv: false,
    env: buildEnv({ LC_ALL: 'C' }),
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.cancelSignal ? { cancelSignal: options.cancelSignal } : {}),
  });
}

function aptFailure(what: string, output: { stderr: string; stdout: string }): HarnessError {
  const trouble = hostTrouble(output.stderr);
  const lines = `${output.stderr}\n${output.stdout}`.split('\n').filter((line) => /^(E:|W:|Err:)/.test(line));
  return new HarnessError(trouble ? 'host' : 'setup', `${what}: ${trouble ?? lines[0] ?? output.stderr.split('\n')[0] ?? 'apt failed'}`, {
    excerpt: lines.slice(0, 5),
  });
}

/**
 * Makes the harness's apt state (its own sources.list naming the host's mirror
 * with suite sid) and refreshes its lists when they are older than a day.
 * Returns a warning when the refresh failed and older lists were used.
 */
export async function refreshUnstableLists(stateDir: string, options: { cancelSignal?: AbortSignal; now?: number } = {}): Promise<string | undefined> {
  const mirror = debianMirror(await hostAptSources());
  if (!mirror) throw new HarnessError('setup', "no Debian mirror in the host's apt sources (/etc/apt/sources.list, /etc/apt/sources.list.d/): the harness downloads Debian unstable's kernel source from the mirror the host already uses");
  await ensureDir(path.join(stateDir, 'lists', 'partial'));
  await ensureDir(path.join(stateDir, 'cache', 'archives', 'partial'));
  const sourcesList = `deb [signed-by=${debianArchiveKeyring}] ${mirror} ${unstableSuite} main\n`;
  const listPath = path.join(stateDir, 'sources.list');
  const previous = await readFile(listPath, 'utf8').catch(() => '');
  if (previous !== sourcesList) await writeFile(listPath, sourcesList);
  const release = (await readdir(path.join(stateDir, 'lists')).catch(() => [] as string[])).find((name) => name.endsWith(`_dists_${unstableSuite}_InRelease`));
  const age = release ? (options.now ?? Date.now()) - (await stat(path.join(stateDir, 'lists', release))).mtimeMs : Infinity;
  if (previous === sourcesList && age < listsMaxAgeMs) return undefined;
  let update = await apt('apt-get', stateDir, ['update'], options);
  let failed = update.exitCode !== 0 || /^(E:|Err:)/m.test(`${update.stdout}\n${update.stderr}`);
  // A mirror that stopped following sid (a snapshot, a frozen or lagging local
  // mirror) serves a Release file past its Valid-Until. Its lists are still
  // signed and checked; they are used as they are, and the run says how old
  // they are, since the kernel source it names may not be sid's newest.
  const expired = failed ? expiredRelease(`${update.stdout}\n${update.stderr}`) : undefined;
  if (expired) {
    update = await apt('apt-get', stateDir, ['-o', 'Acquire::Check-Valid-Until=false', 'update'], options);
    failed = update.exitCode !== 0 || /^(E:|Err:)/m.test(`${update.stdout}\n${update.stderr}`);
    if (!failed) return `Debian ${unstableSuite}'s Release file on ${mirror} expired ${expired} ago (the mirror no longer follows ${unstableSuite}): its signed lists are used as they are, so the kernel source may not be ${unstableSuite}'s newest`;
  }
  if (!failed) return undefined;
  if (release && previous === sourcesList) {
    const error = aptFailure(`could not refresh Debian ${unstableSuite}'s package lists from ${mirror}`, update);
    return `${error.message}; using the lists of ${new Date(Date.now() - age).toISOString().slice(0, 10)}`;
  }
  throw aptFailure(`could not read Debian ${unstableSuite}'s package lists from ${mirror}`, update);
}

/** How long ago apt says a Release file expired (`31d 15h 51min 59s`), when that is why an update failed. */
export function expiredRelease(output: string): string | undefined {
  return /Release file for \S+ is expired \(invalid since ([^)]+)\)/.exec(output)?.[1];
}

/** The `linux-source-X.Y` package and version unstable has for `wanted` (`unstable`: its newest). */
export async function resolveUnstablePackage(stateDir: string, wanted: string): Promise<{ package: string; version: string }> {
  const names = await apt('apt-cache', stateDir, ['pkgnames', 'linux-source-']);
  if (names.exitCode !== 0) throw aptFailure('apt-cache pkgnames failed', names);
  const packages = kernelSourcePackages(names.stdout.split('\n').map((line) => line.trim()));
  const name = wanted === 'unstable' ? packages[0] : packages.find((candidate) => candidate === `linux-source-${wanted}`);
  if (!name) {
    throw new HarnessError('usage', `--src debian:${wanted}: Debian ${unstableSuite} has ${packages.length ? packages.join(', ') : 'no linux-source-X.Y package'} today${packages[0] ? ` (--src debian:unstable names ${packages[0]})` : ''}`);
  }
  const show = await apt('apt-cache', stateDir, ['show', '--no-all-versions', name]);
  const version = showVersion(show.stdout);
  if (show.exitCode !== 0 || !version) throw aptFailure(`apt-cache show ${name} failed`, show);
  return { package: name, version };
}

/** Downloads `name`'s .deb (that one file, no dependencies) into `dir`. */
export async function downloadPackage(stateDir: string, name: string, version: string, dir: string, cancelSignal?: AbortSignal): Promise<DownloadedPackage> {
  await rm(dir, { recursive: true, force: true });
  await ensureDir(dir);
  const download = await apt('apt-get', stateDir, ['download', `${name}=${version}`], { cwd: dir, timeout: 30 * 60_000, ...(cancelSignal ? { cancelSignal } : {}) });
  const deb = (await readdir(dir)).find((file) => file.startsWith(`${name}_`) && file.endsWith('.deb'));
  if (download.exitCode !== 0 || !deb) throw aptFailure(`could not download ${name} ${version}`, download);
  return { deb: path.join(dir, deb), package: name, version };
}

/** Extracts a .deb's files (dpkg-deb -x: no maintainer scripts, nothing installed) into `dir`. */
export async function extractDeb(deb: string, dir: string, cancelSignal?: AbortSignal): Promise<void> {
  await ensureDir(dir);
  const extract = await execa('dpkg-deb', ['-x', deb, dir], { reject: false, timeout: 10 * 60_000, extendEnv: false, env: buildEnv(), ...(cancelSignal ? { cancelSignal } : {}) });
  if (extract.exitCode !== 0) {
    const trouble = hostTrouble(extract.stderr);
    throw new HarnessError(trouble ? 'host' : 'setup', `could not extract ${deb}: ${trouble ?? extract.stderr.split('\n')[0]}`);
  }
}
