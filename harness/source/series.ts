// A `--patch` as b4 and `git format-patch` hand it over: an mbox of several
// mails (a `[PATCH 0/N]` cover letter first, which changes no file), a folder
// of format-patch output (0000-cover-letter.patch, 0001-...), `.mbx`, and the
// same gzip-compressed (known by its magic bytes, not its name). Read into
// one applicable file per patch, the cover letters left out, and the
// `base-commit:` line b4 and `format-patch --base` write.
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { contentKey, type CacheLayout } from '../cache.ts';
import { HarnessError } from '../errors.ts';
import { parsePatchMails } from '../report/mbox-headers.ts';
import type { Progress } from '../log.ts';
import { debianReleaseOf, ensureDebianSource } from './debian-source.ts';
import { git } from './git.ts';
import { detectPatchFormat } from './patch.ts';

/** One patch of the series, as it will be applied. */
export interface SeriesPatch {
  /** The file handed to git: the user's own, or one mail of it written to the cache. */
  file: string;
  /** The mail's Subject ("[PATCH 2/3] iommu: ..."), or the file's name for a plain diff. */
  subject: string;
  /** The `--patch` file (or the file in a `--patch` folder) it came from. */
  source: string;
}

export interface Series {
  patches: SeriesPatch[];
  /** Cover letters left out: mails with no diff whose subject is "[PATCH 0/N]". */
  skipped: { subject: string; source: string }[];
  /** The first `base-commit:` line of the series, and the file it was in. */
  baseCommit?: { commit: string; source: string };
}

// The same separator as mbox-headers.ts: format-patch's "From <sha> Mon Sep 17 00:00:00 2001", b4's "From git@z ...".
const mboxSeparator = /^From \S+ +\S{3} \S{3} +\d+ \d\d:\d\d:\d\d \d{4}$/;

/** The names a folder of format-patch or b4 output holds its mails under. */
const seriesFileName = /\.(patch|diff|mbx|mbox|eml)(\.gz)?$/i;

export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Each mail of an mbox with its "From " line; text that is no mbox is one piece. */
export function splitMbox(text: string): string[] {
  const lines = text.split('\n');
  const starts = lines.flatMap((line, index) => (mboxSeparator.test(line.replace(/\r$/, '')) ? [index] : []));
  if (starts.length <= 1) return [text];
  // Anything before the first separator (a b4 preamble) belongs to no mail.
  return starts.map((start, n) => `${lines.slice(start, starts[n + 1] ?? lines.length).join('\n').replace(/\n*$/, '')}\n`);
}

/** Whether a mail changes anything: a git diff, a unified diff's header pair, or a binary patch. */
export function hasDiff(mail: string): boolean {
  return /^diff --git /m.test(mail) || /^--- \S.*\r?\n\+\+\+ \S/m.test(mail) || /^GIT binary patch$/m.test(mail);
}

/** "[PATCH 0/N]" (or "[RFC PATCH v2 00/12]") with no diff: the series' cover letter. */
export function isCoverLetter(mail: string): boolean {
  if (hasDiff(mail)) return false;
  return parsePatchMails(mail)[0]?.cover ?? false;
}

/** The `base-commit: SHA` b4 and `git format-patch --base` write (after the cover letter's or the last patch's signature). */
export function baseCommitOf(text: string): string | undefined {
  return /^base-commit: ([0-9a-f]{7,40})\s*$/m.exec(text)?.[1];
}

/** The Subject of a mail, or undefined for a plain diff. */
export function subjectOf(mail: string): string | undefined {
  return parsePatchMails(mail)[0]?.subject;
}

/** The text git gets: decompressed when gzip, the cover letters left out (their subjects in `skipped`). */
export function applicableText(bytes: Uint8Array): { text: string; skipped: string[] } {
  const text = decompressed(bytes, 'patch');
  if (detectPatchFormat(text) === 'diff') return { text, skipped: [] };
  const mails = splitMbox(text);
  const covers = mails.filter(isCoverLetter);
  return { text: mails.filter((mail) => !covers.includes(mail)).join(''), skipped: covers.map((mail) => subjectOf(mail) ?? 'cover letter') };
}

function decompressed(bytes: Uint8Array, name: string): string {
  if (!isGzip(bytes)) return Buffer.from(bytes).toString('utf8');
  try {
    return gunzipSync(bytes).toString('utf8');
  } catch (error) {
    throw new HarnessError('usage', `--patch ${name}: starts as gzip but does not decompress (${(error as Error).message})`);
  }
}

/** The files `input` names: itself, or a folder's series files in name order (0000-cover-letter.patch first). */
async function filesOf(input: string): Promise<string[]> {
  const info = await stat(input).catch(() => undefined);
  if (!info) throw new HarnessError('usage', `--patch ${input}: no such file`);
  if (!info.isDirectory()) return [input];
  const names = (await readdir(input)).filter((name) => seriesFileName.test(name)).sort();
  if (names.length === 0) throw new HarnessError('usage', `--patch ${input} is a folder with no .patch, .mbx or .diff files`);
  return names.map((name) => path.join(input, name));
}

/**
 * Reads the `--patch` inputs in order. A file is applied as given (its cover
 * letter left out when applied), except a gzip file, written decompressed to
 * `splitDir`, and with `split` (for `--each-patch`) an mbox of several
 * patches, written there one file per patch.
 */
