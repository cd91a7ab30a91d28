// The report's quality section as data: prevalence with intervals, pairwise
// comparisons, summary health, category health, fallback placements and
// agreement figures. Pure: it takes what the report stage read and returns
// plain data (report-data.json's `quality`), rendered by markdown.ts and
// html.ts next to it. Every list is sorted, so equal inputs give equal bytes.
import { createHash } from 'node:crypto';
import { compareCodePoints } from '../../util/order.ts';
import { newcombeDifference, wilsonInterval } from './intervals.ts';
import { fallbackPlaced } from './placement.ts';
import type { UnclusteredEntry } from './placement.ts';
import { summaryIssue } from './summary-health.ts';
import type { SummaryIssue } from './summary-health.ts';
import { categoryHealth } from './category-health.ts';
import type { CategoryHealth } from './category-health.ts';
import { heldoutReportData } from '../../categorize/heldout-render.ts';
import type { HeldoutReportData } from '../../categorize/heldout-render.ts';
import type { HeldoutDocument } from '../../categorize/heldout.ts';

export const QUALITY_LEVEL = 0.95;

/** What the quality section reads of a run. */
export interface QualityRunInput {
  run_id: string;
  agent: string;
  refinement_model: string;
  domain: string;
  /** The summary's text when summarize finished the run, null when it did not (those runs are listed as failed elsewhere). */
  summary: string | null;
}

export interface QualityInput {
  runs: QualityRunInput[];
  categories: { category_id: string; category_name: string; definition: string; run_ids: string[] }[];
  clusters: { cluster_id: string; cluster_name: string; member_categories: { category_name: string }[] }[];
  unclustered_categories: UnclusteredEntry[];
  /** categorization.json's `metadata.stability` when `--stability` ran, else null. */
  stability: unknown;
  /** categorize's heldout.json (the held-out re-assignment), null when the categorization has none. */
  heldout: HeldoutDocument | null;
}

export type Dimension = 'all' | 'agent' | 'refinement_model' | 'domain';
export const DIMENSIONS: readonly Dimension[] = ['all', 'agent', 'refinement_model', 'domain'];
/** The dimensions whose values are compared pair by pair. */
export const COMPARED: readonly Dimension[] = ['agent', 'refinement_model'];

export interface Slice {
  dimension: Dimension;
  /** The agent, refinement model or domain; null for all runs. */
  value: string | null;
  /** Categorized runs in the slice: the denominator of every share in it. */
  runs: number;
}

export interface Prevalence {
  dimension: Dimension;
  value: string | null;
  count: number;
  /** count / runs of the slice; null when the slice has no categorized run. */
  share: number | null;
  lower: number | null;
  upper: number | null;
}

export interface PrevalenceRow {
  id: string;
  name: string;
  /** Clusters: formed by fallback (every member placed by fallback). Categories: placed by fallback. */
  fallback: boolean;
  /** One entry per slice, in the order of `slices`. */
  by: Prevalence[];
}

export interface DifferenceRow {
  id: string;
  name: string;
  fallback: boolean;
  count_a: number;
  count_b: number;
  share_a: number;
  share_b: number;
  /** share_a - share_b with its interval. */
  difference: number;
  lower: number;
  upper: number;
  excludes_zero: boolean;
}

export interface Comparison {
  dimension: Dimension;
  a: string;
  b: string;
  runs_a: number;
  runs_b: number;
  clusters: DifferenceRow[];
  categories: DifferenceRow[];
}

export interface SummaryHealth {
  /** Runs whose summary was checked (summarize finished them). */
  checked: number;
  flagged: ({ run_id: string } & SummaryIssue)[];
}

export interface Placement {
  categories: number;
  /** Categories placed in a cluster by the cluster model. */
  placed_by_model: number;
  /** Categories put in a cluster of their own by fallback, with the clusterer's reason. */
  placed_by_fallback: { category_name: string; reason: string; clusters: string[]; runs: number }[];
  /** Categories in no cluster at all. */
  in_no_cluster: { category_name: string; runs: number }[];
  /** Categorized runs whose category the model placed in a cluster. */
  runs_placed_by_model: number;
  categorized_runs: number;
}

export interface StabilityFigure {
  /** Categorizations compared: the output and its re-runs in other batch orders. */
  partitions: number;
  mean_ari: number | null;
  min_ari: number | null;
  max_ari: number | null;
}

