// The HTML report's overview (severity legend, the bar chart of clusters, data
// issues) and the ranked table of clusters.

import { pct } from '../util/pyformat.ts';
import { plural } from '../util/words.ts';
import { PLAIN_BAR_COLOR, severityColor, severityLabel } from './html-severity.ts';
import type { Model } from './html-model.ts';
import { escapeHtml, num, shortLabel } from './html-text.ts';
import type { ReportStats } from './stats.ts';

const e = escapeHtml;

function renderLegend(model: Model): string {
  if (!model.hasSeverity) return '';
  const items = model.severityOrder.map(
    (s) =>
      `<li><svg class="swatch" width="12" height="12" viewBox="0 0 12 12" aria-hidden="true" focusable="false">` +
      `<rect width="12" height="12" rx="2" fill="${severityColor(s, model.severityOrder)}"/></svg>${e(severityLabel(s))}</li>`,
  );
  return `<ul class="legend" aria-label="Severity colours">${items.join('')}</ul>`;
}

function renderChart(model: Model, fallback: ReadonlySet<string>): string {
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
    const label = `${c.rank}. ${c.name}${fallback.has(c.name) ? ' (fallback)' : ''}`;
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

/** `fallback`: names of clusters formed by fallback around a category the cluster model never placed (marked in the chart). */
export function renderOverview(model: Model, fallback: ReadonlySet<string> = new Set()): string {
  return [
    '<section id="overview" aria-labelledby="overview-h">',
    '<h2 id="overview-h">Clusters by perturbation count</h2>',
    `<p class="lead">Each bar is a cluster of categories; its length is the number of perturbations (runs) in its categories${
      model.hasSeverity ? ', split by the severity the run was assessed with' : ''
    }. Select a bar to open that cluster below.</p>`,
    renderLegend(model),
    `<div class="chart-box">${renderChart(model, fallback)}</div>`,
    renderDataIssues(model.stats),
    '</section>',
  ].join('\n');
}

export function renderRanking(model: Model): string {
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
