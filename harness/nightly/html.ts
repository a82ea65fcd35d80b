// The night as one self-contained HTML page: what is new first, then the
// matrix at a glance, then everything else, with links (relative to the night
// folder) to each run's console and dmesg. Inline CSS, no scripts. Pure.
import type { Finding, Night, NightCell, NightRun } from './night.ts';

export function htmlEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

/** A relative path as an href: each segment percent-encoded. */
function href(relative: string): string {
  return htmlEscape(relative.split('/').map(encodeURIComponent).join('/'));
}

const statusLabel: Record<NightCell['status'], string> = {
  new: 'NEW FAIL',
  still: 'still failing',
  fixed: 'fixed',
  pass: 'pass',
  inconclusive: 'inconclusive',
  'still-inconclusive': 'still inconclusive',
  error: 'error',
  'still-error': 'still error',
  'not-run': 'not run',
  'still-not-run': 'still not run',
};

const css = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1a1a1a;background:#fff}
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.2em;margin:1.6em 0 .5em;border-bottom:1px solid #ccc}
.meta{color:#555}.counts{font-size:1.05em}
table{border-collapse:collapse}th,td{border:1px solid #bbb;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}
td.v{text-align:center;min-width:7em;font-weight:600}
td.v a{color:inherit}
.new{background:#c62828;color:#fff}.still{background:#ef9a9a;color:#3b0000}.fixed{background:#90caf9;color:#0d2a4a}
.pass{background:#a5d6a7;color:#0b3d0b}.inconclusive{background:#fff59d;color:#3d3500}.error{background:#ffe082;color:#4a3500}.not-run{background:#e0e0e0;color:#444}
.still-inconclusive{background:#fffde7;color:#5c5200}.still-error{background:#fff8e1;color:#6b5000}.still-not-run{background:#f5f5f5;color:#666}
.verdict-pass{color:#1b5e20}.verdict-fail{color:#b71c1c}.verdict-error{color:#8a6d00}
pre{background:#f7f7f7;border:1px solid #ddd;padding:6px;overflow-x:auto;white-space:pre-wrap;max-height:24em}
.finding{margin-bottom:1.2em}.sig{color:#555;font-family:monospace;font-size:.9em}
.none{color:#555;font-style:italic}
`;

export function renderHtml(night: Night): string {
  const runsById = new Map(night.runs.map((run) => [run.unit, run]));
  const findingsBySignature = new Map(night.findings.map((finding) => [finding.signature, finding]));
  const newFindings = night.diff.new.map((signature) => findingsBySignature.get(signature)).filter((f): f is Finding => Boolean(f));
  const stillFindings = night.diff.still.map((signature) => findingsBySignature.get(signature)).filter((f): f is Finding => Boolean(f));
  const errorRuns = night.runs.filter((run) => run.error);
  const newErrors = new Set(night.diff.newErrors);
  const stillErrors = new Set(night.diff.stillErrors);
  const newBuildErrors = new Set(night.diff.newBuildErrors);
  // A run's error is new or as in the baseline by its cell's; a cell that failed in another cycle is neither.
  const errorNews = (run: NightRun) => (newErrors.has(run.cell) ? ' <strong>NEW</strong>' : stillErrors.has(run.cell) ? ' <strong>as in the baseline</strong>' : '');
  const inconclusiveCells = night.cells.filter((cell) => cell.verdict === 'inconclusive');
  const title = `iommu-harness nightly ${night.name}${night.title ? ` — ${night.title}` : ''}`;
  const s = night.summary;

  const parts = [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${htmlEscape(title)}</title>`,
    `<style>${css}</style></head><body>`,
    `<h1>${htmlEscape(title)}</h1>`,
    `<p class="meta">verdict <strong class="verdict-${night.verdict}" id="verdict">${night.verdict.toUpperCase()}</strong> · exit code ${night.exitCode} · ${htmlEscape(night.startedAt)} to ${htmlEscape(night.finishedAt)}${night.shard ? ` · shard ${night.shard.index}/${night.shard.count}` : ''}${night.mergedFrom ? ` · merged from ${night.mergedFrom.length} shard(s)` : ''}</p>`,
    `<p class="meta">baseline: ${night.baseline ? `night ${htmlEscape(night.baseline.name)}` : 'none (every failure counts as new)'}</p>`,
    `<p class="counts">${[`${s.cells} cells`, `${s.pass} pass`, `${s.inconclusive} inconclusive`, `${s.fail} fail`, `${s.error} error`, `${s.notRun} not run`, `<strong>${s.new} new</strong>`, `${s.still} still failing`, `${s.fixed} fixed`, `${s.known} known`, `<strong>${night.diff.newInconclusive.length} newly inconclusive</strong>`, `${night.diff.stillInconclusive.length} still inconclusive`, `<strong>${night.diff.newErrors.length} new errors</strong>`, `${night.diff.stillErrors.length} still erroring`].join(' · ')}</p>`,
    '<h2 id="new">New failures</h2>',
    newFindings.length ? newFindings.map((finding) => renderFinding(finding, runsById)).join('\n') : '<p class="none">No new failures.</p>',
    '<h2 id="matrix">Matrix</h2>',
    renderMatrix(night, runsById),
    '<h2 id="still">Still failing</h2>',
    stillFindings.length ? stillFindings.map((finding) => renderFinding(finding, runsById)).join('\n') : '<p class="none">Nothing still failing.</p>',
    '<h2 id="fixed">Fixed since the baseline</h2>',
    night.diff.fixed.length ? `<ul>${night.diff.fixed.map((finding) => `<li>${htmlEscape(finding.cell)}: ${htmlEscape(finding.title)}</li>`).join('')}</ul>` : '<p class="none">Nothing fixed.</p>',
    '<h2 id="inconclusive">Inconclusive</h2>',
    inconclusiveCells.length
      ? `<ul>${inconclusiveCells.map((cell) => `<li>${htmlEscape(cell.id)} <strong>${cell.status === 'still-inconclusive' ? 'as in the baseline' : 'NEW'}</strong>: ${htmlEscape((cell.inconclusive ?? []).join('; '))}</li>`).join('')}</ul>`
      : '<p class="none">None.</p>',
    '<h2 id="errors">Infrastructure errors</h2>',
    errorRuns.length
      ? `<ul>${errorRuns.map((run) => `<li>${htmlEscape(run.unit)}${errorNews(run)}: ${htmlEscape(run.error!.kind)}: ${htmlEscape(run.error!.message)}${run.error!.log ? ` (<a href="${href(run.error!.log)}">log</a>)` : ''}</li>`).join('')}</ul>`
      : '<p class="none">None.</p>',
    '<h2 id="known">Known issues seen</h2>',
    night.known.length ? `<ul>${night.known.map((finding) => `<li>${htmlEscape(finding.cell)}: ${htmlEscape(finding.title)} — ${htmlEscape(finding.known ?? '')}</li>`).join('')}</ul>` : '<p class="none">None.</p>',
    '<h2 id="builds">Kernels</h2>',
    renderBuilds(night, newBuildErrors),
    '<h2 id="runs">Runs</h2>',
    renderRuns(night),
    '</body></html>',
  ];
  return `${parts.join('\n')}\n`;
}

function runLinks(run: NightRun | undefined): string {
  if (!run) return '';
  const links = [run.logs.console && `<a href="${href(run.logs.console)}">console</a>`, run.logs.dmesg && `<a href="${href(run.logs.dmesg)}">dmesg</a>`].filter(Boolean);
  return links.join(' ');
}

function renderFinding(finding: Finding, runsById: Map<string, NightRun>): string {
  const links = finding.runs.map((unit) => `${htmlEscape(unit)}: ${runLinks(runsById.get(unit))}`).join('<br>');
  return [
    '<div class="finding">',
    `<p><strong>${htmlEscape(finding.cell)}</strong>: ${htmlEscape(finding.title)}</p>`,
    `<p class="sig">${htmlEscape(finding.signature)}</p>`,
    `<pre>${htmlEscape(finding.evidence)}</pre>`,
    `<p>${links}</p>`,
    '</div>',
  ].join('\n');
}

function renderMatrix(night: Night, runsById: Map<string, NightRun>): string {
  const iommus = unique(night.cells.map((cell) => cell.iommu));
  const scenarios = unique(night.cells.map((cell) => cell.scenario));
  const rows = unique(night.cells.map((cell) => `${cell.kernel}\u0000${cell.profile}`));
  const head1 = `<tr><th rowspan="2">kernel</th><th rowspan="2">profile</th>${iommus.map((iommu) => `<th colspan="${scenarios.length}">${htmlEscape(iommu)}</th>`).join('')}</tr>`;
  const head2 = `<tr>${iommus.map(() => scenarios.map((scenario) => `<th>${htmlEscape(scenario)}</th>`).join('')).join('')}</tr>`;
  const body = rows.map((row) => {
    const [kernel, profile] = row.split('\u0000') as [string, string];
    const tds = iommus.flatMap((iommu) =>
      scenarios.map((scenario) => {
        const cell = night.cells.find((c) => c.kernel === kernel && c.profile === profile && c.iommu === iommu && c.scenario === scenario);
        if (!cell) return '<td class="v not-run" title="does not apply">—</td>';
        const cycles = cell.runs.length > 1 || night.plan.cycles > 1 ? ` <small>${cell.failedCycles}/${cell.runs.length}</small>` : '';
        const first = cell.runs[0];
        const label = htmlEscape(statusLabel[cell.status]);
        const console = first ? runsById.get(first)?.logs.console : undefined;
        const content = console ? `<a href="${href(console)}">${label}</a>` : label;
        return `<td class="v ${cell.status}" id="cell-${htmlEscape(cell.id)}" title="${htmlEscape(cell.id)}">${content}${cycles}</td>`;
      }),
    );
    return `<tr><th>${htmlEscape(kernel)}</th><th>${htmlEscape(profile)}</th>${tds.join('')}</tr>`;
  });
  return `<table class="matrix">${head1}${head2}${body.join('')}</table>`;
}

function renderBuilds(night: Night, newBuildErrors: Set<string>): string {
  if (!night.builds.length) return '<p class="none">No kernel was prepared.</p>';
  const rows = night.builds.map((build) => {
    const links = [build.config && `<a href="${href(build.config)}">.config</a>`, build.buildLog && `<a href="${href(build.buildLog)}">build log</a>`].filter(Boolean).join(' ');
    const news = build.error ? (newBuildErrors.has(`${build.kernel}.${build.profile}`) ? 'NEW ' : 'as in the baseline: ') : '';
    const what = build.error ? `<span class="verdict-error">${news}${htmlEscape(build.error.kind)}: ${htmlEscape(build.error.message)}</span>` : htmlEscape(build.release ?? '');
    return `<tr><td>${htmlEscape(build.kernel)}</td><td>${htmlEscape(build.profile)}</td><td>${what}</td><td>${htmlEscape(build.source ?? '')}</td><td><code>${htmlEscape((build.commit ?? '').slice(0, 12))}</code></td><td>${build.patches.length}</td><td>${build.buildSeconds?.toFixed(0) ?? ''}</td><td>${links}</td></tr>`;
  });
  return `<table><tr><th>kernel</th><th>profile</th><th>release</th><th>source</th><th>commit</th><th>patches</th><th>build s</th><th>files</th></tr>${rows.join('')}</table>`;
}

function renderRuns(night: Night): string {
  if (!night.runs.length) return '<p class="none">No runs.</p>';
  const rows = night.runs.map(
    (run) => `<tr><td>${htmlEscape(run.unit)}</td><td class="verdict-${run.verdict}">${run.verdict}</td><td>${run.seconds.toFixed(0)}</td><td>${runLinks(run)}</td><td>${run.error ? htmlEscape(run.error.message) : ''}</td></tr>`,
  );
  return `<table><tr><th>run</th><th>verdict</th><th>seconds</th><th>logs</th><th>error</th></tr>${rows.join('')}</table>`;
}

function unique<T>(values: T[]): T[] {
  return [...new Set(values)];
}
