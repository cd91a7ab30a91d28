// The cluster-report numbers as one plain JSON object: what a reader of
// reference-format files (categorization + clusters) would compute and print.
// Used to import reference results and to compare our numbers with other
// scripts. Percent strings are the exact strings the reference prints ('.1f');
// the raw float is kept too so callers can round their own way.

import { computeReportStats, cutName } from './stats.ts';
import type { CategorizationDocument, ClustersDocument } from './stats.ts';

export interface ReferenceCategoryCount {
  category_name: string;
  perturbations: number;
}

export interface ReferenceClusterRow {
  rank: number;
  /** Position of the cluster in the clusters file. */
  input_index: number;
  cluster_name: string;
  /** The name as shown in the summary table (cut to 50 code points + '...'). */
  table_name: string;
  /** Member entries as listed, unknown and repeated names included. */
  member_entries: number;
  perturbations: number;
  percent: number;
  percent_text: string;
  /** Members by example count, descending (ties in listed order). */
  members: ReferenceCategoryCount[];
}

export interface ReferenceCumulativeRow {
  top_n: number;
  member_entries: number;
  perturbations: number;
  percent: number;
  percent_text: string;
}

export interface ReferenceReportStatistics {
  total_categories: number;
  total_perturbations: number;
  cluster_count: number;
  clusters: ReferenceClusterRow[];
  unclustered: ReferenceCategoryCount[];
  cumulative: ReferenceCumulativeRow[];
}

export function referenceReportStatistics(
  categorization: CategorizationDocument,
  clusters: ClustersDocument,
): ReferenceReportStatistics {
  const stats = computeReportStats(categorization, clusters);
  return {
    total_categories: stats.totalCategories,
    total_perturbations: stats.totalPerturbations,
    cluster_count: stats.clusterCount,
    clusters: stats.clusters.map((c) => ({
      rank: c.rank,
      input_index: c.inputIndex,
      cluster_name: c.name,
      table_name: cutName(c.name),
      member_entries: c.memberEntries,
      perturbations: c.perturbations,
      percent: c.percent,
      percent_text: c.percentText,
      members: c.members.map((m) => ({ category_name: m.name, perturbations: m.perturbations })),
    })),
    unclustered: stats.unclustered.map((u) => ({ category_name: u.name, perturbations: u.perturbations })),
    cumulative: stats.cumulative.map((r) => ({
      top_n: r.topN,
      member_entries: r.memberEntries,
      perturbations: r.perturbations,
      percent: r.percent,
      percent_text: r.percentText,
    })),
  };
}
