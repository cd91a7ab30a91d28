// Agreement between two labelings of the same items, given as parallel arrays.
import { adjustedRandIndex as ariOfMaps } from '../agreement.ts';

/**
 * Adjusted Rand index (Hubert & Arabie) between two labelings, given as
 * parallel arrays of labels. 1 = identical partitions, about 0 = chance.
 */
export function adjustedRandIndex(a: readonly string[], b: readonly string[]): number {
  if (a.length !== b.length) throw new Error(`adjustedRandIndex: ${a.length} vs ${b.length} labels`);
  const byIndex = (labels: readonly string[]) => new Map(labels.map((l, i) => [String(i), l]));
  return ariOfMaps(byIndex(a), byIndex(b));
}
