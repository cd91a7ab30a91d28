// The HTML report's provenance section: analysis, stages (analyzer, provider,
// model, prompts, settings), filters and notes.

import { escapeHtml, isOffline, listWords, showValue } from './html-text.ts';
import type { ReportProvenance } from './markdown.ts';

const e = escapeHtml;

export function renderProvenance(provenance: ReportProvenance | undefined, analysis: string): string {
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
