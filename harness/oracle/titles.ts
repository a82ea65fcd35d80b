// SPDX-License-Identifier: Apache-2.0
// Derived from google/syzkaller pkg/report (report.go: extractDescription, dynamicTitleReplacement, sanitizeTitle), Copyright syzkaller project authors,
// Apache License 2.0 (LICENSES/Apache-2.0.txt, NOTICE). Ported to TypeScript and modified for
// iommu-harness; the changes are this project's.
// Turning a report's text into its title, the way syzkaller's extractDescription does, and
// normalising it (pkg/report/report.go dynamicTitleReplacement, sanitizeTitle) so that the same
// bug gets the same title across boots: no addresses, pids, offsets, CPU or line numbers.
import { extractStackFrames } from './frames.ts';
import type { Oops, OopsFormat } from './formats.ts';

export interface Description {
  title: string;
  /** Why the title is a best effort, if it is. */
  corrupted?: string;
  /** The matched row; absent when no row matched and the header line became the title. */
  format?: OopsFormat;
  /** The frames the title was built from, first is the guilty one. */
  frames: string[];
}

export function extractDescription(text: string, oops: Oops): Description | undefined {
  let startPos = text.length;
  let best: Description | undefined;
  let matchedTitle = false;
  for (const format of oops.formats) {
    let match = format.title.exec(text);
    if (!match || match.index > startPos) continue;
    if (match.index === startPos && best) continue;
    if (match.index < startPos) {
      best = undefined;
      startPos = match.index;
    }
    matchedTitle = true;
    if (format.report) {
      match = format.report.exec(text);
      if (!match) continue;
    }
    const args = match.slice(1).map((a) => a ?? '');
    let frames: string[] = [];
    let corrupted: string | undefined;
    if (format.stack) {
      const extracted = extractStackFrames(format.stack, text.slice(match.index));
      frames = extracted.frames;
      if (!extracted.ok) corrupted = 'no frames in a stack trace';
    }
    best = { title: formatTitle(format.fmt, [...args, ...frames]), frames, format };
    if (corrupted) best.corrupted = corrupted;
  }
  if (!best) {
    // A header with no format row that fits: its own line is the best title there is.
    const pos = text.indexOf(oops.header);
    if (pos < 0) return undefined;
    const end = text.indexOf('\n', pos);
    best = { title: text.slice(pos, end < 0 ? undefined : end), frames: [] };
    if (matchedTitle) best.corrupted = 'matched title but not report regexp';
  }
  if (!best.corrupted && best.format?.corrupted) best.corrupted = 'report format is marked as corrupted';
  return { ...best, title: normaliseTitle(best.title) };
}

function formatTitle(fmt: string, args: string[]): string {
  return fmt.replace(/%\[(\d+)\][vs]/g, (_, n: string) => args[Number(n) - 1] ?? '%!v(MISSING)');
}

const replacements: Array<[RegExp, string]> = [
  [/syz-executor\.?[0-9]+((\/|:)[0-9]+)?/g, 'syz-executor'],
  [/syzkaller[0-9]+((\/|:)[0-9]+)?/g, 'syzkaller'],
  // Anything that looks like an address.
  [/([^a-zA-Z0-9])(?:0x)?[0-9a-f]{6,}/g, '$1ADDR'],
  [/([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})/g, 'IP'],
  [/(\.\w+)(:[0-9]+)+/g, '$1:LINE'],
  // func+0x1052/0x2d80: offsets and sizes change with every build.
  [/([a-zA-Z][a-zA-Z0-9_.]+)\+0x[0-9a-z]+\/0x[0-9a-z]+/g, '$1'],
  [/CPU#[0-9]+/g, 'CPU'],
  // Numbers not yet replaced; repeated because matches can overlap ("0,1,2").
  [/(\W)(\d+)(\W|$)/g, '$1NUM$3'],
  // Digits inside names (cfg80211) stay, unless too long to be a name.
  [/(\d+){7,}/g, 'NUM'],
];

export function normaliseTitle(title: string): string {
  let out = title;
  for (const [re, to] of replacements) {
    for (;;) {
      const next = out.replace(re, to);
      if (next === out) break;
      out = next;
    }
  }
  return sanitize(out);
}

// Corrupted or interleaved lines can be very long, and carry control characters.
const maxTitleLen = 120;

function sanitize(title: string): string {
  let res = '';
  let prev = ' ';
  for (const raw of title.slice(0, maxTitleLen)) {
    const ch = raw === '\t' ? ' ' : raw;
    const code = ch.charCodeAt(0);
    if (code < 0x20 || code >= 0x7f) continue;
    if (ch === ' ' && prev === ' ') continue;
    res += ch;
    prev = ch;
  }
  return res.trim();
}
