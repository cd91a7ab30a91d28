// The HTML report's page model: the input it is given, and what the sections
// render from it, computed once (the report's stats, the distinct categories,
// the cluster groups, the referenced runs, severities and the explorer's facets).

import type { LedgerRun } from '../task-list/ledger.ts';
import { compareCodePoints } from '../util/order.ts';
import { normalizeSeverity, orderSeverities } from './html-severity.ts';
import type { ChangeSummary } from './changes.ts';
import type { ReportProvenance, RunCoverage } from './markdown.ts';
import type { QualityData } from './quality/compute.ts';
import { computeReportStats } from './stats.ts';
import type { ClusterStat, ReportStats } from './stats.ts';

// ---------------------------------------------------------------------------
// Input

export interface HtmlCategoryExample {
  /** The id used in prompts and answers. */
  id: string;
  run_id: string;
  trigger_phrase: string | null;
  justification: string | null;
  /** Whether the trigger phrase was found verbatim in the perturbed instruction. */
  trigger_phrase_verified: boolean;
}

export interface HtmlCategory {
  category_id: string;
  category_name: string;
  definition: string;
  examples: HtmlCategoryExample[];
}

export interface HtmlClusterMember {
  category_name: string;
  justification: string;
  category_definition?: string;
}

export interface HtmlCluster {
  cluster_id: string;
  cluster_name: string;
  definition: string;
  anchor_phrases: string;
  member_categories: HtmlClusterMember[];
}

/** A run as the drill-down shows it: the ledger's identity fields plus what the stages found. */
export interface HtmlRun extends Pick<LedgerRun, 'run_id' | 'agent' | 'domain' | 'task_id' | 'perturbed_id' | 'refinement_model'> {
  original_instruction: string;
  perturbed_instruction: string;
  summary: string;
  severity: string | null;
  score: number | null;
  strategy: string | null;
  /** The run's folder as shown; the pipeline gives it relative to the data root (e.g. "os/<task>/o4-mini-2025-04-16/..."). */
  run_folder: string;
  /**
   * Where "Open the run folder" points: a relative path (from the report's folder, e.g.
   * "../../../examples/perturbed_queries/os/...") or an absolute path (linked as a file:// URL);
   * null for no link. When absent, `run_folder` itself is linked as a relative path.
   */
  run_link?: string | null;
}

export interface HtmlReportInput {
  title: string;
  analysis: string;
  provenance?: ReportProvenance;
  coverage?: RunCoverage;
  clusters: HtmlCluster[];
  categories: HtmlCategory[];
  runs: Record<string, HtmlRun>;
  changes?: ChangeSummary | null;
  /** The quality section (comparison view next to the chart, the rest after coverage); none without it. */
  quality?: QualityData | null;
}

// ---------------------------------------------------------------------------
// The model of the page: stats plus lookups, computed once

export interface GroupModel {
  /** DOM id, e.g. `cluster-3`. */
  dom: string;
  rank: number | null;
  id: string;
  name: string;
  definition: string;
  anchors: string;
  /** Members in the stats order (largest first); `cat` indexes `categories`, -1 when unknown. */
  members: { cat: number; name: string; justification: string }[];
}

export interface Model {
  stats: ReportStats;
  /** Distinct categories (last entry of each name wins, as in the stats). */
  categories: HtmlCategory[];
  catIndex: Map<string, number>;
  groups: GroupModel[];
  /** Runs referenced by some example, sorted by run id. */
  runs: HtmlRun[];
  runIndex: Map<string, number>;
  severityOrder: (string | null)[];
  /** Whether any referenced run records a severity. */
  hasSeverity: boolean;
  /** Per cluster (stats order): perturbations per severity. */
  severityCounts: Map<string | null, number>[];
}

export function buildModel(input: HtmlReportInput): Model {
  const stats = computeReportStats(
    { categorization: { categories: input.categories } },
    {
      clusters: input.clusters.map((c) => ({
        cluster_name: c.cluster_name,
        definition: c.definition,
        anchor_phrases: c.anchor_phrases,
        member_categories: (c.member_categories ?? []).map((m) => ({
          category_name: m.category_name,
          category_definition: m.category_definition ?? '',
          justification: m.justification,
        })),
      })),
    },
  );

  const lastByName = new Map<string, HtmlCategory>();
  for (const c of input.categories) lastByName.set(c.category_name, c);
  const categories = [...lastByName.values()];
  const catIndex = new Map(categories.map((c, i) => [c.category_name, i]));

  const groups: GroupModel[] = stats.clusters.map((c: ClusterStat) => {
    const original = input.clusters[c.inputIndex] as HtmlCluster;
    return {
      dom: `cluster-${c.rank}`,
      rank: c.rank,
      id: original.cluster_id,
      name: c.name,
      definition: c.definition,
      anchors: c.anchorPhrases,
      members: c.members.map((m) => ({ cat: catIndex.get(m.name) ?? -1, name: m.name, justification: m.justification })),
    };
  });
  if (stats.unclustered.length) {
    groups.push({
      dom: 'cluster-none',
      rank: null,
      id: '',
      name: 'Categories in no cluster',
      definition: 'These categories are not listed by any cluster; their runs are shown here so that none is out of reach.',
      anchors: '',
      members: stats.unclustered.map((u) => ({ cat: catIndex.get(u.name) ?? -1, name: u.name, justification: '' })),
    });
  }

  const referenced = new Set<string>();
  for (const c of categories) for (const e of c.examples ?? []) referenced.add(e.run_id);
  const runs = [...referenced]
    .filter((id) => Object.prototype.hasOwnProperty.call(input.runs, id))
    .sort(compareCodePoints)
    .map((id) => input.runs[id] as HtmlRun);
  const runIndex = new Map(runs.map((r, i) => [r.run_id, i]));

  const severityOf = (runId: string): string | null => {
    const i = runIndex.get(runId);
    return i === undefined ? null : normalizeSeverity((runs[i] as HtmlRun).severity);
  };
  const hasSeverity = runs.some((r) => normalizeSeverity(r.severity) !== null);
  const severityCounts = stats.clusters.map((c) => {
    const counts = new Map<string | null, number>();
    for (const m of c.members) {
      for (const ex of m.examples as unknown as HtmlCategoryExample[]) {
        const s = severityOf(ex.run_id);
        counts.set(s, (counts.get(s) ?? 0) + 1);
      }
    }
    return counts;
  });
  const severityOrder = orderSeverities(severityCounts.flatMap((m) => [...m.keys()]).concat(runs.map((r) => normalizeSeverity(r.severity))));

  return { stats, categories, catIndex, groups, runs, runIndex, severityOrder, hasSeverity, severityCounts };
}

// ---------------------------------------------------------------------------
// Facets of the explorer

export interface Facets {
  domain: (string | null)[];
  refinement_model: (string | null)[];
  agent: (string | null)[];
  severity: (string | null)[];
}

export function facetValues(model: Model): Facets {
  const distinct = (pick: (r: HtmlRun) => string | null): (string | null)[] => {
    const set = new Set(model.runs.map(pick));
    const strings = [...set].filter((v): v is string => v !== null).sort(compareCodePoints);
    return set.has(null) ? [...strings, null] : strings;
  };
  const text = (v: unknown): string | null => (typeof v === 'string' && v !== '' ? v : null);
  return {
    domain: distinct((r) => text(r.domain)),
    refinement_model: distinct((r) => text(r.refinement_model)),
    agent: distinct((r) => text(r.agent)),
    severity: orderSeverities(model.runs.map((r) => normalizeSeverity(r.severity))),
  };
}
