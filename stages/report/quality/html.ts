// The quality section of report.html, and its comparison view (placed next
// to the cluster chart): static, escaped HTML and hand-drawn SVG, so it needs
// no script and makes no request. Colours are SVG presentation attributes and
// `currentColor`, so the page's CSS (and its hash in the CSP) is unchanged.
import { pct } from '../../util/pyformat.ts';
import { plural } from '../../util/words.ts';
import { escapeHtml, num, shortLabel } from '../html-text.ts';
import { wilsonInterval } from './intervals.ts';
import { MIN_SUMMARY_WORDS } from './summary-health.ts';
import type { Comparison, DifferenceRow, Dimension, PrevalenceRow, QualityData } from './compute.ts';
import { DIMENSION_LABEL, agreementLines, methodNotes } from './markdown.ts';

const e = escapeHtml;
/** The two sides of a comparison: a blue and an orange that read on light and dark backgrounds alike. */
export const SIDE_COLORS = ['#4e79a7', '#e8822a'] as const;

const share = (x: number) => pct(x * 100);
const signed = (x: number) => `${x > 0 ? '+' : x < 0 ? '\u2212' : ''}${pct(Math.abs(x) * 100)}`;
const capital = (s: string) => s.replace(/^./, (x) => x.toUpperCase());

