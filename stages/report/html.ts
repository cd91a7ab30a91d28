// The cluster report as one self-contained HTML file.
//
// The static parts (key figures, chart, ranked table, what changed, coverage,
// provenance) are rendered here as escaped HTML and hand-drawn SVG, so they
// read fine even with scripts off. The explorer (filters and the drill-down
// cluster -> category -> run) is built in the browser by html-assets/report.js
// from the data embedded as JSON; that script only ever inserts data with
// textContent. The page makes no network request: a Content-Security-Policy
// meta forbids everything but the inline script and style (pinned by hash) and
// data: images.
//
// Pure and deterministic: no clock, no random ids; the same input gives the same
// bytes. The numbers are those of the Markdown report (computeReportStats).

import type { LedgerRun } from '../ledger.ts';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { wordDiff } from '../offline/diff.ts';
import { pct } from '../util/pyformat.ts';
import { plural } from '../util/words.ts';
import { clustersNotCompared, comparedWith, hasChanges, nothingChanged } from './changes.ts';
import type { ChangeSummary, CategoryRef } from './changes.ts';
import type { ProvenanceValue, ReportProvenance, RunCoverage, StageProvenance } from './markdown.ts';
import { computeReportStats } from './stats.ts';
import { compareCodePoints } from '../util/order.ts';
import type { ClusterStat, ReportStats } from './stats.ts';

// ---------------------------------------------------------------------------
// Input

export interface HtmlCategoryExample {
  /** The id used in prompts and answers. */
  id: string;
  run_id: string;
  trigger_phrase: string | null;
  justification: string | null;
  /** Whether the trigger phrase was found verbatim in the perturbed instruction. */
  trigger_phrase_verified: boolean;
}

export interface HtmlCategory {
  category_id: string;
  category_name: string;
  definition: string;
  examples: HtmlCategoryExample[];
}

export interface HtmlClusterMember {
  category_name: string;
  justification: string;
  category_definition?: string;
}

export interface HtmlCluster {
  cluster_id: string;
  cluster_name: string;
  definition: string;
  anchor_phrases: string;
  member_categories: HtmlClusterMember[];
}

/** A run as the drill-down shows it: the ledger's identity fields plus what the stages found. */
export interface HtmlRun extends Pick<LedgerRun, 'run_id' | 'agent' | 'domain' | 'task_id' | 'perturbed_id' | 'refinement_model'> {
  original_instruction: string;
  perturbed_instruction: string;
  summary: string;
  severity: string | null;
  score: number | null;
  strategy: string | null;
  /** The run's folder as shown; the pipeline gives it relative to the data root (e.g. "os/<task>/o4-mini-2025-04-16/..."). */
  run_folder: string;
  /**
   * Where "Open the run folder" points: a relative path (from the report's folder, e.g.
   * "../../../examples/perturbed_queries/os/...") or an absolute path (linked as a file:// URL);
   * null for no link. When absent, `run_folder` itself is linked as a relative path.
   */
  run_link?: string | null;
}

export interface HtmlReportInput {
  title: string;
  analysis: string;
  provenance?: ReportProvenance;
  coverage?: RunCoverage;
  clusters: HtmlCluster[];
  categories: HtmlCategory[];
  runs: Record<string, HtmlRun>;
  changes?: ChangeSummary | null;
}

// ---------------------------------------------------------------------------
// Escaping

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escape text for HTML content and double- or single-quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch] as string);
}

/**
 * JSON that can sit inside a <script> element: every `<`, `>`, `&` and the two
 * JavaScript line separators are written as \u escapes, so no `</script>` or
 * `<!--` can appear and JSON.parse gives back the same value.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (ch) => `\\u${(ch.codePointAt(0) as number).toString(16).padStart(4, '0')}`,
  );
}

/** Percent-encodes each `/`-separated segment of a path. */
function encodeSegments(path: string): string {
  return path
    .split('/')
    .map((segment) => encodeURIComponent(segment))
    .join('/');
}

/**
 * The href for a run folder, or null when the value is not a plain local path
 * (a scheme such as `javascript:` or `http:`, or a protocol-relative `//`).
 * Each path segment is percent-encoded, so `#`, `?` and `:` stay part of the path.
 */
export function folderHref(folder: string): string | null {
  const path = folder.trim().replace(/\\/g, '/');
  if (!path || /^[A-Za-z][A-Za-z0-9+.-]*:/.test(path) || path.startsWith('//')) return null;
  return encodeSegments(path);
}

/**
 * The href for a run link (see `HtmlRun.run_link`): an absolute path (`/...` or
 * `C:/...`) becomes a file:// URL, anything else goes through `folderHref`.
 */
export function runLinkHref(link: string): string | null {
  const path = link.trim().replace(/\\/g, '/');
  const drive = /^([A-Za-z]):\//.exec(path);
  if (drive) return `file:///${drive[1]}:${encodeSegments(path.slice(2))}`;
  if (path.startsWith('/') && !path.startsWith('//')) return `file://${encodeSegments(path)}`;
  return folderHref(path);
}

function runHref(run: HtmlRun): string | null {
  if (run.run_link === undefined) return folderHref(str(run.run_folder));
  return typeof run.run_link === 'string' ? runLinkHref(run.run_link) : null;
}

// ---------------------------------------------------------------------------
// Assets (read once; they are part of the program, not of the data)

const ASSETS = new URL('./html-assets/', import.meta.url);
const CSS = readFileSync(new URL('report.css', ASSETS), 'utf8');
const SCRIPT = readFileSync(new URL('report.js', ASSETS), 'utf8');

