// The held-out agreement check: how consistently the final taxonomy sorts
// runs it already holds. A stratified, seeded sample of the categorized runs
// is taken out of the taxonomy (their examples removed), each run is
// re-assigned against what is left without being told its category (the
// assign prompt for a model, the nearest-category rule for the offline
// analyzer), and the re-assigned category is compared with the original:
// percent agreement, Cohen's kappa, and the share for which nothing fit.
//
// Pure: the sample, the statistic and heldout.json's shape (one zod schema,
// for the writer here and for the report that reads the file). The calls are
// made by categorize/heldout-check.ts; the report's fragments come from
// categorize/heldout-render.ts.
import { z } from 'zod';
import type { Category, CategorizeItem } from '../formats.ts';
import { stratifiedSample } from './assign.ts';
import type { HeldoutSettings } from './settings.ts';

export const HELDOUT_FILE = 'heldout.json';

/**
 * Runs in the sample: `fraction` of the population rounded up, at most
 * `maxRuns` (and never more than there are). The product is rounded to 9
 * places first, so that 110 x 0.1 (11.000000000000002 in floating point)
 * gives 11, not 12.
 */
export function heldoutSampleSize(population: number, fraction: number, maxRuns: number): number {
  if (population <= 0 || fraction <= 0 || maxRuns <= 0) return 0;
  const share = Math.ceil(Number((population * fraction).toFixed(9)));
  return Math.min(population, Math.floor(maxRuns), share);
}

/** A categorized run: the item the categorizer saw, its run id, and the name of the category holding it. */
export interface LabelledRun {
  item: CategorizeItem;
  runId: string;
  category: string;
}

/** The categorized runs with their category (the first category listing a run, as coverage counts it), in item order. */
export function labelledRuns(categories: readonly Category[], items: readonly CategorizeItem[], runIdOf: (itemId: string) => string): LabelledRun[] {
  const categoryOf = new Map<string, string>();
  for (const c of categories) for (const e of c.examples) if (!categoryOf.has(e.id)) categoryOf.set(e.id, c.category_name);
  return items.filter((i) => categoryOf.has(i.id)).map((item) => ({ item, runId: runIdOf(item.id), category: categoryOf.get(item.id) as string }));
}

/**
 * The held-out sample, in run-id order: stratified by category (every
 * category gets one run while the size allows, largest categories first; the
 * rest in proportion to what each has left), and within a category the runs
 * in the order of sha256(seed, run id). The same runs in the same categories
 * with the same settings give the same sample.
 */
export function heldoutSample(labelled: readonly LabelledRun[], s: Pick<HeldoutSettings, 'fraction' | 'max_runs' | 'seed'>): LabelledRun[] {
  const size = heldoutSampleSize(labelled.length, s.fraction, s.max_runs);
  const byItem = new Map(labelled.map((l) => [l.item.id, l]));
  const of = (item: CategorizeItem) => byItem.get(item.id) as LabelledRun;
  const { sample } = stratifiedSample(labelled.map((l) => l.item), size, (item) => ({ stratum: of(item).category, key: of(item).runId }), s.seed);
  return sample.map(of).sort((a, b) => (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0));
}

/** What the re-assignment said about one sampled run. */
export type Reassignment =
  | { outcome: 'category'; category: string }
  | { outcome: 'none_fits'; proposal: string | null }
  | { outcome: 'unanswered'; reason: string };

export interface KappaResult {
  /** Pairs compared. */
  n: number;
  /** Share of pairs with the same label (null without pairs). */
  observed: number | null;
  /** Share expected by chance from the two label frequencies: sum over labels of p(first) x p(second). */
  expected: number | null;
  /** (observed - expected) / (1 - expected); null without pairs, or when chance alone gives full agreement (expected = 1). */
  kappa: number | null;
}

/** Cohen's kappa of two labelings of the same items, given as [first, second] label pairs (nominal labels, unweighted). */
export function cohensKappa(pairs: readonly (readonly [string, string])[]): KappaResult {
  const n = pairs.length;
  if (n === 0) return { n, observed: null, expected: null, kappa: null };
  const first = new Map<string, number>();
  const second = new Map<string, number>();
  let same = 0;
  for (const [a, b] of pairs) {
    if (a === b) same += 1;
    first.set(a, (first.get(a) ?? 0) + 1);
    second.set(b, (second.get(b) ?? 0) + 1);
  }
  let expected = 0;
  for (const [label, k] of first) expected += (k / n) * ((second.get(label) ?? 0) / n);
  const observed = same / n;
  const kappa = 1 - expected < 1e-12 ? null : (observed - expected) / (1 - expected);
  return { n, observed, expected, kappa };
}

// ---------------------------------------------------------------------------
// heldout.json

const promptFile = z.object({ file: z.string(), sha256: z.string() });

const heldoutRun = z.object({
  run_id: z.string(),
  category_id: z.string(),
  category_name: z.string(),
  /** agreed: back in its category; other_category: in another one; none_fits: in none; unanswered: no valid answer. */
  outcome: z.enum(['agreed', 'other_category', 'none_fits', 'unanswered']),
  reassigned_category_id: z.string().nullable(),
  reassigned_category_name: z.string().nullable(),
  /** none_fits with a model: the category it proposed instead. */
  proposal: z.string().nullable(),
  /** unanswered: why. */
  reason: z.string().nullable(),
});

