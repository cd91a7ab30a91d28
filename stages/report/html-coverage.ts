// The HTML report's coverage section: how the runs of the task list went
// through the stages, and the runs dropped, failed or unassigned.

import { pct } from '../util/pyformat.ts';
import { plural } from '../util/words.ts';
import { escapeHtml, num } from './html-text.ts';
import type { RunCoverage } from './markdown.ts';

const e = escapeHtml;

export function renderCoverage(coverage: RunCoverage): string {
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