export interface QualityData {
  level: number;
  methods: { share: string; difference: string };
  slices: Slice[];
  prevalence: { clusters: PrevalenceRow[]; categories: PrevalenceRow[] };
  comparisons: Comparison[];
  summary_health: SummaryHealth;
  category_health: CategoryHealth;
  placement: Placement;
  /**
   * How far the taxonomy agrees with itself. Each figure is null when it was not
   * measured; further agreement figures (e.g. a held-out re-assignment) belong here.
   */
  agreement: { stability: StabilityFigure | null; held_out: HeldoutReportData | null };
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;

interface Group {
  id: string;
  name: string;
  fallback: boolean;
  runs: Set<string>;
}

export function computeQuality(input: QualityInput): QualityData {
  const runById = new Map(input.runs.map((r) => [r.run_id, r]));
  const categorized = new Set<string>();
  for (const c of input.categories) for (const id of c.run_ids) if (runById.has(id)) categorized.add(id);

  const facet = (run: QualityRunInput, d: Dimension): string | null => (d === 'all' ? null : run[d]);
  const slices: Slice[] = [];
  const sliceRuns: Set<string>[] = [];
  for (const d of DIMENSIONS) {
    const values = d === 'all' ? [null] : [...new Set(input.runs.map((r) => r[d]))].sort(compareCodePoints);
    for (const value of values) {
      const members = new Set([...categorized].filter((id) => facet(runById.get(id) as QualityRunInput, d) === value));
      slices.push({ dimension: d, value, runs: members.size });
      sliceRuns.push(members);
    }
  }

  const fallback = fallbackPlaced(input);
  const fallbackNames = new Set(fallback.map((f) => f.category_name));
  const runsOfCategory = new Map<string, Set<string>>();
  for (const c of input.categories) {
    const set = runsOfCategory.get(c.category_name) ?? new Set<string>();
    for (const id of c.run_ids) if (runById.has(id)) set.add(id);
    runsOfCategory.set(c.category_name, set);
  }
  const categoryGroups: Group[] = input.categories.map((c) => ({
    id: c.category_id,
    name: c.category_name,
    fallback: fallbackNames.has(c.category_name),
    runs: new Set([...c.run_ids].filter((id) => runById.has(id))),
  }));
  const clusterGroups: Group[] = input.clusters.map((c) => ({
    id: c.cluster_id,
    name: c.cluster_name,
    fallback: c.member_categories.length > 0 && c.member_categories.every((m) => fallbackNames.has(m.category_name)),
    runs: new Set(c.member_categories.flatMap((m) => [...(runsOfCategory.get(m.category_name) ?? [])])),
  }));
  // Largest first (runs over all slices), ties by id.
  const bySize = (x: Group, y: Group) => y.runs.size - x.runs.size || compareCodePoints(x.id, y.id);
  categoryGroups.sort(bySize);
  clusterGroups.sort(bySize);

  const prevalenceOf = (g: Group): PrevalenceRow => ({
    id: g.id,
    name: g.name,
    fallback: g.fallback,
    by: slices.map((s, i) => {
      const n = s.runs;
      const x = [...g.runs].filter((id) => (sliceRuns[i] as Set<string>).has(id)).length;
      const w = wilsonInterval(x, n);
      return { dimension: s.dimension, value: s.value, count: x, share: n ? round(x / n) : null, lower: w ? round(w.lower) : null, upper: w ? round(w.upper) : null };
    }),
  });

  const comparisons: Comparison[] = [];
  for (const d of COMPARED) {
    const indices = slices.map((s, i) => (s.dimension === d ? i : -1)).filter((i) => i >= 0);
    for (let p = 0; p < indices.length; p++) {
      for (let q = p + 1; q < indices.length; q++) {
        const [i, j] = [indices[p] as number, indices[q] as number];
        const [A, B] = [sliceRuns[i] as Set<string>, sliceRuns[j] as Set<string>];
        if (!A.size || !B.size) continue;
        const rows = (groups: Group[]): DifferenceRow[] =>
          groups.map((g) => {
            const xa = [...g.runs].filter((id) => A.has(id)).length;
            const xb = [...g.runs].filter((id) => B.has(id)).length;
            const d = newcombeDifference(xa, A.size, xb, B.size);
            if (!d) throw new Error('quality: a compared slice is empty');
            return {
              id: g.id,
              name: g.name,
              fallback: g.fallback,
              count_a: xa,
              count_b: xb,
              share_a: round(xa / A.size),
              share_b: round(xb / B.size),
              difference: round(d.difference),
              lower: round(d.lower),
              upper: round(d.upper),
              excludes_zero: d.excludesZero,
            };
          });
        comparisons.push({
          dimension: d,
          a: slices[i]?.value as string,
          b: slices[j]?.value as string,
          runs_a: A.size,
          runs_b: B.size,
          clusters: rows(clusterGroups),
          categories: rows(categoryGroups),
        });
      }
    }
  }

  const flagged: SummaryHealth['flagged'] = [];
  // The runs, not their texts: a run's summary is read (decoded: report/run-details.ts) where it is used, never all at once.
  const checked = input.runs.filter((r) => r.summary !== null);
  // Runs by the digest of their normalized summary text: the texts themselves
  // (all the summaries again, lower-cased) would be held at once. UTF-16 code
  // units are hashed, so distinct texts (lone surrogates too) stay distinct.
  const textKey = (text: string): string | null => {
    const key = text.toLowerCase().replace(/\s+/g, ' ').trim();
    return key ? createHash('sha256').update(key, 'utf16le').digest('base64') : null;
  };
  const keys = checked.map((r) => textKey(r.summary as string));
  const seenText = new Map<string, string[]>();
  checked.forEach((r, i) => {
    const key = keys[i];
    if (key === null || key === undefined) return;
    const ids = seenText.get(key);
    if (ids) ids.push(r.run_id);
    else seenText.set(key, [r.run_id]);
  });
  for (const [i, r] of checked.entries()) {
    const key = keys[i];
    const twins = (key === null || key === undefined ? [] : (seenText.get(key) ?? [])).filter((id) => id !== r.run_id);
    const issue = summaryIssue(r.summary as string, twins.length);
    if (issue) flagged.push({ run_id: r.run_id, ...issue });
  }
  flagged.sort((x, y) => compareCodePoints(x.run_id, y.run_id));

  const clusteredNames = new Set(input.clusters.flatMap((c) => c.member_categories.map((m) => m.category_name)));
  const distinctNames = [...runsOfCategory.keys()];
  const placedByModel = distinctNames.filter((n) => clusteredNames.has(n) && !fallbackNames.has(n));
  const runsPlaced = new Set(placedByModel.flatMap((n) => [...(runsOfCategory.get(n) ?? [])]));

  return {
    level: QUALITY_LEVEL,
    methods: { share: 'wilson-score', difference: 'newcombe-hybrid-score' },
    slices,
    prevalence: { clusters: clusterGroups.map(prevalenceOf), categories: categoryGroups.map(prevalenceOf) },
    comparisons,
    summary_health: { checked: checked.length, flagged },
    category_health: categoryHealth(input.categories.map((c) => ({ id: c.category_id, name: c.category_name, definition: c.definition, runs: runsOfCategory.get(c.category_name)?.size ?? 0 }))),
    placement: {
      categories: distinctNames.length,
      placed_by_model: placedByModel.length,
      placed_by_fallback: fallback
        .filter((f) => runsOfCategory.has(f.category_name))
        .map((f) => ({ ...f, runs: runsOfCategory.get(f.category_name)?.size ?? 0 }))
        .sort((x, y) => compareCodePoints(x.category_name, y.category_name)),
      in_no_cluster: distinctNames
        .filter((n) => !clusteredNames.has(n))
        .sort(compareCodePoints)
        .map((n) => ({ category_name: n, runs: runsOfCategory.get(n)?.size ?? 0 })),
      runs_placed_by_model: runsPlaced.size,
      categorized_runs: categorized.size,
    },
    agreement: { stability: stabilityOf(input.stability), held_out: input.heldout ? heldoutReportData(input.heldout) : null },
  };
}

/** The ARI summary of `--stability` from categorization.json's metadata, when it ran. */
export function stabilityOf(raw: unknown): StabilityFigure | null {
  if (raw === null || typeof raw !== 'object') return null;
  const r = raw as { runs?: unknown; adjusted_rand_index?: { mean?: unknown; min?: unknown; max?: unknown } };
  const ari = r.adjusted_rand_index;
  if (typeof r.runs !== 'number' || !ari || typeof ari !== 'object') return null;
  const n = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? round(v) : null);
  return { partitions: r.runs, mean_ari: n(ari.mean), min_ari: n(ari.min), max_ari: n(ari.max) };
}