export type HeldoutRun = z.infer<typeof heldoutRun>;

export const HELDOUT_METHODS = ['assign-prompt', 'nearest-category'] as const;

const enabledDocument = z.object({
  enabled: z.literal(true),
  /** assign-prompt: a model with the assign prompt; nearest-category: the offline analyzer's rule. */
  method: z.enum(HELDOUT_METHODS),
  analyzer: z.string(),
  settings: z.object({ fraction: z.number(), max_runs: z.number(), seed: z.string() }),
  /** The assign prompt (assign-prompt only). */
  prompt: promptFile.nullable(),
  /** Runs in a category: what the sample is drawn from. */
  categorized_runs: z.number(),
  categories: z.number(),
  /** Categories with at least one sampled run. */
  categories_sampled: z.number(),
  sampled_runs: z.number(),
  /** Assign requests (assign-prompt; repairs not counted), 0 for nearest-category. */
  requests: z.number(),
  agreed: z.number(),
  other_category: z.number(),
  none_fits: z.number(),
  unanswered: z.number(),
  /** agreed / sampled_runs (null without a sample). */
  agreement: z.number().nullable(),
  /** none_fits / sampled_runs (null without a sample). */
  none_fits_rate: z.number().nullable(),
  /** Cohen's kappa of original vs re-assigned category; "none fits" and "no answer" are labels of their own. */
  kappa: z.number().nullable(),
  /** The agreement chance alone would give with these label frequencies (kappa's expected agreement). */
  chance_agreement: z.number().nullable(),
  runs: z.array(heldoutRun),
});

const disabledDocument = z.object({
  enabled: z.literal(false),
  reason: z.string(),
});

/** heldout.json in the categorize output: written by categorize, read (later) by report. */
export const heldoutDocument = z.discriminatedUnion('enabled', [enabledDocument, disabledDocument]);

export type HeldoutDocument = z.infer<typeof heldoutDocument>;
export type HeldoutFigures = z.infer<typeof enabledDocument>;

export const HELDOUT_OFF: HeldoutDocument = { enabled: false, reason: 'turned off in pipeline.yaml (stages.categorize.heldout.enabled: false)' };

/** Labels of the two kappa outcomes that are not a category (category ids never look like these). */
const NONE_FITS_LABEL = '(none fits)';
const NO_ANSWER_LABEL = '(no answer)';

export interface HeldoutInput {
  method: (typeof HELDOUT_METHODS)[number];
  analyzer: string;
  settings: HeldoutSettings;
  prompt: { file: string; sha256: string } | null;
  /** Every categorized run (the population). */
  labelled: readonly LabelledRun[];
  categories: number;
  sample: readonly LabelledRun[];
  /** Item id -> what the re-assignment said (a sampled run without an entry is unanswered). */
  reassigned: ReadonlyMap<string, Reassignment>;
  /** Category name -> its id in categorization.json. */
  idOf: (categoryName: string) => string;
  requests: number;
}

/** The figures of heldout.json from the sample and the re-assignment. */
export function heldoutFigures(h: HeldoutInput): HeldoutFigures {
  const runs: HeldoutRun[] = h.sample.map((l) => {
    const r: Reassignment = h.reassigned.get(l.item.id) ?? { outcome: 'unanswered', reason: 'no answer for this run' };
    const base = { run_id: l.runId, category_id: h.idOf(l.category), category_name: l.category };
    if (r.outcome === 'category') {
      const agreed = r.category === l.category;
      return { ...base, outcome: agreed ? 'agreed' : 'other_category', reassigned_category_id: h.idOf(r.category), reassigned_category_name: r.category, proposal: null, reason: null };
    }
    if (r.outcome === 'none_fits') return { ...base, outcome: 'none_fits', reassigned_category_id: null, reassigned_category_name: null, proposal: r.proposal, reason: null };
    return { ...base, outcome: 'unanswered', reassigned_category_id: null, reassigned_category_name: null, proposal: null, reason: r.reason };
  });
  const count = (o: HeldoutRun['outcome']) => runs.filter((r) => r.outcome === o).length;
  const n = runs.length;
  const k = cohensKappa(runs.map((r) => [r.category_id, r.reassigned_category_id ?? (r.outcome === 'none_fits' ? NONE_FITS_LABEL : NO_ANSWER_LABEL)] as const));
  return {
    enabled: true,
    method: h.method,
    analyzer: h.analyzer,
    settings: { fraction: h.settings.fraction, max_runs: h.settings.max_runs, seed: h.settings.seed },
    prompt: h.prompt,
    categorized_runs: h.labelled.length,
    categories: h.categories,
    categories_sampled: new Set(runs.map((r) => r.category_id)).size,
    sampled_runs: n,
    requests: h.requests,
    agreed: count('agreed'),
    other_category: count('other_category'),
    none_fits: count('none_fits'),
    unanswered: count('unanswered'),
    agreement: k.observed,
    none_fits_rate: n > 0 ? count('none_fits') / n : null,
    kappa: k.kappa,
    chance_agreement: k.expected,
    runs,
  };
}
