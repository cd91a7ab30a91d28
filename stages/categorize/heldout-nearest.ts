// The offline analyzer's nearest-category rule, for the held-out check
// (categorize/heldout.ts): a run joins the category whose centroid is most
// similar to it, or none when even that one is farther than the categorizer's
// own linkage cut. The same features and weights as the offline
// categorization (offline/features.ts, CATEGORY_WEIGHTS); the TF-IDF corpus
// is built from every run, which uses no category. Pure and deterministic.
//
// It lives here, not under stages/offline/: every file there is part of the
// offline analyzer's version (analyzer.ts), which is written into
// categorization.json and clusters.json, and the check must leave those
// bytes as they were.
import type { CategorizeItem } from '../formats.ts';
import { sortItems } from '../offline/categorize.ts';
import { buildCorpus, itemAnalyzer, CATEGORY_WEIGHTS, centroid, cosine, itemVector } from '../offline/features.ts';
import type { SparseVector, VectorSource } from '../offline/features.ts';

/** The offline categorizer's default average-linkage cut (cosine distance; `threshold` in offline/categorize.ts), used as the farthest a category may be. */
export const NEAREST_MAX_DISTANCE = 0.6;

export interface NearestAnswer {
  id: string;
  /** The nearest category's name; null when none is within the cut. */
  category: string | null;
  /** Cosine similarity to the nearest category with members (0 when there is none). */
  similarity: number;
}

/**
 * Each of `runs` (item ids) against `categories`, given by name and the ids
 * of their members (the runs being placed must not be among them: the rule
 * sees no label). A category without members has no centroid and is never
 * chosen. Ties go to the category listed first.
 */
export function nearestCategories(
  items: readonly CategorizeItem[],
  categories: readonly { name: string; members: readonly string[] }[],
  runs: readonly string[],
  maxDistance = NEAREST_MAX_DISTANCE,
): NearestAnswer[] {
  // Only what a vector is made of is kept of each run (at 100,000 runs, every run's cues, spans and vector would be held at once).
  const analyze = itemAnalyzer();
  const sources = sortItems(items).map((item): VectorSource & { id: string } => {
    const { terms, familyScores, harmScores } = analyze(item);
    return { id: item.id, terms, familyScores, harmScores };
  });
  const corpus = buildCorpus(sources);
  const sourceOf = new Map(sources.map((s) => [s.id, s]));
  const vectorOf = (id: string): SparseVector | undefined => {
    const source = sourceOf.get(id);
    return source ? itemVector(source, corpus, CATEGORY_WEIGHTS) : undefined;
  };
  // A category's member vectors are made when its centroid is, then dropped.
  const centroids = categories.flatMap((c) => {
    const vectors = c.members.map(vectorOf).filter((v): v is SparseVector => v !== undefined);
    return vectors.length > 0 ? [{ name: c.name, centroid: centroid(vectors) }] : [];
  });
  return runs.map((id) => {
    const v = vectorOf(id) ?? new Map<string, number>();
    let best: string | null = null;
    let bestSim = 0;
    for (const c of centroids) {
      const sim = cosine(v, c.centroid);
      if (best === null || sim > bestSim) {
        best = c.name;
        bestSim = sim;
      }
    }
    return { id, category: best !== null && 1 - bestSim <= maxDistance ? best : null, similarity: best === null ? 0 : bestSim };
  });
}