function cspHash(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** The Content-Security-Policy of the page: nothing but the inline script and style, and data: images. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  `script-src ${cspHash(SCRIPT)}`,
  `style-src ${cspHash(CSS)}`,
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

// ---------------------------------------------------------------------------
// Severity

const KNOWN_SEVERITIES = ['critical', 'high', 'medium', 'low', 'minimal'];
const SEVERITY_COLORS: Record<string, string> = {
  critical: '#7a0919',
  high: '#c92a2a',
  medium: '#f0643c',
  low: '#f6a96b',
  minimal: '#f5d4b0',
};
const OTHER_SEVERITY_COLORS = ['#8c6bb1', '#5b8fa8', '#6a9f58', '#b08b3e'];
const NO_SEVERITY_COLOR = '#b9c2cc';
const PLAIN_BAR_COLOR = '#3f6fc6';

function normalizeSeverity(severity: string | null | undefined): string | null {
  if (typeof severity !== 'string') return null;
  const s = severity.trim().toLowerCase();
  return s ? s : null;
}

/** Known levels from worst to mildest, then any others by code point, then "not recorded" (null). */
function orderSeverities(values: Iterable<string | null>): (string | null)[] {
  const set = new Set(values);
  const known = KNOWN_SEVERITIES.filter((s) => set.has(s));
  const others = [...set].filter((s): s is string => s !== null && !KNOWN_SEVERITIES.includes(s)).sort(compareCodePoints);
  return [...known, ...others, ...(set.has(null) ? [null] : [])];
}

function severityColor(severity: string | null, order: (string | null)[]): string {
  if (severity === null) return NO_SEVERITY_COLOR;
  const known = SEVERITY_COLORS[severity];
  if (known) return known;
  const others = order.filter((s): s is string => s !== null && !KNOWN_SEVERITIES.includes(s));
  return OTHER_SEVERITY_COLORS[others.indexOf(severity) % OTHER_SEVERITY_COLORS.length] ?? NO_SEVERITY_COLOR;
}

/** Whether a #rrggbb colour is light enough to need dark text on it. */
function isLight(color: string): boolean {
  const n = Number.parseInt(color.slice(1), 16);
  const luminance = 0.299 * ((n >> 16) & 255) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255);
  return luminance > 150;
}

function severityLabel(severity: string | null): string {
  return severity ?? 'not recorded';
}

// ---------------------------------------------------------------------------
// The model of the page: stats plus lookups, computed once

interface GroupModel {
  /** DOM id, e.g. `cluster-3`. */
  dom: string;
  rank: number | null;
  id: string;
  name: string;
  definition: string;
  anchors: string;
  /** Members in the stats order (largest first); `cat` indexes `categories`, -1 when unknown. */
  members: { cat: number; name: string; justification: string }[];
}

interface Model {
  stats: ReportStats;
  /** Distinct categories (last entry of each name wins, as in the stats). */
  categories: HtmlCategory[];
  catIndex: Map<string, number>;
  groups: GroupModel[];
  /** Runs referenced by some example, sorted by run id. */
  runs: HtmlRun[];
  runIndex: Map<string, number>;
  severityOrder: (string | null)[];
  /** Whether any referenced run records a severity. */
  hasSeverity: boolean;
  /** Per cluster (stats order): perturbations per severity. */
  severityCounts: Map<string | null, number>[];
}

function buildModel(input: HtmlReportInput): Model {
  const stats = computeReportStats(
    { categorization: { categories: input.categories } },
    {
      clusters: input.clusters.map((c) => ({
        cluster_name: c.cluster_name,
        definition: c.definition,
        anchor_phrases: c.anchor_phrases,
        member_categories: (c.member_categories ?? []).map((m) => ({
          category_name: m.category_name,
          category_definition: m.category_definition ?? '',
          justification: m.justification,
        })),
      })),
    },
  );

  const lastByName = new Map<string, HtmlCategory>();
  for (const c of input.categories) lastByName.set(c.category_name, c);
  const categories = [...lastByName.values()];
  const catIndex = new Map(categories.map((c, i) => [c.category_name, i]));

  const groups: GroupModel[] = stats.clusters.map((c: ClusterStat) => {
    const original = input.clusters[c.inputIndex] as HtmlCluster;
    return {
      dom: `cluster-${c.rank}`,
      rank: c.rank,
      id: original.cluster_id,
      name: c.name,
      definition: c.definition,
      anchors: c.anchorPhrases,
      members: c.members.map((m) => ({ cat: catIndex.get(m.name) ?? -1, name: m.name, justification: m.justification })),
    };
  });
  if (stats.unclustered.length) {
    groups.push({
      dom: 'cluster-none',
      rank: null,
      id: '',
      name: 'Categories in no cluster',
      definition: 'These categories are not listed by any cluster; their runs are shown here so that none is out of reach.',
      anchors: '',
      members: stats.unclustered.map((u) => ({ cat: catIndex.get(u.name) ?? -1, name: u.name, justification: '' })),
    });
  }

  const referenced = new Set<string>();
  for (const c of categories) for (const e of c.examples ?? []) referenced.add(e.run_id);
  const runs = [...referenced]
    .filter((id) => Object.prototype.hasOwnProperty.call(input.runs, id))
    .sort(compareCodePoints)
    .map((id) => input.runs[id] as HtmlRun);
  const runIndex = new Map(runs.map((r, i) => [r.run_id, i]));

  const severityOf = (runId: string): string | null => {
    const i = runIndex.get(runId);
    return i === undefined ? null : normalizeSeverity((runs[i] as HtmlRun).severity);
  };
  const hasSeverity = runs.some((r) => normalizeSeverity(r.severity) !== null);
  const severityCounts = stats.clusters.map((c) => {
    const counts = new Map<string | null, number>();
    for (const m of c.members) {
      for (const ex of m.examples as unknown as HtmlCategoryExample[]) {
        const s = severityOf(ex.run_id);
        counts.set(s, (counts.get(s) ?? 0) + 1);
      }
    }
    return counts;
  });
  const severityOrder = orderSeverities(severityCounts.flatMap((m) => [...m.keys()]).concat(runs.map((r) => normalizeSeverity(r.severity))));

  return { stats, categories, catIndex, groups, runs, runIndex, severityOrder, hasSeverity, severityCounts };
}