export async function readSeries(inputs: readonly string[], options: { splitDir: string; split?: boolean }): Promise<Series> {
  const series: Series = { patches: [], skipped: [] };
  for (const input of inputs) {
    for (const source of await filesOf(input)) {
      const bytes = await readFile(source).catch(() => {
        throw new HarnessError('usage', `--patch ${source} is not readable`);
      });
      const text = decompressed(bytes, source);
      const base = baseCommitOf(text);
      if (base && !series.baseCommit) series.baseCommit = { commit: base, source };
      if (detectPatchFormat(text) === 'diff') {
        const file = isGzip(bytes) ? await writeMail(options.splitDir, text, source) : source;
        series.patches.push({ file, subject: path.basename(source), source });
        continue;
      }
      const mails = splitMbox(text);
      const patches: string[] = [];
      for (const mail of mails) {
        const subject = subjectOf(mail) ?? path.basename(source);
        if (isCoverLetter(mail)) series.skipped.push({ subject, source });
        else if (!hasDiff(mail)) throw new HarnessError('patch', `--patch ${source}: "${subject}" changes no file (no diff, and not a [PATCH 0/N] cover letter)`);
        else patches.push(mail);
      }
      if (patches.length === 0) continue;
      // The user's own file where git can take it (worktree.ts leaves a cover letter out itself): the
      // reproduce command and the report's Message-IDs then name what the user has.
      const asGiven = !isGzip(bytes) && (patches.length === 1 || !options.split);
      if (asGiven) {
        series.patches.push({ file: source, subject: patches.length === 1 ? (subjectOf(patches[0]!) ?? path.basename(source)) : `${patches.length} patches of ${path.basename(source)}`, source });
      } else if (options.split) {
        for (const mail of patches) series.patches.push({ file: await writeMail(options.splitDir, mail, source), subject: subjectOf(mail) ?? path.basename(source), source });
      } else {
        const file = await writeMail(options.splitDir, patches.join(''), source);
        series.patches.push({ file, subject: patches.length === 1 ? (subjectOf(patches[0]!) ?? path.basename(source)) : `${patches.length} patches of ${path.basename(source)}`, source });
      }
    }
  }
  return series;
}

/** Named by content, so the same series gives the same files (and the same kernel cache key) every run. */
async function writeMail(dir: string, text: string, source: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const stem = path.basename(source).replace(/(\.gz)$/i, '').replace(/\.(patch|diff|mbx|mbox|eml)$/i, '');
  const file = path.join(dir, `${contentKey(text).slice(0, 16)}-${stem.slice(0, 60)}.patch`);
  await writeFile(file, text);
  return file;
}

/** The lines that say what was read: each cover letter left out. */
export function describeSeries(series: Series): string[] {
  return series.skipped.map((cover) => `skipped the cover letter "${cover.subject}" (${path.basename(cover.source)}): it changes no file`);
}

/**
 * The commit to apply the series on: the series' base-commit when --ref was
 * not given and `repo` has it. `refGiven` wins (said). A base-commit the tree
 * lacks is a usage error: applied elsewhere, the series would be tested on
 * code its author never saw.
 */
export async function seriesBase(options: {
  series: Series;
  repo: string;
  /** How the tree is named to the user: the --src value, or "debian:6.12 (Debian's packaged source)". */
  repoLabel: string;
  ref: string;
  refGiven: boolean;
}): Promise<{ ref: string; line?: string }> {
  const base = options.series.baseCommit;
  if (!base) return { ref: options.ref };
  const short = base.commit.slice(0, 12);
  if (options.refGiven) return { ref: options.ref, line: `--ref ${options.ref} given: the series' base-commit ${short} is ignored` };
  const found = await git(options.repo, ['rev-parse', '--verify', '--quiet', `${base.commit}^{commit}`], { allowFailure: true });
  if (found.exitCode !== 0) {
    throw new HarnessError(
      'usage',
      `the series' base-commit ${base.commit} (in ${path.basename(base.source)}) is not in ${options.repoLabel}: fetch it (git -C ${options.repo} fetch REMOTE ${base.commit}) or pass --ref to apply the series on another commit`,
    );
  }
  const commit = found.stdout.trim();
  const head = (await git(options.repo, ['rev-parse', '--verify', '--quiet', 'HEAD^{commit}'], { allowFailure: true })).stdout.trim();
  // At HEAD the tree's uncommitted changes stay part of the test, as without a base-commit.
  return { ref: commit === head ? options.ref : commit, line: `base-commit ${short} from the series (${path.basename(base.source)}): the patches apply on it (--ref to choose another)` };
}

/** seriesBase for a --src as the CLI has it: Debian's source is unpacked (once) to be asked. */
export async function seriesBaseFor(options: { series: Series; src: string | undefined; ref: string; refGiven: boolean; layout: CacheLayout; progress: Progress }): Promise<{ ref: string; line?: string }> {
  if (!options.series.baseCommit || options.refGiven) return seriesBase({ ...options, repo: options.src ?? '.', repoLabel: options.src ?? '.' });
  const debian = debianReleaseOf(options.src);
  const repo = debian ? await ensureDebianSource(options.layout, debian, options.progress) : path.resolve(options.src ?? '.');
  const repoLabel = debian ? `debian:${debian} (Debian's packaged source, one commit the harness made; --src a kernel tree that has the base)` : repo;
  return seriesBase({ ...options, repo, repoLabel });
}
