// Agreement between two labelings of the same items.

/**
 * Adjusted Rand index (Hubert & Arabie) between two labelings, given as
 * parallel arrays of labels. 1 = identical partitions, about 0 = chance.
 */
export function adjustedRandIndex(a: readonly string[], b: readonly string[]): number {
  if (a.length !== b.length) throw new Error(`adjustedRandIndex: ${a.length} vs ${b.length} labels`);
  const n = a.length;
  if (n < 2) return 1;
  const pairs = (k: number): number => (k * (k - 1)) / 2;
  const cell = new Map<string, number>();
  const rows = new Map<string, number>();
  const cols = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    const x = a[i] ?? '';
    const y = b[i] ?? '';
    const key = `${x}\u0000${y}`;
    cell.set(key, (cell.get(key) ?? 0) + 1);
    rows.set(x, (rows.get(x) ?? 0) + 1);
    cols.set(y, (cols.get(y) ?? 0) + 1);
  }
  let index = 0;
  for (const c of cell.values()) index += pairs(c);
  let sumA = 0;
  for (const c of rows.values()) sumA += pairs(c);
  let sumB = 0;
  for (const c of cols.values()) sumB += pairs(c);
  const expected = (sumA * sumB) / pairs(n);
  const max = (sumA + sumB) / 2;
  if (max === expected) return 1;
  return (index - expected) / (max - expected);
}