// ---------------------------------------------------------------------------
// Small HTML helpers

const e = escapeHtml;

function showValue(value: ProvenanceValue): string {
  if (Array.isArray(value)) return value.length ? value.join(', ') : '(none)';
  if (value === null) return '(none)';
  return String(value);
}

function isOffline(stage: StageProvenance): boolean {
  return stage.provider?.toLowerCase() === 'offline' || stage.analyzer?.toLowerCase() === 'offline';
}

function listWords(words: string[]): string {
  if (words.length <= 1) return words.join('');
  return `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}

/** A character-limited label for SVG text (which cannot wrap). */
function shortLabel(text: string, max: number): string {
  const points = Array.from(text);
  return points.length > max ? `${points.slice(0, max - 1).join('').trimEnd()}\u2026` : text;
}

function num(x: number): string {
  return String(Math.round(x * 100) / 100);
}

// ---------------------------------------------------------------------------
// Sections

function renderHeader(input: HtmlReportInput, model: Model): string {
  const { stats } = model;
  const p = input.provenance;
  const out: string[] = [];
  out.push('<header class="page-head">');
  out.push('<div class="wrap">');
  out.push(`<p class="eyebrow">Cluster report \u00b7 analysis <span class="mono">${e(input.analysis)}</span></p>`);
  out.push(`<h1>${e(input.title)}</h1>`);
  if (p?.generated_at !== undefined) out.push(`<p class="meta">Generated ${e(p.generated_at)}</p>`);

  const offline = (p?.stages ?? []).filter(isOffline).map((s) => s.stage);
  if (offline.length) {
    out.push(
      '<div class="notice offline" role="note"><strong>Offline analyzer.</strong> ' +
        `The ${e(listWords(offline))} ${offline.length === 1 ? 'stage was' : 'stages were'} produced by the deterministic ` +
        'lexical analyzer, not by a language model. It groups runs by the wording the perturbation added (a word diff ' +
        'matched against a lexicon of mechanism cues, TF-IDF and agglomerative clustering): a fast first pass over the data, ' +
        'not an explanation of why the agent acted.</div>',
    );
  }

  const figures: [string, string][] = [
    [String(stats.clusterCount), stats.clusterCount === 1 ? 'cluster' : 'clusters'],
    [String(stats.totalCategories), stats.totalCategories === 1 ? 'category' : 'categories'],
    [String(stats.totalPerturbations), stats.totalPerturbations === 1 ? 'perturbation' : 'perturbations'],
  ];
  if (input.coverage) {
    figures.push([`${input.coverage.clustered} / ${input.coverage.in_task_list}`, 'runs clustered']);
    if (input.coverage.failed.length) figures.push([String(input.coverage.failed.length), 'failed runs']);
  }
  const examples = input.categories.flatMap((c) => c.examples);
  if (examples.length > 0) {
    const verified = examples.filter((x) => x.trigger_phrase_verified).length;
    figures.push([`${verified} / ${examples.length}`, 'trigger phrases verified']);
  }
  out.push('<dl class="figures">');
  for (const [value, label] of figures) out.push(`<div><dt>${e(label)}</dt><dd>${e(value)}</dd></div>`);
  out.push('</dl>');

  const nav: [string, string][] = [
    ['overview', 'Overview'],
    ['ranking', 'Ranked clusters'],
  ];
  if (input.changes) nav.push(['changes', 'What changed']);
  nav.push(['explore', 'Explore runs']);
  if (input.coverage) nav.push(['coverage', 'Coverage']);
  nav.push(['provenance', 'Provenance']);
  out.push('<nav aria-label="Sections"><ul>');
  for (const [id, label] of nav) out.push(`<li><a href="#${id}">${e(label)}</a></li>`);
  out.push('</ul></nav>');
  out.push('</div>');
  out.push('</header>');
  return out.join('\n');
}

function renderLegend(model: Model): string {
  if (!model.hasSeverity) return '';
  const items = model.severityOrder.map(
    (s) =>
      `<li><svg class="swatch" width="12" height="12" viewBox="0 0 12 12" aria-hidden="true" focusable="false">` +
      `<rect width="12" height="12" rx="2" fill="${severityColor(s, model.severityOrder)}"/></svg>${e(severityLabel(s))}</li>`,
  );
  return `<ul class="legend" aria-label="Severity colours">${items.join('')}</ul>`;
}

function renderChart(model: Model): string {
  const { stats } = model;
  if (!stats.clusters.length) return '<p class="empty">There are no clusters to chart.</p>';
  // One row per cluster: its name on the left and its count on the right of a
  // first line, the bar on a light track below them. Names sit above the bars so
  // that long cluster names need not be cut to a narrow label column.
  const width = 960;
  const barArea = width - 6;
  const rowHeight = 50;
  const labelBaseline = 17;
  const barTop = 24;
  const barHeight = 16;
  const height = stats.clusters.length * rowHeight;
  const max = Math.max(1, ...stats.clusters.map((c) => c.perturbations));

  const out: string[] = [];
  out.push(
    `<svg id="cluster-chart" class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" ` +
      `role="img" aria-labelledby="chart-title chart-desc" preserveAspectRatio="xMinYMin meet">`,
  );
  out.push('<title id="chart-title">Clusters by number of perturbations</title>');
  out.push(
    `<desc id="chart-desc">${e(
      stats.clusters.map((c) => `${c.rank}. ${c.name}: ${c.perturbations} (${pct(c.percent)})`).join('; '),
    )}</desc>`,
  );

  stats.clusters.forEach((c, i) => {
    const top = i * rowHeight;
    const y = top + barTop;
    const label = `${c.rank}. ${c.name}`;
    const breakdown = model.hasSeverity
      ? model.severityOrder
          .filter((s) => (model.severityCounts[i]?.get(s) ?? 0) > 0)
          .map((s) => `${severityLabel(s)} ${model.severityCounts[i]?.get(s) ?? 0}`)
          .join(', ')
      : '';
    const tip = `${label}: ${plural(c.perturbations, 'perturbation', 'perturbations')} (${pct(c.percent)})${breakdown ? `; ${breakdown}` : ''}`;
    out.push(`<a class="bar" href="#cluster-${c.rank}" data-cluster="${c.rank}" aria-label="${e(tip)}">`);
    out.push(`<title>${e(tip)}</title>`);
    out.push(`<rect class="row-bg" x="0" y="${top}" width="${width}" height="${rowHeight}" rx="6"/>`);
    out.push(`<text class="label" x="6" y="${top + labelBaseline}">${e(shortLabel(label, 105))}</text>`);
    out.push(
      `<text class="value" x="${width - 6}" y="${top + labelBaseline}" text-anchor="end">${c.perturbations} <tspan class="share">(${e(pct(c.percent))})</tspan></text>`,
    );
    out.push(`<rect class="track" x="6" y="${y}" width="${barArea - 6}" height="${barHeight}" rx="3"/>`);
    let x = 6;
    const segments: [string, number][] = model.hasSeverity
      ? model.severityOrder
          .map((s): [string, number] => [severityColor(s, model.severityOrder), model.severityCounts[i]?.get(s) ?? 0])
          .filter(([, n]) => n > 0)
      : c.perturbations > 0
        ? [[PLAIN_BAR_COLOR, c.perturbations]]
        : [];
    for (const [color, n] of segments) {
      const w = (n * (barArea - 6)) / max;
      out.push(`<rect class="seg" x="${num(x)}" y="${y}" width="${num(w)}" height="${barHeight}" fill="${color}"/>`);
      x += w;
    }
    out.push('</a>');
  });
  out.push('</svg>');
  return out.join('\n');
}

