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
//
// The page is assembled here from html-model.ts (the input and what is
// computed from it once), one module per section (html-header, html-overview
// with the ranked table, html-changes, html-explorer with the explorer's data,
// html-coverage, html-provenance), html-text.ts (escaping, hrefs) and
// html-assets.ts (the CSS and script next to it, and the page's CSP). The
// quality section and its comparison view (next to the chart) come from
// quality/html.ts.

import { CONTENT_SECURITY_POLICY, CSS, SCRIPT } from './html-assets.ts';
import { renderChanges } from './html-changes.ts';
import { clientDataJson, renderExplorer } from './html-explorer.ts';
import { renderHeader } from './html-header.ts';
import { buildModel, facetValues } from './html-model.ts';
import type { HtmlReportInput } from './html-model.ts';
import { renderCoverage } from './html-coverage.ts';
import { renderOverview, renderRanking } from './html-overview.ts';
import { renderProvenance } from './html-provenance.ts';
import { renderComparisons, renderQuality } from './quality/html.ts';
import { escapeHtml, scriptSafe } from './html-text.ts';

export { CONTENT_SECURITY_POLICY } from './html-assets.ts';
export type { HtmlCategory, HtmlCategoryExample, HtmlCluster, HtmlClusterMember, HtmlReportInput, HtmlRun } from './html-model.ts';
export { escapeHtml, folderHref, jsonForScript, runLinkHref } from './html-text.ts';

const e = escapeHtml;

/** The whole report as one HTML document (UTF-8), as one string: `writeHtmlReport`'s pieces joined. */
export function renderHtmlReport(input: HtmlReportInput): string {
  const parts: string[] = [];
  writeHtmlReport(input, (text) => parts.push(text));
  return parts.join('');
}

/**
 * The whole report as one HTML document (UTF-8), handed to `write` piece by
 * piece in document order. The explorer's data, most of the page (every run's
 * texts), goes out a run at a time (clientDataJson), so a report of many runs
 * is never one string in memory.
 */
export function writeHtmlReport(input: HtmlReportInput, write: (text: string) => void): void {
  const model = buildModel(input);
  const facets = facetValues(model);
  const sections = [
    renderOverview(model, new Set((input.quality?.prevalence.clusters ?? []).filter((c) => c.fallback).map((c) => c.name))),
    input.quality ? renderComparisons(input.quality) : '',
    renderRanking(model),
    input.changes ? renderChanges(input.changes) : '',
    renderExplorer(model, facets),
    input.coverage ? renderCoverage(input.coverage) : '',
    input.quality ? renderQuality(input.quality) : '',
    renderProvenance(input.provenance, input.analysis),
  ].filter((s) => s !== '');
  const lines = (xs: string[]) => write(xs.map((x) => `${x}\n`).join(''));
  lines([
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
  ]);
  write('<script type="application/json" id="report-data">');
  for (const piece of clientDataJson(model, facets)) write(scriptSafe(piece));
  write('</script>\n');
  lines([`<script>${SCRIPT}</script>`, '</body>', '</html>']);
}
