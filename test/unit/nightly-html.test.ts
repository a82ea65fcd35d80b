// The HTML summary, as a person sees it: rendered by headless Chromium
// (Debian's `chromium`), read back over the DevTools protocol on a pipe: the
// visible text, the order of sections, the colour of the matrix cells, and
// whether each link leads to a file in the night folder.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import test from 'ava';
import { htmlEscape, renderHtml } from '../../harness/nightly/html.ts';
import type { Night } from '../../harness/nightly/night.ts';
import { night, run } from './nightly-fixtures.ts';

const chromium = '/usr/bin/chromium';

function sample(): Night {
  const yesterday = night([run({ scenario: 'pci-hotplug', leaks: [{ group: 3, devices: ['0000:02:00.0'] }] })], undefined, '2026-11-24');
  return night(
    [
      run({ scenario: 'vfio-bind-unbind', reports: [{ kind: 'warning', title: 'WARNING in iommu_group_release' }] }),
      run({ scenario: 'pci-hotplug' }),
    ],
    yesterday,
  );
}

test('the page is self-contained: no scripts, no external resources, everything escaped', (t) => {
  const html = renderHtml(sample());
  t.false(/<script/i.test(html));
  t.false(/(src|href)="(https?:)?\/\//.test(html));
  t.true(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  t.is(htmlEscape(`<a href="x">&'`), '&lt;a href=&quot;x&quot;&gt;&amp;&#39;');
});

/** A DevTools client over --remote-debugging-pipe: NUL-separated JSON on fds 3 (to Chromium) and 4 (from it). */
class DevTools {
  private nextId = 1;
  private buffer = '';
  private waiting = new Map<number, (message: { result?: unknown; error?: { message: string } }) => void>();

  constructor(private readonly child: ChildProcess) {
    const input = child.stdio[4] as NodeJS.ReadableStream;
    input.setEncoding('utf8');
    input.on('data', (chunk: string) => {
      this.buffer += chunk;
      let end;
      while ((end = this.buffer.indexOf('\0')) >= 0) {
        const message = JSON.parse(this.buffer.slice(0, end));
        this.buffer = this.buffer.slice(end + 1);
        if (message.id !== undefined) this.waiting.get(message.id)?.(message);
      }
    });
  }

  send<T>(method: string, params: object = {}, sessionId?: string): Promise<T> {
    const id = this.nextId++;
    const output = this.child.stdio[3] as NodeJS.WritableStream;
    output.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${method}: no answer from Chromium`)), 30_000);
      this.waiting.set(id, (message) => {
        clearTimeout(timer);
        if (message.error) reject(new Error(`${method}: ${message.error.message}`));
        else resolve(message.result as T);
      });
    });
  }
}

// Decided before the test is registered (ava cannot skip from inside a test): without Chromium
// the page is not checked in a browser, and the skipped test's title says why.
const hasChromium = existsSync(chromium);
const withChromium = hasChromium ? test : test.skip;

withChromium(`Chromium shows new failures first, the matrix in colour, and links that lead to the run logs${hasChromium ? '' : ` (skipped: ${chromium} is missing; apt-get install chromium)`}`, async (t) => {
  t.timeout(120_000);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'nightly-html-'));
  const profile = await mkdtemp(path.join(os.tmpdir(), 'nightly-chromium-'));
  const n = sample();
  for (const r of n.runs) {
    for (const log of [r.logs.console, r.logs.dmesg, r.logs.config, r.logs.buildLog]) {
      if (!log) continue;
      await mkdir(path.dirname(path.join(dir, log)), { recursive: true });
      await writeFile(path.join(dir, log), `${log}\n`);
    }
  }
  const page = path.join(dir, 'index.html');
  await writeFile(page, renderHtml(n));

  const child = spawn(
    chromium,
    ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--remote-debugging-pipe', 'about:blank'],
    // Its own process group, so the renderer and zygote children die with it.
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], detached: true },
  );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let stderr = '';
  child.stderr?.on('data', (chunk) => (stderr += chunk));
  t.teardown(async () => {
    // Chromium's children keep writing into the profile until they are gone.
    if (child.pid) process.kill(-child.pid, 'SIGKILL');
    await exited;
    await rm(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
    await rm(dir, { recursive: true, force: true });
  });
  try {
    const devtools = new DevTools(child);
    const { targetId } = await devtools.send<{ targetId: string }>('Target.createTarget', { url: pathToFileURL(page).href });
    const { sessionId } = await devtools.send<{ sessionId: string }>('Target.attachToTarget', { targetId, flatten: true });
    const evaluate = async <T>(expression: string): Promise<T> => {
      const answer = await devtools.send<{ result: { value: T } }>('Runtime.evaluate', { expression, returnByValue: true }, sessionId);
      return answer.result.value;
    };
    // The new target starts as about:blank; wait for the page itself to have loaded.
    const loaded = 'location.protocol === "file:" && document.readyState === "complete"';
    for (let i = 0; i < 200 && !(await evaluate<boolean>(loaded)); i++) await new Promise((r) => setTimeout(r, 100));

    t.is(await evaluate<string>('document.title'), 'iommu-harness nightly 2026-11-25');
    const text = await evaluate<string>('document.body.innerText');
    t.regex(text, /verdict FAIL · exit code 1/);
    t.regex(text, /baseline: night 2026-11-24/);
    t.regex(text, /2 cells · 1 pass · 0 inconclusive · 1 fail · 0 error · 0 not run · 1 new · 0 still failing · 1 fixed · 0 known/);
    const headings = await evaluate<string[]>('[...document.querySelectorAll("h2")].map((h) => h.innerText)');
    t.is(headings[0], 'New failures', 'what is new comes first');
    t.deepEqual(headings.slice(0, 4), ['New failures', 'Matrix', 'Still failing', 'Fixed since the baseline']);
    const newSection = await evaluate<string>('(() => { let s = ""; for (let e = document.getElementById("new").nextElementSibling; e && e.tagName !== "H2"; e = e.nextElementSibling) s += e.innerText + "\\n"; return s; })()');
    t.regex(newSection, /default\.lockdep\.intel\.vfio-bind-unbind: WARNING in iommu_group_release/);
    t.regex(newSection, /<script>alert\(1\)<\/script> & "q"/, 'kernel text is shown as text, not run');
    t.regex(text, /Fixed since the baseline\s+default\.lockdep\.intel\.pci-hotplug: iommu group leak: 0000:02:00\.0/);

    const cells = await evaluate<{ text: string; background: string; color: string; visible: boolean }[]>(
      '[...document.querySelectorAll("table.matrix td")].map((td) => { const s = getComputedStyle(td); const r = td.getBoundingClientRect(); return { text: td.innerText, background: s.backgroundColor, color: s.color, visible: r.width > 0 && r.height > 0 }; })',
    );
    t.deepEqual(cells.map((c) => c.text), ['NEW FAIL', 'fixed']);
    t.is(cells[0]!.background, 'rgb(198, 40, 40)', 'a new failure is red');
    t.is(cells[0]!.color, 'rgb(255, 255, 255)');
    t.is(cells[1]!.background, 'rgb(144, 202, 249)', 'a fixed cell is blue');
    t.true(cells.every((c) => c.visible));

    const links = await evaluate<{ text: string; href: string }[]>('[...document.querySelectorAll("a")].map((a) => ({ text: a.innerText, href: a.href }))');
    t.true(links.some((l) => l.text === 'console') && links.some((l) => l.text === 'dmesg') && links.some((l) => l.text === '.config') && links.some((l) => l.text === 'build log'));
    for (const link of links) {
      t.true(link.href.startsWith(pathToFileURL(dir).href), `${link.text} stays in the night folder: ${link.href}`);
      t.true(existsSync(fileURLToPath(link.href)), `${link.text} leads to a file: ${link.href}`);
    }
    const matrixLink = await evaluate<string>('document.querySelector("table.matrix td a").href');
    t.true(matrixLink.endsWith('/runs/default.lockdep.intel.vfio-bind-unbind.c1/intel/console.log'));
  } catch (error) {
    t.log(stderr.slice(-2000));
    throw error;
  }
});
