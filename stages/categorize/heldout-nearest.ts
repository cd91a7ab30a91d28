// The offline analyzer's nearest-category rule, for the held-out check
// (categorize/heldout.ts): a run joins the category whose centroid is most
// similar to it, or none when even that one is farther than the categorizer's
// own linkage cut. The vectors are the offline categorization's own
// (offline/categorize.ts categoryVectors: made once per items array, so a
// categorization that ran in this process is not analysed again); the TF-IDF
// corpus is built from every run, which uses no category. Deterministic.
//
// It lives here, not under stages/offline/: every file there is part of the
// offline analyzer's version (analyzer.ts), which is written into
// categorization.json and clusters.json, and the check must leave those
// bytes as they were.
import type { CategorizeItem } from '../formats.ts';
import { categoryVectors } from '../offline/categorize.ts';
import { packedCentroidVector, packedCosine } from '../offline/features.ts';
import type { PackedVector } from '../offline/features.ts';

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
  // The categorizer's own vectors when it ran in this process (offline/categorize.ts categoryVectors).
  const { byId, keys } = categoryVectors(items);
  // A category's member vectors are gathered when its centroid is made.
  const centroids = categories.flatMap((c) => {
    const vectors = c.members.map((id) => byId.get(id)).filter((v): v is PackedVector => v !== undefined);
    return vectors.length > 0 ? [{ name: c.name, centroid: packedCentroidVector(vectors, keys.length) }] : [];
  });
  return runs.map((id) => {
    const v = byId.get(id);
    let best: string | null = null;
    let bestSim = 0;
    for (const c of centroids) {
      // A run with no vector is as far from every category as an empty vector (similarity 0).
      const sim = v ? packedCosine(v, c.centroid) : 0;
      if (best === null || sim > bestSim) {
        best = c.name;
        bestSim = sim;
      }
    }
    return { id, category: best !== null && 1 - bestSim <= maxDistance ? best : null, similarity: best === null ? 0 : bestSim };
  });
}