function renderDataIssues(stats: ReportStats): string {
  const items: string[] = [];
  if (stats.duplicateCategoryNames.length) {
    items.push(
      `<li>Category names that occur more than once in the categorization (only the last entry of each is counted): ${e(stats.duplicateCategoryNames.join('; '))}</li>`,
    );
  }
  if (stats.unknownMemberNames.length) {
    items.push(
      `<li>Cluster members that name no category (counted with 0 perturbations): ${e(stats.unknownMemberNames.join('; '))}</li>`,
    );
  }
  if (stats.multiplyClustered.length) {
    items.push(
      `<li>Categories listed by more than one cluster (counted each time, so shares can add up to more than 100%): ${e(
        stats.multiplyClustered.map((m) => `${m.name} (${m.clusters.join('; ')})`).join('; '),
      )}</li>`,
    );
  }
  if (stats.unclustered.length) {
    items.push(
      `<li>${plural(stats.unclustered.length, 'category is', 'categories are')} in no cluster: ${e(
        stats.unclustered.map((u) => `${u.name} (${u.perturbations})`).join('; '),
      )}</li>`,
    );
  }
  if (!items.length) return '';
  return `<div class="notice warn" role="note"><strong>Data issues</strong><ul>${items.join('')}</ul></div>`;
}

function renderOverview(model: Model): string {
  return [
    '<section id="overview" aria-labelledby="overview-h">',
    '<h2 id="overview-h">Clusters by perturbation count</h2>',
    `<p class="lead">Each bar is a cluster of categories; its length is the number of perturbations (runs) in its categories${
      model.hasSeverity ? ', split by the severity the run was assessed with' : ''
    }. Select a bar to open that cluster below.</p>`,
    renderLegend(model),
    `<div class="chart-box">${renderChart(model)}</div>`,
    renderDataIssues(model.stats),
    '</section>',
  ].join('\n');
}

