// The HTML report's run explorer: the static part (search, facet filters,
// buttons) and the data the explorer script (html-assets/report.js) builds the
// cluster -> category -> run tree from.

import { wordDiff } from '../offline/diff.ts';
import { isLight, normalizeSeverity, severityColor, severityLabel } from './html-severity.ts';
import type { Facets, HtmlCategoryExample, HtmlRun, Model } from './html-model.ts';
import { escapeHtml, folderHref, runLinkHref } from './html-text.ts';

const e = escapeHtml;

function facetSelect(id: string, label: string, allLabel: string, values: (string | null)[], counts: number[], show: (v: string | null) => string): string {
  const options = values.map((v, i) => `<option value="${i}">${e(show(v))} (${counts[i] ?? 0})</option>`);
  return (
    `<div class="field"><label for="${id}">${e(label)}</label>` +
    `<select id="${id}" data-facet="${id.slice('filter-'.length)}"${values.length ? '' : ' disabled'}><option value="">${e(allLabel)}</option>${options.join('')}</select></div>`
  );
}

export function renderExplorer(model: Model, facets: Facets): string {
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
  // Says when a link to a run (#run=<id>) names no run of this report; report.js fills it.
  out.push('<p id="run-notice" class="notice" role="status" hidden></p>');
  out.push('<noscript><p class="notice warn">The explorer is built by the script in this page, which is switched off. The chart, the tables, coverage and provenance above and below do not need it.</p></noscript>');
  out.push('<div id="tree" class="tree"></div>');
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

/**
 * The explorer's data as JSON text, piece by piece: together the pieces are
 * JSON.stringify of the whole ClientData, but they come an example or a run at
 * a time, so the page's largest part (every run's texts and changed ranges) is
 * never one string or one array in memory.
 */
export function* clientDataJson(model: Model, facets: Facets): Generator<string> {
  const head: Omit<ClientData, 'categories' | 'runs'> = {
    severities: model.severityOrder.map((s) => {
      const color = severityColor(s, model.severityOrder);
      return { value: s, color, light: isLight(color) };
    }),
    facets,
    groups: model.groups.map((g) => ({ ...g, members: g.members.map((m) => ({ ...m })) })),
  };
  // The head as an object without its closing brace; the two lists follow in ClientData's key order.
  yield `${JSON.stringify(head).slice(0, -1)},"categories":[`;
  let first = true;
  for (const c of model.categories) {
    // A category's examples one at a time too: the largest holds a good part of all runs.
    const head: Omit<ClientData['categories'][number], 'examples'> = { id: str(c.category_id), name: str(c.category_name), definition: str(c.definition) };
    yield `${first ? '' : ','}${JSON.stringify(head).slice(0, -1)},"examples":[`;
    first = false;
    let firstExample = true;
    for (const ex of c.examples ?? []) {
      yield `${firstExample ? '' : ','}${JSON.stringify(clientExample(model, ex))}`;
      firstExample = false;
    }
    yield ']}';
  }
  yield '],"runs":[';
  first = true;
  for (const r of model.runs) {
    yield `${first ? '' : ','}${JSON.stringify(clientRun(r))}`;
    first = false;
  }
  yield ']}';
}

function clientExample(model: Model, ex: HtmlCategoryExample): ClientData['categories'][number]['examples'][number] {
  return {
    id: str(ex.id),
    run_id: str(ex.run_id),
    run: model.runIndex.get(ex.run_id) ?? -1,
    trigger: typeof ex.trigger_phrase === 'string' ? ex.trigger_phrase : null,
    justification: typeof ex.justification === 'string' ? ex.justification : null,
    verified: ex.trigger_phrase_verified === true,
  };
}

function clientRun(r: HtmlRun): ClientData['runs'][number] {
  const text = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
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
}

function runHref(run: HtmlRun): string | null {
  if (run.run_link === undefined) return folderHref(str(run.run_folder));
  return typeof run.run_link === 'string' ? runLinkHref(run.run_link) : null;
}
