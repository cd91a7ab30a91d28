// Which categories a clusters file placed by fallback. The LLM clusterer puts a
// category the model never placed into a cluster of its own and lists it in
// `unclustered_categories` with the reason (stages/cluster/llm.ts); the stage
// adds categories no cluster names. So a listed category that a cluster does
// name was placed by fallback, and one that no cluster names is in no cluster.
// Derived from clusters.json as it is: the file needs no new field.

export interface UnclusteredEntry {
  category_name: string;
  reason: string;
}

export interface ClustersForPlacement {
  clusters: { cluster_name: string; cluster_id?: string; member_categories: { category_name: string }[] }[];
  unclustered_categories?: UnclusteredEntry[];
}

export interface FallbackPlacement {
  category_name: string;
  reason: string;
  /** The clusters (by name, in file order) that list it: its own, normally. */
  clusters: string[];
}

/** Categories listed as unclustered that a cluster names anyway: placed by fallback, not by the model. */
export function fallbackPlaced(clu: ClustersForPlacement): FallbackPlacement[] {
  const out: FallbackPlacement[] = [];
  const seen = new Set<string>();
  for (const u of clu.unclustered_categories ?? []) {
    if (seen.has(u.category_name)) continue;
    const clusters = clu.clusters.filter((c) => (c.member_categories ?? []).some((m) => m.category_name === u.category_name)).map((c) => c.cluster_name);
    if (!clusters.length) continue;
    seen.add(u.category_name);
    out.push({ category_name: u.category_name, reason: u.reason, clusters });
  }
  return out;
}

/** Names of the clusters whose every member was placed by fallback (clusters the model never formed). */
export function fallbackClusters(clu: ClustersForPlacement): Set<string> {
  const fallback = new Set(fallbackPlaced(clu).map((f) => f.category_name));
  return new Set(
    clu.clusters
      .filter((c) => (c.member_categories ?? []).length > 0 && c.member_categories.every((m) => fallback.has(m.category_name)))
      .map((c) => c.cluster_name),
  );
}