function renderRanking(model: Model): string {
  const { stats } = model;
  const out: string[] = [];
  out.push('<section id="ranking" aria-labelledby="ranking-h">');
  out.push('<h2 id="ranking-h">Clusters ranked by perturbations</h2>');
  out.push(
    `<p class="lead">${plural(stats.totalPerturbations, 'perturbation', 'perturbations')} over ${plural(
      stats.totalCategories,
      'category',
      'categories',
    )} in ${plural(stats.clusterCount, 'cluster', 'clusters')}. Shares are of all perturbations; the last column adds the clusters up rank by rank.</p>`,
  );
  if (!stats.clusters.length) {
    out.push('<p class="empty">No clusters.</p>', '</section>');
    return out.join('\n');
  }
  out.push('<div class="table-box"><table class="ranking">');
  out.push(
    '<thead><tr><th scope="col" class="num">Rank</th><th scope="col">Cluster</th><th scope="col" class="num">Categories</th>' +
      '<th scope="col" class="num">Perturbations</th><th scope="col" class="num">Share</th><th scope="col" class="num">Cumulative</th></tr></thead>',
  );
  out.push('<tbody>');
  stats.clusters.forEach((c, i) => {
    const cumulative = stats.cumulative[i];
    const width = Math.max(0, Math.min(100, c.percent));
    out.push(
      `<tr><td class="num">${c.rank}</td>` +
        `<th scope="row"><a href="#cluster-${c.rank}" data-cluster="${c.rank}">${e(c.name)}</a></th>` +
        `<td class="num">${c.memberEntries}</td><td class="num">${c.perturbations}</td>` +
        `<td class="num share"><span>${e(pct(c.percent))}</span><svg class="spark" viewBox="0 0 100 6" width="60" height="6" aria-hidden="true" focusable="false">` +
        `<rect width="100" height="6" rx="3" class="spark-bg"/><rect width="${num(width)}" height="6" rx="3" class="spark-fg"/></svg></td>` +
        `<td class="num">${cumulative ? e(pct(cumulative.percent)) : ''}</td></tr>`,
    );
  });
  out.push('</tbody></table></div>');
  out.push('</section>');
  return out.join('\n');
}

function changeCount(label: string, before: number, after: number): string {
  const d = after - before;
  const delta = d > 0 ? `+${d}` : d < 0 ? `\u2212${-d}` : '\u00b10';
  const cls = d > 0 ? 'up' : d < 0 ? 'down' : 'same';
  return `<div><dt>${e(label)}</dt><dd>${before} \u2192 ${after} <span class="delta ${cls}">${delta}</span></dd></div>`;
}

function names(refs: CategoryRef[]): string {
  return refs.map((r) => `<span class="tag">${e(r.category_name)}</span>`).join(' ');
}

function renderChanges(changes: ChangeSummary): string {
  const out: string[] = [];
  out.push('<section id="changes" aria-labelledby="changes-h">');
  out.push('<h2 id="changes-h">What changed</h2>');
  out.push(`<p class="lead">${e(comparedWith(changes))}</p>`);
  out.push('<dl class="figures small">');
  out.push(changeCount('Runs', changes.before.runs, changes.after.runs));
  out.push(changeCount('Categories', changes.before.categories, changes.after.categories));
  if (changes.clusters === null || changes.before.clusters === null || changes.after.clusters === null) {
    out.push(`<div><dt>Clusters</dt><dd>${changes.after.clusters ?? 'unknown'} <span class="muted">not compared</span></dd></div>`);
  } else {
    out.push(changeCount('Clusters', changes.before.clusters, changes.after.clusters));
  }
  out.push('</dl>');
  const notCompared = changes.clusters === null ? `<p class="muted">${e(clustersNotCompared(changes))}</p>` : '';
  if (!hasChanges(changes)) {
    out.push(`<p>${e(nothingChanged(changes))}</p>`);
    if (notCompared) out.push(notCompared);
    out.push('</section>');
    return out.join('\n');
  }
  out.push('<div class="changes">');
  const block = (title: string, items: string[], open: boolean, wide = false): void => {
    if (!items.length) return;
    out.push(
      `<details class="change${wide ? ' wide' : ''}"${open ? ' open' : ''}><summary>${e(title)} <span class="count">${items.length}</span></summary>` +
        `<ul>${items.join('')}</ul></details>`,
    );
  };
  const sized = (n: number, before: number, after: number): string =>
    `${before} \u2192 ${after} <span class="delta ${n > 0 ? 'up' : 'down'}">${n > 0 ? '+' : '\u2212'}${Math.abs(n)}</span>`;
  block(
    'New categories',
    changes.new_categories.map((c) => `<li>${e(c.category_name)} <span class="muted">(${plural(c.size, 'run', 'runs')})</span></li>`),
    true,
  );
  block(
    'Removed categories',
    changes.removed_categories.map((c) => `<li>${e(c.category_name)} <span class="muted">(had ${plural(c.size, 'run', 'runs')})</span></li>`),
    true,
  );
  block(
    'Categories that grew',
    changes.grown_categories.map((c) => `<li>${e(c.category_name)}: ${sized(c.after - c.before, c.before, c.after)}</li>`),
    true,
  );
  block(
    'Categories that shrank',
    changes.shrunk_categories.map((c) => `<li>${e(c.category_name)}: ${sized(c.after - c.before, c.before, c.after)}</li>`),
    true,
  );
  const clusters = changes.clusters;
  if (clusters !== null) {
    block(
      'New clusters',
      clusters.new_clusters.map((c) => `<li><strong>${e(c.cluster_name)}</strong>${c.members.length ? `: ${names(c.members)}` : ''}</li>`),
      true,
    );
    block(
      'Removed clusters',
      clusters.removed_clusters.map((c) => `<li><strong>${e(c.cluster_name)}</strong>${c.members.length ? `: had ${names(c.members)}` : ''}</li>`),
      true,
    );
    block(
      'Clusters with changed membership',
      clusters.changed_clusters.map((c) => {
        const parts: string[] = [];
        if (c.previous_name !== null) parts.push(`renamed from <em>${e(c.previous_name)}</em>`);
        if (c.added_members.length) parts.push(`gained ${names(c.added_members)}`);
        if (c.removed_members.length) parts.push(`lost ${names(c.removed_members)}`);
        return `<li><strong>${e(c.cluster_name)}</strong>: ${parts.join('; ')}</li>`;
      }),
      true,
    );
  }
  block(
    'New runs',
    changes.new_runs.map((r) => `<li class="mono">${e(r)}</li>`),
    changes.new_runs.length <= 10,
    true,
  );
  block(
    'Removed runs',
    changes.removed_runs.map((r) => `<li class="mono">${e(r)}</li>`),
    changes.removed_runs.length <= 10,
    true,
  );
  out.push('</div>');
  if (notCompared) out.push(notCompared);
  out.push('</section>');
  return out.join('\n');
}