/** Plain text of a Markdown note (the notes are shared with report.md and use no markup but backticks). */
const plain = (s: string) => s.replace(/`/g, '');

function sideLegend(c: Comparison): string {
  const item = (name: string, n: number, color: string) =>
    `<li><svg class="swatch" width="12" height="12" viewBox="0 0 12 12" aria-hidden="true" focusable="false"><rect width="12" height="12" rx="2" fill="${color}"/></svg>` +
    `${e(name)} (${n} runs)</li>`;
  return `<ul class="legend" aria-label="Compared ${e(DIMENSION_LABEL[c.dimension])}s">${item(c.a, c.runs_a, SIDE_COLORS[0])}${item(c.b, c.runs_b, SIDE_COLORS[1])}</ul>`;
}

/** Side-by-side bars: per row, the share of each side with its Wilson interval as a whisker, and the difference with its interval. */
export function comparisonChart(c: Comparison, rows: DifferenceRow[], kind: 'cluster' | 'category', id: string): string {
  if (!rows.length) return `<p class="empty">No ${kind === 'cluster' ? 'clusters' : 'categories'} to compare.</p>`;
  const width = 960;
  const left = 6;
  const barRight = 640;
  const rowHeight = 62;
  const height = rows.length * rowHeight;
  const intervals = rows.map((r) => [wilsonInterval(r.count_a, c.runs_a), wilsonInterval(r.count_b, c.runs_b)] as const);
  const max = Math.max(0.05, ...intervals.flatMap(([a, b]) => [a?.upper ?? 0, b?.upper ?? 0]));
  const x = (v: number) => left + (v / max) * (barRight - left);
  const out: string[] = [];
  const title = `${capital(kind)} shares: ${c.a} vs ${c.b}`;
  out.push(
    `<svg id="${e(id)}" class="chart compare-chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" ` +
      `aria-labelledby="${e(id)}-title" preserveAspectRatio="xMinYMin meet">`,
  );
  out.push(`<title id="${e(id)}-title">${e(title)}</title>`);
  rows.forEach((r, i) => {
    const top = i * rowHeight;
    const diff = `${signed(r.difference)} (${signed(r.lower)} to ${signed(r.upper)})`;
    const tip =
      `${r.name}${r.fallback ? ' (placed by fallback)' : ''}: ${c.a} ${r.count_a} of ${c.runs_a} (${share(r.share_a)}), ` +
      `${c.b} ${r.count_b} of ${c.runs_b} (${share(r.share_b)}); difference ${diff}${r.excludes_zero ? ', interval excludes 0' : ''}`;
    out.push(`<g class="compare-row${r.excludes_zero ? ' excludes-zero' : ''}" data-id="${e(r.id)}" aria-label="${e(tip)}">`);
    out.push(`<title>${e(tip)}</title>`);
    out.push(`<rect class="row-bg" x="0" y="${top}" width="${width}" height="${rowHeight}" rx="6"/>`);
    out.push(`<text class="label" x="${left}" y="${top + 16}">${e(shortLabel(`${r.name}${r.fallback ? ' (fallback)' : ''}`, 78))}</text>`);
    out.push(
      `<text class="value diff" x="${width - 6}" y="${top + 16}" text-anchor="end">${r.excludes_zero ? '\u25c6 ' : ''}\u0394 ${e(diff)}</text>`,
    );
    const sides: [number, number, number, ReturnType<typeof wilsonInterval>][] = [
      [0, r.count_a, r.share_a, intervals[i]?.[0] ?? null],
      [1, r.count_b, r.share_b, intervals[i]?.[1] ?? null],
    ];
    for (const [side, count, s, w] of sides) {
      const y = top + 24 + side * 17;
      out.push(`<rect class="track" x="${left}" y="${y}" width="${barRight - left}" height="12" rx="3"/>`);
      out.push(`<rect class="side side-${side === 0 ? 'a' : 'b'}" x="${left}" y="${y}" width="${num(x(s) - left)}" height="12" rx="2" fill="${SIDE_COLORS[side]}"/>`);
      if (w) {
        const mid = y + 6;
        out.push(
          `<path class="whisker" d="M${num(x(w.lower))} ${mid}H${num(x(w.upper))}M${num(x(w.lower))} ${mid - 4}V${mid + 4}M${num(x(w.upper))} ${mid - 4}V${mid + 4}" ` +
            'stroke="currentColor" stroke-width="1.5" fill="none"/>',
        );
      }
      out.push(
        `<text class="value" x="${width - 6}" y="${y + 11}" text-anchor="end">${count} \u00b7 ${e(share(s))}` +
          `${w ? ` <tspan class="share">(${e(share(w.lower))}\u2013${e(share(w.upper))})</tspan>` : ''}</text>`,
      );
    }
    out.push('</g>');
  });
  out.push('</svg>');
  return out.join('\n');
}

function comparisonFigure(c: Comparison, k: number): string {
  const marked = [...c.clusters, ...c.categories].filter((r) => r.excludes_zero).length;
  const id = `compare-${c.dimension}-${k}`;
  return [
    `<figure class="compare" id="${e(id)}" data-dimension="${e(c.dimension)}">`,
    `<figcaption><strong>${e(capital(DIMENSION_LABEL[c.dimension]))}: ${e(c.a)} vs ${e(c.b)}.</strong> ` +
      `${marked} of ${c.clusters.length + c.categories.length} differences have an interval that excludes 0 (\u25c6); about 1 in 20 would by chance alone.</figcaption>`,
    sideLegend(c),
    `<div class="chart-box">${comparisonChart(c, c.clusters, 'cluster', `${id}-clusters`)}</div>`,
    `<details class="change wide"><summary>Categories (${c.categories.length})</summary>`,
    `<div class="chart-box">${comparisonChart(c, c.categories, 'category', `${id}-categories`)}</div>`,
    '</details>',
    '</figure>',
  ].join('\n');
}

/** The comparison view: one figure per pair of agents and per pair of refinement models. */
export function renderComparisons(q: QualityData): string {
  const out: string[] = ['<section id="compare" aria-labelledby="compare-h">', '<h2 id="compare-h">Agents and refinement models compared</h2>'];
  out.push(
    '<p class="lead">Each pair of bars: the share of one side\'s categorized runs in a cluster, with its 95% Wilson interval as a whisker. ' +
      '\u0394 is the difference in share (first minus second) with its 95% Newcombe interval; \u25c6 marks an interval that excludes 0. ' +
      'Intervals treat runs as independent and are not corrected for the many comparisons; a difference is not a cause. ' +
      'More figures are in <a href="#quality">Quality of the taxonomy</a>.</p>',
  );
  if (!q.comparisons.length) out.push('<p class="empty">There is only one agent and one refinement model with categorized runs, so nothing is compared.</p>');
  q.comparisons.forEach((c, k) => out.push(comparisonFigure(c, k + 1)));
  out.push('</section>');
  return out.join('\n');
}

function prevalenceTable(title: string, rows: PrevalenceRow[], q: QualityData, d: Dimension): string {
  const columns = q.slices.map((s, i) => ({ s, i })).filter(({ s }) => s.dimension === 'all' || s.dimension === d);
  if (columns.length < 2) return '';
  const head = columns.map(({ s }) => `<th scope="col" class="num">${e(s.value ?? 'All runs')} <span class="muted">(n=${s.runs})</span></th>`).join('');
  const body = rows.map((r) => {
    const cells = columns.map(({ i }) => {
      const p = r.by[i];
      if (!p || p.share === null || p.lower === null || p.upper === null) return '<td class="num">-</td>';
      return `<td class="num">${p.count} \u00b7 ${e(share(p.share))} <span class="muted">(${e(share(p.lower))}\u2013${e(share(p.upper))})</span></td>`;
    });
    return `<tr><th scope="row">${e(r.name)}${r.fallback ? ' <span class="muted">(fallback)</span>' : ''}</th>${cells.join('')}</tr>`;
  });
  return (
    `<details class="change wide"><summary>${e(title)} by ${e(DIMENSION_LABEL[d])}</summary>` +
    `<div class="table-box"><table class="prevalence"><thead><tr><th scope="col">${e(title === 'Clusters' ? 'Cluster' : 'Category')}</th>${head}</tr></thead><tbody>${body.join('')}</tbody></table></div></details>`
  );
}

export function renderQuality(q: QualityData): string {
  const out: string[] = ['<section id="quality" aria-labelledby="quality-h">', '<h2 id="quality-h">Quality of the taxonomy</h2>'];
  out.push(
    '<p class="lead">How far the numbers of this report can be trusted: how certain each share is, which summaries and categories look unhealthy, ' +
      'which categories the cluster model did not place, and how stable the categorization is. The agent comparison is <a href="#compare">next to the chart</a>.</p>',
  );
  out.push(`<ul>${methodNotes(q).map((n) => `<li>${e(plain(n))}</li>`).join('')}</ul>`);

  const p = q.placement;
  out.push('<h3>Placement in clusters</h3>');
  const placement = [
    `Categories the cluster model placed in a cluster: ${p.placed_by_model} of ${p.categories}, holding ${p.runs_placed_by_model} of ${p.categorized_runs} categorized runs (the coverage's "In a cluster" counts only these).`,
    `Categories put in a cluster of their own by fallback, because the model did not place them: ${p.placed_by_fallback.length}.`,
    `Categories in no cluster at all: ${p.in_no_cluster.length}.`,
  ];
  const warn = p.placed_by_fallback.length + p.in_no_cluster.length > 0;
  out.push(`<div class="${warn ? 'notice warn' : ''}" id="placement"><ul>${placement.map((l) => `<li>${e(l)}</li>`).join('')}`);
  for (const f of p.placed_by_fallback) out.push(`<li>Placed by fallback: ${e(f.category_name)} (${e(plural(f.runs, 'run', 'runs'))}): ${e(f.reason)}</li>`);
  for (const u of p.in_no_cluster) out.push(`<li>In no cluster: ${e(u.category_name)} (${e(plural(u.runs, 'run', 'runs'))})</li>`);
  out.push('</ul></div>');

  out.push('<h3>Prevalence with 95% intervals</h3>');
  out.push(
    '<p class="lead">Each cell: runs \u00b7 share of the slice\'s categorized runs (95% Wilson interval): the shares this count is compatible with, not a range the share will stay in on other data.</p>',
  );
  for (const [title, rows] of [['Clusters', q.prevalence.clusters], ['Categories', q.prevalence.categories]] as const) {
    for (const d of ['agent', 'refinement_model', 'domain'] as const) out.push(prevalenceTable(title, rows, q, d));
  }

  const sh = q.summary_health;
  out.push('<h3>Summary health</h3>');
  out.push(
    `<p class="lead">Summaries that are empty, open like a refusal, or are generic (fewer than ${MIN_SUMMARY_WORDS} words, or word for word another run's summary) would be categorized like real ones: ` +
      `${sh.flagged.length} of ${sh.checked} checked summaries are flagged. The checks read the text only, so they find the plain cases, not every poor summary.</p>`,
  );
  if (sh.flagged.length) {
    out.push('<div class="table-box"><table class="summary-health"><thead><tr><th scope="col">Run</th><th scope="col">Problem</th><th scope="col">What was seen</th></tr></thead><tbody>');
    for (const f of sh.flagged) out.push(`<tr><td class="mono">${e(f.run_id)}</td><td>${e(f.issue)}</td><td>${e(f.detail)}</td></tr>`);
    out.push('</tbody></table></div>');
  }

  const ch = q.category_health;
  out.push('<h3>Category health</h3>');
  out.push(
    `<p class="lead">Warnings about the taxonomy itself, from counts and word overlap (a cheap proxy for meaning): a prompt to look, not a finding. ` +
      `A pair is a near-duplicate when the Jaccard similarity of the distinctive words of their names, or of their definitions, is at least ${ch.similarity_threshold} (words more than half of the categories use are left out).</p>`,
  );
  const items: string[] = [
    `<li>Singleton categories (one run each): ${ch.singletons.length ? e(ch.singletons.map((c) => c.name).join('; ')) : 'none'}</li>`,
    `<li>Near-duplicate pairs: ${
      ch.near_duplicates.length
        ? `<ul>${ch.near_duplicates.map((d) => `<li>${e(d.a.name)} / ${e(d.b.name)} (names ${d.name_similarity}, definitions ${d.definition_similarity})</li>`).join('')}</ul>`
        : 'none'
    }</li>`,
    `<li>Generic names or catch-all definitions: ${
      ch.generic_names.length ? `<ul>${ch.generic_names.map((g) => `<li>${e(g.name)}: ${e(g.reason)}</li>`).join('')}</ul>` : 'none'
    }</li>`,
  ];
  out.push(`<ul class="category-health">${items.join('')}</ul>`);

  out.push('<h3>Agreement</h3>');
  out.push(`<ul class="agreement">${agreementLines(q).map((l) => `<li>${e(plain(l))}</li>`).join('')}</ul>`);
  out.push('</section>');
  return out.join('\n');
}

