// The held-out agreement figure as the report shows it: a Markdown fragment,
// a plain object for report-data.json and an HTML fragment, each saying in
// one sentence per figure what it measures. Pure: it takes heldout.json's
// document (categorize/heldout.ts) and returns text or data. The report stage
// reads heldout.json (declared in stages/registry.ts) and places these.
//
// What the figure is not: a measure of correctness. The analyzer that built
// the taxonomy re-assigns (the same model and assign prompt, or the offline
// analyzer's own features), so it measures how consistently the taxonomy
// sorts runs it already holds, for that analyzer.
import { escapeHtml } from '../report/html-text.ts';
import type { HeldoutDocument, HeldoutFigures } from './heldout.ts';

/** One sentence per figure: what it measures, and for the method what it does not. */
export const HELDOUT_EXPLANATIONS = {
  sample: 'A stratified, seeded sample of the categorized runs (every category gets a run while the sample allows) was taken out of the final taxonomy and each run was assigned again without being told its category.',
  agreement: 'Agreement is the share of the sampled runs that were assigned back to the category they had.',
  kappa: "Cohen's kappa is that agreement corrected for what chance would give with the same category frequencies: 1 is full agreement, 0 is no more than chance.",
  none_fits: 'The none-fits rate is the share of the sampled runs for which no category of the taxonomy was judged to fit.',
  'assign-prompt': 'The model that built the taxonomy re-assigned the runs with the assign prompt, so this measures how consistently that model sorts runs into this taxonomy, not whether the categories are right.',
  'nearest-category': "The offline analyzer re-assigned each run to the category whose centroid is nearest in its own features, so this measures how well its categories hold together in those features, not whether a reader would sort the runs the same way.",
  off: 'The held-out agreement check was turned off in pipeline.yaml.',
} as const;

const pct = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(1)}%`);
const kappaText = (x: number | null) => (x === null ? 'n/a (chance alone gives full agreement, or no sample)' : x.toFixed(3));

/** The figures as report-data.json holds them: numbers, counts, the method, and the sentences (no per-run list). */
export interface HeldoutReportData {
  enabled: boolean;
  method: HeldoutFigures['method'] | null;
  analyzer: string | null;
  categorized_runs: number;
  sampled_runs: number;
  categories_sampled: number;
  categories: number;
  agreed: number;
  other_category: number;
  none_fits: number;
  unanswered: number;
  agreement: number | null;
  kappa: number | null;
  chance_agreement: number | null;
  none_fits_rate: number | null;
  settings: HeldoutFigures['settings'] | null;
  explanations: string[];
}

/** The sentences that go with the figures, in the order they are shown. */
export function heldoutExplanations(doc: HeldoutDocument): string[] {
  if (!doc.enabled) return [HELDOUT_EXPLANATIONS.off];
  const e = HELDOUT_EXPLANATIONS;
  return [e.sample, e.agreement, e.kappa, e.none_fits, e[doc.method]];
}

export function heldoutReportData(doc: HeldoutDocument): HeldoutReportData {
  if (!doc.enabled) {
    return {
      enabled: false, method: null, analyzer: null, categorized_runs: 0, sampled_runs: 0, categories_sampled: 0, categories: 0,
      agreed: 0, other_category: 0, none_fits: 0, unanswered: 0, agreement: null, kappa: null, chance_agreement: null, none_fits_rate: null,
      settings: null, explanations: heldoutExplanations(doc),
    };
  }
  return {
    enabled: true,
    method: doc.method,
    analyzer: doc.analyzer,
    categorized_runs: doc.categorized_runs,
    sampled_runs: doc.sampled_runs,
    categories_sampled: doc.categories_sampled,
    categories: doc.categories,
    agreed: doc.agreed,
    other_category: doc.other_category,
    none_fits: doc.none_fits,
    unanswered: doc.unanswered,
    agreement: doc.agreement,
    kappa: doc.kappa,
    chance_agreement: doc.chance_agreement,
    none_fits_rate: doc.none_fits_rate,
    settings: doc.settings,
    explanations: heldoutExplanations(doc),
  };
}

/** The rows of the figure's table: label, value, what it measures. */
function rows(doc: HeldoutFigures): [string, string, string][] {
  const e = HELDOUT_EXPLANATIONS;
  return [
    ['Sampled runs', `${doc.sampled_runs} of ${doc.categorized_runs} (${doc.categories_sampled} of ${doc.categories} categories)`, e.sample],
    ['Agreement', `${pct(doc.agreement)} (${doc.agreed} of ${doc.sampled_runs})`, e.agreement],
    ["Cohen's kappa", kappaText(doc.kappa), e.kappa],
    ['None fits', `${pct(doc.none_fits_rate)} (${doc.none_fits} of ${doc.sampled_runs})`, e.none_fits],
  ];
}

function methodLine(doc: HeldoutFigures): string {
  const how = doc.method === 'assign-prompt' ? 'with the assign prompt' : 'by the nearest-category rule';
  const rest = [
    doc.other_category ? `${doc.other_category} went to another category` : '',
    doc.unanswered ? `${doc.unanswered} got no valid answer` : '',
  ].filter(Boolean);
  return `Re-assigned ${how} by ${doc.analyzer}; sample: ${pct(doc.settings.fraction)} of the categorized runs, at most ${doc.settings.max_runs}, seed "${doc.settings.seed}".` +
    (rest.length ? ` Of the sampled runs, ${rest.join(' and ')}.` : '');
}

/** Markdown: a heading, a table (figure, value, what it measures), the method and what it does not measure. */
export function heldoutMarkdown(doc: HeldoutDocument, heading = '### Held-out agreement'): string {
  if (!doc.enabled) return `${heading}\n\n${HELDOUT_EXPLANATIONS.off}\n`;
  const cell = (s: string) => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [
    heading,
    '',
    '| Figure | Value | What it measures |',
    '|---|---|---|',
    ...rows(doc).map(([label, value, what]) => `| ${cell(label)} | ${cell(value)} | ${cell(what)} |`),
    '',
    `${methodLine(doc)} ${HELDOUT_EXPLANATIONS[doc.method]}`,
    '',
  ].join('\n');
}

/** HTML: a section with a table of the figures and the sentences; every text escaped. */
export function heldoutHtml(doc: HeldoutDocument, id = 'heldout'): string {
  const e = escapeHtml;
  const head = `<section id="${e(id)}" aria-labelledby="${e(id)}-h"><h3 id="${e(id)}-h">Held-out agreement</h3>`;
  if (!doc.enabled) return `${head}<p>${e(HELDOUT_EXPLANATIONS.off)}</p></section>`;
  const body = rows(doc).map(([label, value, what]) => `<tr><th scope="row">${e(label)}</th><td class="num">${e(value)}</td><td>${e(what)}</td></tr>`).join('');
  return (
    `${head}<table class="heldout"><thead><tr><th scope="col">Figure</th><th scope="col" class="num">Value</th><th scope="col">What it measures</th></tr></thead>` +
    `<tbody>${body}</tbody></table><p>${e(methodLine(doc))} ${e(HELDOUT_EXPLANATIONS[doc.method])}</p></section>`
  );
}