function facetSelect(id: string, label: string, allLabel: string, values: (string | null)[], counts: number[], show: (v: string | null) => string): string {
  const options = values.map((v, i) => `<option value="${i}">${e(show(v))} (${counts[i] ?? 0})</option>`);
  return (
    `<div class="field"><label for="${id}">${e(label)}</label>` +
    `<select id="${id}" data-facet="${id.slice('filter-'.length)}"${values.length ? '' : ' disabled'}><option value="">${e(allLabel)}</option>${options.join('')}</select></div>`
  );
}

interface Facets {
  domain: (string | null)[];
  refinement_model: (string | null)[];
  agent: (string | null)[];
  severity: (string | null)[];
}

function facetValues(model: Model): Facets {
  const distinct = (pick: (r: HtmlRun) => string | null): (string | null)[] => {
    const set = new Set(model.runs.map(pick));
    const strings = [...set].filter((v): v is string => v !== null).sort(compareCodePoints);
    return set.has(null) ? [...strings, null] : strings;
  };
  const text = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
  return {
    domain: distinct((r) => text(r.domain)),
    refinement_model: distinct((r) => text(r.refinement_model)),
    agent: distinct((r) => text(r.agent)),
    severity: orderSeverities(model.runs.map((r) => normalizeSeverity(r.severity))),
  };
}

function renderExplorer(model: Model, facets: Facets): string {
  // Counts per facet value are over examples (perturbations), like every other count.
  const exampleRuns: (HtmlRun | null)[] = [];
  for (const c of model.categories) {
    for (const ex of c.examples ?? []) {
      const i = model.runIndex.get(ex.run_id);
      exampleRuns.push(i === undefined ? null : (model.runs[i] as HtmlRun));
    }
  }
  const countsFor = (values: (string | null)[], pick: (r: HtmlRun) => string | null): number[] =>
    values.map((v) => exampleRuns.filter((r) => r !== null && pick(r) === v).length);
  const text = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
  const out: string[] = [];
  out.push('<section id="explore" aria-labelledby="explore-h">');
  out.push('<h2 id="explore-h">Explore clusters, categories and runs</h2>');
  out.push(
    '<p class="lead">Open a cluster to see its categories, and a category to see its runs: the original and the perturbed ' +
      'instruction with the changed words marked, the trigger phrase, why the run fits the category, and what the agent did.</p>',
  );
  out.push('<form class="filters" role="search" aria-label="Filter runs" id="filters">');
  out.push(
    '<div class="field grow"><label for="filter-text">Search</label>' +
      '<input type="search" id="filter-text" placeholder="Words in instructions, summaries, trigger phrases, run ids\u2026" autocomplete="off" spellcheck="false"></div>',
  );
  out.push(facetSelect('filter-domain', 'Domain', 'All domains', facets.domain, countsFor(facets.domain, (r) => text(r.domain)), (v) => v ?? '(none)'));
  out.push(
    facetSelect(
      'filter-refinement_model',
      'Refinement model',
      'All refinement models',
      facets.refinement_model,
      countsFor(facets.refinement_model, (r) => text(r.refinement_model)),
      (v) => v ?? '(none)',
    ),
  );
  out.push(facetSelect('filter-agent', 'Agent', 'All agents', facets.agent, countsFor(facets.agent, (r) => text(r.agent)), (v) => v ?? '(none)'));
  out.push(
    facetSelect(
      'filter-severity',
      'Severity',
      'All severities',
      facets.severity,
      countsFor(facets.severity, (r) => normalizeSeverity(r.severity)),
      severityLabel,
    ),
  );
  out.push('<div class="field buttons"><button type="reset" id="filter-reset">Clear filters</button></div>');
  out.push('</form>');
  out.push(
    '<div class="toolbar"><p id="filter-status" class="status" role="status" aria-live="polite"></p>' +
      '<div class="tree-buttons"><button type="button" id="expand-all">Expand all</button>' +
      '<button type="button" id="collapse-all">Collapse all</button></div></div>',
  );
  out.push('<noscript><p class="notice warn">The explorer is built by the script in this page, which is switched off. The chart, the tables, coverage and provenance above and below do not need it.</p></noscript>');
  out.push('<div id="tree" class="tree"></div>');
  out.push('</section>');
  return out.join('\n');
}

