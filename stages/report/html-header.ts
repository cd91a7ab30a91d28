// The HTML report's page head: title, the offline notice, key figures and the
// section navigation.

import type { HtmlReportInput, Model } from './html-model.ts';
import { escapeHtml, isOffline, listWords } from './html-text.ts';

const e = escapeHtml;

export function renderHeader(input: HtmlReportInput, model: Model): string {
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
  ];
  if (input.quality) nav.push(['compare', 'Compared']);
  nav.push(['ranking', 'Ranked clusters']);
  if (input.changes) nav.push(['changes', 'What changed']);
  nav.push(['explore', 'Explore runs']);
  if (input.coverage) nav.push(['coverage', 'Coverage']);
  if (input.quality) nav.push(['quality', 'Quality']);
  nav.push(['provenance', 'Provenance']);
  out.push('<nav aria-label="Sections"><ul>');
  for (const [id, label] of nav) out.push(`<li><a href="#${id}">${e(label)}</a></li>`);
  out.push('</ul></nav>');
  out.push('</div>');
  out.push('</header>');
  return out.join('\n');
}
