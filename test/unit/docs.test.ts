// The docs keep up with the CLI: every command and long option `--help` prints
// is in docs/ (the command in the README or docs), every default `--help` shows
// is what the docs' option table says, and every relative link in README.md and
// docs/*.md reaches a file (and a heading, where it names one).
//
// An option table names its command in its header's first cell
// (`| \`run\` option | meaning |`); a row names the option in backticks in its
// first cell (`| \`--cycles N\` | ... (default 1) |`).
import { readdir, readFile, access } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { execa } from 'execa';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = path.join(root, 'bin/iommu-harness.js');

interface HelpOption {
  long: string;
  defaultValue?: string;
}

interface HelpPage {
  options: HelpOption[];
  commands: string[];
}

/** The entries of one section of commander's help (`Options:`, `Commands:`), each with its wrapped lines joined. */
function helpSection(help: string, title: string): string[] {
  const lines = help.split('\n');
  const start = lines.findIndex((line) => line === `${title}:`);
  if (start < 0) return [];
  const entries: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '' || /^\S/.test(line)) break;
    // An entry starts at two spaces; commander indents a wrapped description further.
    if (/^ {2}\S/.test(line)) entries.push(line.trim());
    else if (entries.length > 0) entries[entries.length - 1] += ` ${line.trim()}`;
  }
  return entries.map((entry) => entry.replace(/\s+/g, ' '));
}

/** The text after `default: ` in `(default: X)` or `(choices: ..., default: X)`, up to its closing parenthesis. */
function shownDefault(entry: string): string | undefined {
  const match = /\((?:choices: [^()]*?, )?default: /.exec(entry);
  if (!match) return undefined;
  let depth = 1;
  let end = match.index + match[0].length;
  for (; end < entry.length && depth > 0; end += 1) {
    if (entry[end] === '(') depth += 1;
    else if (entry[end] === ')') depth -= 1;
  }
  return entry.slice(match.index + match[0].length, end - 1);
}

function parseHelp(help: string): HelpPage {
  const options = helpSection(help, 'Options').flatMap((entry): HelpOption[] => {
    const long = /^(?:-\w, )?(--[\w-]+)/.exec(entry)?.[1];
    if (!long || long === '--help') return [];
    const defaultValue = shownDefault(entry);
    return [{ long, ...(defaultValue !== undefined ? { defaultValue } : {}) }];
  });
  const commands = helpSection(help, 'Commands').map((entry) => entry.split(' ')[0]!).filter((name) => name !== 'help');
  return { options, commands };
}

async function help(command: string[]): Promise<HelpPage> {
  const { stdout } = await execa('node', [cli, ...command, '--help']);
  return parseHelp(stdout);
}

/** Every command path under the top level, subcommands included (`nightly X`, should one appear). */
async function commandPages(): Promise<Map<string, HelpPage>> {
  const pages = new Map<string, HelpPage>([['', await help([])]]);
  let frontier = [''];
  while (frontier.length > 0) {
    const next: string[] = [];
    await Promise.all(frontier.map(async (parent) => {
      for (const name of pages.get(parent)!.commands) {
        const command = parent ? `${parent} ${name}` : name;
        pages.set(command, await help(command.split(' ')));
        next.push(command);
      }
    }));
    frontier = next;
  }
  return pages;
}

interface Doc {
  file: string;
  text: string;
}

async function readDocs(): Promise<{ readme: Doc; docs: Doc[] }> {
  const names = (await readdir(path.join(root, 'docs'))).filter((name) => name.endsWith('.md')).sort();
  const read = async (file: string) => ({ file, text: await readFile(path.join(root, file), 'utf8') });
  return { readme: await read('README.md'), docs: await Promise.all(names.map((name) => read(`docs/${name}`))) };
}

/** Lower case, every run of punctuation a space: backticks, quotes, colons and commas do not decide a match. */
function normalize(text: string): string {
  return ` ${text.toLowerCase().replace(/\\\|/g, '|').replace(/[^a-z0-9]+/g, ' ').trim()} `;
}

const escapeRegExp = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `--opt`, `--opt ARG`, `--opt=ARG` or `iommu-harness --opt` in backticks. */
const backticked = (option: string) => new RegExp(`\`(?:[^\`\\n]*\\s)?${escapeRegExp(option)}(?:[ =][^\`]*)?\``);

interface TableRow {
  file: string;
  header: string;
  first: string;
  line: string;
}

/** Every row of every Markdown table, with its table's header row. */
function tableRows(docs: Doc[]): TableRow[] {
  const rows: TableRow[] = [];
  for (const { file, text } of docs) {
    let header: string | undefined;
    let previous = '';
    for (const line of text.split('\n')) {
      if (!line.startsWith('|')) {
        header = undefined;
      } else if (/^\|\s*-{3,}/.test(line)) {
        header = previous;
      } else if (header !== undefined) {
        // `\|` inside a cell is a pipe, not a cell boundary.
        const first = line.replace(/\\\|/g, '\u0000').split('|')[1] ?? '';
        rows.push({ file, header, first: first.replace(/\u0000/g, '|'), line });
      }
      previous = line;
    }
  }
  return rows;
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
}

function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const line of withoutCodeBlocks(text).split('\n')) {
    const heading = /^#{1,6}\s+(.*)$/.exec(line)?.[1];
    if (heading === undefined) continue;
    const base = slug(heading);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    result.add(count === 0 ? base : `${base}-${count}`);
  }
  return result;
}