function renderCoverage(coverage: RunCoverage): string {
  const total = coverage.in_task_list;
  const share = (n: number): number => (total > 0 ? (n / total) * 100 : 0);
  const rows: [string, number][] = [
    ...(coverage.found_in_tree !== undefined ? ([['Found in the tree', coverage.found_in_tree], ['Dropped at selection', coverage.dropped?.length ?? 0]] as [string, number][]) : []),
    ['In the task list', total],
    ['Summarized', coverage.summarized],
    ['Categorized', coverage.categorized],
    ['In a cluster', coverage.clustered],
    ['Failed', coverage.failed.length],
  ];
  if (coverage.unassigned) rows.push(['Unassigned', coverage.unassigned.length]);
  const out: string[] = [];
  out.push('<section id="coverage" aria-labelledby="coverage-h">');
  out.push('<h2 id="coverage-h">Coverage of runs</h2>');
  out.push('<p class="lead">How the runs of the task list went through the stages.</p>');
  out.push('<div class="table-box narrow"><table class="coverage">');
  out.push('<thead><tr><th scope="col">Step</th><th scope="col" class="num">Runs</th><th scope="col" class="num">Share of task list</th></tr></thead><tbody>');
  for (const [label, n] of rows) {
    const w = Math.max(0, Math.min(100, share(n)));
    out.push(
      `<tr><th scope="row">${e(label)}</th><td class="num">${n}</td><td class="num share"><span>${total > 0 ? e(pct(share(n))) : '-'}</span>` +
        `<svg class="spark" viewBox="0 0 100 6" width="60" height="6" aria-hidden="true" focusable="false"><rect width="100" height="6" rx="3" class="spark-bg"/>` +
        `<rect width="${num(w)}" height="6" rx="3" class="spark-fg"/></svg></td></tr>`,
    );
  }
  out.push('</tbody></table></div>');
  const accounted = new Set([...coverage.failed.map((f) => f.run_id), ...(coverage.unassigned ?? []).map((u) => u.run_id)]);
  const missing = total - coverage.clustered - accounted.size;
  if (missing > 0) {
    out.push(
      `<p class="notice warn" role="note"><strong>Warning:</strong> ${plural(missing, 'run of the task list is', 'runs of the task list are')} neither in a cluster nor listed as failed or unassigned.</p>`,
    );
  }
  const runTable = (title: string, rowsHtml: string[]): void => {
    out.push(`<h3>${e(title)}</h3>`);
    out.push('<div class="table-box"><table class="runs-table">');
    out.push('<thead><tr><th scope="col">Run</th><th scope="col">Stage</th><th scope="col">Reason</th></tr></thead><tbody>');
    out.push(...rowsHtml, '</tbody></table></div>');
  };
  const problemTable = (title: string, rows: { file: string; field?: string; reason: string }[]): void => {
    out.push(`<h3>${e(title)} (${rows.length})</h3>`);
    out.push('<div class="table-box"><table class="runs-table">');
    out.push('<thead><tr><th scope="col">File</th><th scope="col">Field</th><th scope="col">Reason</th></tr></thead><tbody>');
    for (const p of rows) out.push(`<tr><td class="mono">${e(p.file)}</td><td>${e(p.field ?? '-')}</td><td>${e(p.reason)}</td></tr>`);
    out.push('</tbody></table></div>');
  };
  if (coverage.dropped?.length) problemTable('Runs dropped at selection', coverage.dropped);
  if (coverage.tree_problems?.length) problemTable('Other problems in the tree', coverage.tree_problems);
  if (coverage.failed.length) {
    runTable(
      `Failed runs (${coverage.failed.length})`,
      coverage.failed.map((f) => `<tr><td class="mono">${e(f.run_id)}</td><td>${e(f.stage)}</td><td>${e(f.reason)}</td></tr>`),
    );
  }
  if (coverage.unassigned?.length) {
    runTable(
      `Unassigned runs (${coverage.unassigned.length})`,
      coverage.unassigned.map(
        (u) => `<tr><td class="mono">${e(u.run_id)}</td><td>${e(u.stage ?? '-')}</td><td>${e(u.reason ?? '-')}</td></tr>`,
      ),
    );
  }
  out.push('</section>');
  return out.join('\n');
}

function renderProvenance(provenance: ReportProvenance | undefined, analysis: string): string {
  const p = provenance ?? {};
  const out: string[] = [];
  out.push('<section id="provenance" aria-labelledby="provenance-h">');
  out.push('<h2 id="provenance-h">How this report was produced</h2>');
  const facts: [string, string][] = [['Analysis', p.analysis ?? analysis]];
  if (p.generated_at !== undefined) facts.push(['Generated', p.generated_at]);
  out.push('<dl class="facts">');
  for (const [k, v] of facts) out.push(`<div><dt>${e(k)}</dt><dd>${e(v)}</dd></div>`);
  out.push('</dl>');
  const stages = p.stages ?? [];
  const offline = stages.filter(isOffline).map((s) => s.stage);
  if (offline.length) {
    out.push(
      `<p class="notice offline" role="note"><strong>Offline analyzer:</strong> ${e(listWords(offline))} ${
        offline.length === 1 ? 'was' : 'were'
      } answered by the deterministic lexical analyzer that ships with the pipeline, not by a language model.</p>`,
    );
  }
  if (stages.length) {
    out.push('<div class="table-box"><table class="stages">');
    out.push(
      '<thead><tr><th scope="col">Stage</th><th scope="col">Analyzer</th><th scope="col">Provider</th><th scope="col">Model</th>' +
        '<th scope="col">Prompts</th><th scope="col">Settings</th></tr></thead><tbody>',
    );
    for (const s of stages) {
      const prompts = Object.entries(s.prompts ?? {}).map(([name, hash]) => `<li><span class="kv">${e(name)}:</span> <code>${e(hash)}</code></li>`);
      const settings = Object.entries(s.settings ?? {}).map(([k, v]) => `<li><span class="kv">${e(k)}:</span> ${e(showValue(v))}</li>`);
      const analyzer = s.analyzer ?? '-';
      out.push(
        `<tr><th scope="row">${e(s.stage)}</th>` +
          `<td>${isOffline(s) ? `<span class="pill offline">${e(analyzer === '-' ? 'offline' : analyzer)}</span>` : e(analyzer)}</td>` +
          `<td>${e(s.provider || '-')}</td><td>${e(s.model || '-')}</td>` +
          `<td>${prompts.length ? `<ul class="plain">${prompts.join('')}</ul>` : '-'}</td>` +
          `<td>${settings.length ? `<ul class="plain">${settings.join('')}</ul>` : '-'}</td></tr>`,
      );
    }
    out.push('</tbody></table></div>');
  }
  const filters = Object.entries(p.filters ?? {});
  if (filters.length) {
    out.push('<h3>Filters applied to the runs</h3>');
    out.push('<dl class="facts">');
    for (const [k, v] of filters) out.push(`<div><dt>${e(k)}</dt><dd>${e(showValue(v))}</dd></div>`);
    out.push('</dl>');
  }
  if (p.notes?.length) {
    out.push('<h3>Notes</h3>');
    out.push(`<ul>${p.notes.map((n) => `<li>${e(n)}</li>`).join('')}</ul>`);
  }
  out.push('</section>');
  return out.join('\n');
}

