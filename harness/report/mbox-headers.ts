// The headers a reply to a patch needs, read from the series file b4 or
// `git format-patch` wrote: each mail's Subject (folded over several lines
// when long, RFC 2047-encoded when not ASCII) and Message-ID. Pure.

export interface PatchMail {
  /** The Subject header, unfolded and decoded, e.g. "[PATCH v2 1/3] iommu: fix the group refcount". */
  subject: string;
  /** The Message-ID header without its angle brackets; absent in `git format-patch` output not sent yet. */
  messageId?: string;
  from?: string;
  date?: string;
  /** "[PATCH 0/N]": the cover letter, which changes no file. */
  cover: boolean;
}

// An mbox separates mails with a "From " line at the start of a line; format-patch writes
// "From <sha> Mon Sep 17 00:00:00 2001", b4 "From git@z Thu Jan  1 00:00:00 1970".
const mboxSeparator = /^From \S+ +\S{3} \S{3} +\d+ \d\d:\d\d:\d\d \d{4}$/;

/** Each mail of an mbox, in order; a plain diff (no header block) gives none. */
export function parsePatchMails(text: string): PatchMail[] {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const starts = lines.flatMap((line, index) => (mboxSeparator.test(line) ? [index + 1] : []));
  // A single mail saved without its "From " line (a mail client's "save as") starts with its headers.
  if (starts.length === 0 && /^[A-Za-z-]+: /.test(lines[0] ?? '') && lines.some((line) => /^subject:/i.test(line))) starts.push(0);
  return starts.map((start) => mailOf(headerBlock(lines, start))).filter((mail): mail is PatchMail => mail !== undefined);
}

function headerBlock(lines: string[], start: number): Map<string, string> {
  const headers = new Map<string, string>();
  let current: string | undefined;
  for (let index = start; index < lines.length; index++) {
    const line = lines[index]!;
    if (line === '') break;
    // RFC 5322 folding: a line starting with white space continues the header before it.
    if (/^[ \t]/.test(line) && current) {
      headers.set(current, `${headers.get(current)} ${line.trim()}`);
      continue;
    }
    const match = /^([!-9;-~]+):[ \t]*(.*)$/.exec(line);
    if (!match) break;
    current = match[1]!.toLowerCase();
    // The first occurrence wins: a forwarded patch may repeat a header further down.
    if (!headers.has(current)) headers.set(current, match[2]!.trim());
    else current = undefined;
  }
  return headers;
}

function mailOf(headers: Map<string, string>): PatchMail | undefined {
  const raw = headers.get('subject');
  if (raw === undefined) return undefined;
  const subject = decodeWords(raw);
  const messageId = headers.get('message-id')?.match(/<([^>\s]+)>/)?.[1] ?? headers.get('message-id')?.trim();
  const from = headers.get('from');
  const date = headers.get('date');
  return {
    subject,
    ...(messageId ? { messageId } : {}),
    ...(from ? { from: decodeWords(from) } : {}),
    ...(date ? { date } : {}),
    cover: /^\[[^\]]*\b0+\/\d+\]/.test(subject),
  };
}

/** RFC 2047 encoded words (=?UTF-8?q?...?= and =?UTF-8?b?...?=); white space between two of them goes. */
export function decodeWords(value: string): string {
  const word = /=\?([^?]+)\?([bBqQ])\?([^?]*)\?=/g;
  return value.replace(/(=\?[^?]+\?[bBqQ]\?[^?]*\?=)\s+(?==\?)/g, '$1').replace(word, (whole, charset: string, encoding: string, data: string) => {
    const bytes = encoding.toLowerCase() === 'b' ? Buffer.from(data, 'base64') : qBytes(data);
    try {
      return new TextDecoder(charset.toLowerCase().split('*')[0]).decode(bytes);
    } catch {
      return whole;
    }
  });
}

function qBytes(data: string): Buffer {
  const bytes: number[] = [];
  for (let index = 0; index < data.length; index++) {
    const char = data[index]!;
    if (char === '_') bytes.push(0x20);
    else if (char === '=' && /^[0-9A-Fa-f]{2}$/.test(data.slice(index + 1, index + 3))) {
      bytes.push(parseInt(data.slice(index + 1, index + 3), 16));
      index += 2;
    } else bytes.push(char.charCodeAt(0));
  }
  return Buffer.from(bytes);
}