/** The text without its fenced and indented code blocks. */
function withoutCodeBlocks(text: string): string {
  return text
    .replace(/^```[\s\S]*?^```/gm, '')
    .split('\n')
    .filter((line) => !/^ {4}/.test(line))
    .join('\n');
}

/** The text without code blocks, and its inline code blanked out. */
function withoutCode(text: string): string {
  return withoutCodeBlocks(text).replace(/`[^`\n]*`/g, '``');
}

const pagesPromise = commandPages();
const docsPromise = readDocs();

test('--help lists the commands the docs are checked against', async (t) => {
  const pages = await pagesPromise;
  for (const command of ['run', 'check', 'bisect', 'nightly', 'merge-reports', 'parse', 'report']) {
    t.true(pages.has(command), `${command} missing from --help`);
  }
  t.true(pages.get('run')!.options.some((option) => option.long === '--cycles' && option.defaultValue === '1'));
  t.true(pages.get('run')!.options.some((option) => option.long === '--accel' && option.defaultValue === '"auto"'));
});

test('every command is in the README or docs, every long option in docs/', async (t) => {
  const pages = await pagesPromise;
  const { readme, docs } = await docsPromise;
  const everything = [readme, ...docs].map((doc) => doc.text).join('\n');
  const docsText = docs.map((doc) => doc.text).join('\n');
  const missing: string[] = [];
  for (const [command, page] of pages) {
    if (command && !everything.includes(`\`${command}\``) && !everything.includes(`iommu-harness ${command}`)) {
      missing.push(`command ${command}: not in README.md or docs/`);
    }
    for (const option of page.options) {
      if (!backticked(option.long).test(docsText)) missing.push(`${command || 'iommu-harness'} ${option.long}: not in docs/ (in backticks)`);
    }
  }
  t.deepEqual(missing, []);
});

test("every default --help shows is the one the docs' option table names", async (t) => {
  const pages = await pagesPromise;
  const { docs } = await docsPromise;
  const rows = tableRows(docs);
  const wrong: string[] = [];
  for (const [command, page] of pages) {
    for (const option of page.options) {
      // A repeatable option starts as []: nothing given, nothing to document as a default.
      if (option.defaultValue === undefined || option.defaultValue === '[]') continue;
      const candidates = rows.filter((row) => row.header.includes(`\`${command}\``) && backticked(option.long).test(row.first));
      if (candidates.length === 0) {
        wrong.push(`${command} ${option.long}: no row in a docs table headed \`${command}\` (--help: default ${option.defaultValue})`);
        continue;
      }
      const expected = normalize(option.defaultValue);
      if (!candidates.some((row) => normalize(row.line).includes(expected))) {
        wrong.push(`${command} ${option.long}: --help says default ${option.defaultValue}; ${candidates.map((row) => row.file).join(', ')} says otherwise`);
      }
    }
  }
  t.deepEqual(wrong, []);
});

test('every relative link in README.md and docs/ reaches a file and a heading', async (t) => {
  const { readme, docs } = await docsPromise;
  const broken: string[] = [];
  for (const doc of [readme, ...docs]) {
    for (const match of withoutCode(doc.text).matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1]!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
      const [file, anchor] = target.split('#') as [string, string | undefined];
      const resolved = file ? path.join(path.dirname(path.join(root, doc.file)), file) : path.join(root, doc.file);
      const exists = await access(resolved).then(() => true, () => false);
      if (!exists) {
        broken.push(`${doc.file}: ${target}: no such file`);
        continue;
      }
      if (anchor !== undefined && anchor !== '') {
        if (!resolved.endsWith('.md')) continue;
        if (!anchors(await readFile(resolved, 'utf8')).has(anchor)) broken.push(`${doc.file}: ${target}: no such heading`);
      }
    }
  }
  t.deepEqual(broken, []);
});

test('each docs page starts with its title and one sentence saying what it covers', async (t) => {
  const { docs } = await docsPromise;
  for (const doc of docs) {
    const [title, blank, sentence] = doc.text.split('\n');
    t.regex(title ?? '', /^# /, doc.file);
    t.is(blank, '', doc.file);
    t.regex(sentence ?? '', /^This page covers /, doc.file);
  }
});