// ---------------------------------------------------------------------------
// Data for the explorer script

interface ClientData {
  /** Severity levels in display order with their colours; `light` colours need dark text. */
  severities: { value: string | null; color: string; light: boolean }[];
  facets: Facets;
  groups: { dom: string; rank: number | null; id: string; name: string; definition: string; anchors: string; members: { cat: number; name: string; justification: string }[] }[];
  categories: { id: string; name: string; definition: string; examples: { id: string; run_id: string; run: number; trigger: string | null; justification: string | null; verified: boolean }[] }[];
  runs: {
    run_id: string;
    agent: string | null;
    domain: string | null;
    task_id: string;
    perturbed_id: string;
    refinement_model: string | null;
    original: string;
    perturbed: string;
    summary: string;
    severity: string | null;
    score: number | null;
    strategy: string | null;
    folder: string;
    href: string | null;
    /** Changed ranges: removed words in the original, added words in the perturbed text (UTF-16 offsets). */
    removed: [number, number][];
    added: [number, number][];
  }[];
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v);
}

function clientData(model: Model, facets: Facets): ClientData {
  const text = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
  return {
    severities: model.severityOrder.map((s) => {
      const color = severityColor(s, model.severityOrder);
      return { value: s, color, light: isLight(color) };
    }),
    facets,
    groups: model.groups.map((g) => ({ ...g, members: g.members.map((m) => ({ ...m })) })),
    categories: model.categories.map((c) => ({
      id: str(c.category_id),
      name: str(c.category_name),
      definition: str(c.definition),
      examples: (c.examples ?? []).map((ex) => ({
        id: str(ex.id),
        run_id: str(ex.run_id),
        run: model.runIndex.get(ex.run_id) ?? -1,
        trigger: typeof ex.trigger_phrase === 'string' ? ex.trigger_phrase : null,
        justification: typeof ex.justification === 'string' ? ex.justification : null,
        verified: ex.trigger_phrase_verified === true,
      })),
    })),
    runs: model.runs.map((r) => {
      const original = str(r.original_instruction);
      const perturbed = str(r.perturbed_instruction);
      const diff = wordDiff(original, perturbed);
      return {
        run_id: str(r.run_id),
        agent: text(r.agent),
        domain: text(r.domain),
        task_id: str(r.task_id),
        perturbed_id: str(r.perturbed_id),
        refinement_model: text(r.refinement_model),
        original,
        perturbed,
        summary: str(r.summary),
        severity: normalizeSeverity(r.severity),
        score: typeof r.score === 'number' && Number.isFinite(r.score) ? r.score : null,
        strategy: text(r.strategy),
        folder: str(r.run_folder),
        href: runHref(r),
        removed: diff.segments.filter((s) => s.op === 'remove').map((s): [number, number] => [s.start, s.end]),
        added: diff.segments.filter((s) => s.op === 'add').map((s): [number, number] => [s.start, s.end]),
      };
    }),
  };
}

// ---------------------------------------------------------------------------

/** The whole report as one HTML document (UTF-8). */
export function renderHtmlReport(input: HtmlReportInput): string {
  const model = buildModel(input);
  const facets = facetValues(model);
  const sections = [
    renderOverview(model),
    renderRanking(model),
    input.changes ? renderChanges(input.changes) : '',
    renderExplorer(model, facets),
    input.coverage ? renderCoverage(input.coverage) : '',
    renderProvenance(input.provenance, input.analysis),
  ].filter((s) => s !== '');
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<meta http-equiv="Content-Security-Policy" content="${e(CONTENT_SECURITY_POLICY)}">`,
    '<meta name="referrer" content="no-referrer">',
    '<meta name="color-scheme" content="light dark">',
    `<title>${e(input.title)}</title>`,
    '<link rel="icon" href="data:,">',
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    '<a class="skip" href="#explore">Skip to the run explorer</a>',
    renderHeader(input, model),
    '<main class="wrap">',
    ...sections,
    '</main>',
    '<footer class="wrap"><p>One self-contained file: no network access is made or needed. ' +
      `Run folders are linked by relative path from where the report was written, or by file:// URL when the data root is absolute.</p></footer>`,
    `<script type="application/json" id="report-data">${jsonForScript(clientData(model, facets))}</script>`,
    `<script>${SCRIPT}</script>`,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
