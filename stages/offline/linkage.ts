// Agglomerative clustering with average linkage over a precomputed distance
// matrix. Each step merges the closest pair of clusters; ties go to the pair
// with the smallest (lower index, higher index), where a merged cluster keeps
// the lower index. Merging stops when the closest pair is farther apart than
// `threshold`, or when only `minClusters` clusters are left.
//
// Average linkage is "reducible" (a merged cluster is never closer to a third
// cluster than the nearer of its two parts), so each row's cached nearest
// neighbour stays valid unless it pointed at one of the merged clusters; that
// keeps the whole run at about O(n^2) for typical inputs.

export interface LinkageOptions {
  /** Largest average distance at which two clusters may still merge. */
  threshold: number;
  /** Never merge below this many clusters (default 1). */
  minClusters?: number;
  /** Optional veto: return false to forbid merging two clusters (given their member indices). */
  canMerge?: (a: readonly number[], b: readonly number[]) => boolean;
}

/**
 * Clusters `n` points given `distance(i, j)` (symmetric, i != j).
 * Returns clusters as ascending index lists, ordered by their smallest index.
 */
export function averageLinkage(
  n: number,
  distance: (i: number, j: number) => number,
  opts: LinkageOptions,
): number[][] {
  // The distances above the diagonal, row by row (half of an n x n matrix: 64 MiB at 4,000 points).
  const d = new Float64Array((n * (n - 1)) / 2);
  for (let i = 0, k = 0; i < n; i++) for (let j = i + 1; j < n; j++) d[k++] = distance(i, j);
  return averageLinkageOf(n, d, opts);
}

/**
 * `averageLinkage` of the distances `d` holds above the diagonal, row by row:
 * (0,1) … (0,n-1), (1,2) … (n-2,n-1). `d` is updated in place.
 */
export function averageLinkageOf(n: number, d: Float64Array, opts: LinkageOptions): number[][] {
  if (d.length !== (n * (n - 1)) / 2) throw new Error(`averageLinkageOf: ${d.length} distances for ${n} points`);
  const minClusters = Math.max(1, opts.minClusters ?? 1);
  const rowStart = (i: number): number => (i * (2 * n - i - 1)) / 2 - i - 1;
  const at = (i: number, j: number): number => (i < j ? rowStart(i) + j : rowStart(j) + i);
  const members: number[][] = Array.from({ length: n }, (_, i) => [i]);
  const active = new Uint8Array(n).fill(1);
  const blocked = new Set<number>(); // pair keys i*n+j (i<j) vetoed by canMerge
  const nnIdx = new Int32Array(n).fill(-1);
  const nnDist = new Float64Array(n).fill(Infinity);

  const pairKey = (i: number, j: number): number => (i < j ? i * n + j : j * n + i);
  // Row i's nearest active, unblocked neighbour (the first of the nearest).
  // Its distances lie in column i above the diagonal, then in row i.
  const recompute = (i: number): void => {
    let best = -1;
    let bestD = Infinity;
    const open = blocked.size === 0;
    const consider = (j: number, k: number): void => {
      if (!active[j] || (!open && blocked.has(pairKey(i, j)))) return;
      const v = d[k] as number;
      if (v < bestD) {
        bestD = v;
        best = j;
      }
    };
    for (let j = 0, k = i - 1; j < i; k += n - j - 2, j++) consider(j, k);
    for (let j = i + 1, k = rowStart(i) + i + 1; j < n; j++, k++) consider(j, k);
    nnIdx[i] = best;
    nnDist[i] = bestD;
  };
  for (let i = 0; i < n; i++) recompute(i);

  let count = n;
  while (count > minClusters) {
    // Closest pair; ties: smallest lower index, then smallest higher index.
    let bi = -1;
    let bj = -1;
    let bd = Infinity;
    for (let i = 0; i < n; i++) {
      const j = nnIdx[i] ?? -1;
      if (!active[i] || j < 0) continue;
      const v = nnDist[i] ?? Infinity;
      const lo = Math.min(i, j);
      const hi = Math.max(i, j);
      if (v < bd || (v === bd && (lo < bi || (lo === bi && hi < bj)))) {
        bd = v;
        bi = lo;
        bj = hi;
      }
    }
    if (bi < 0 || bd > opts.threshold) break;
    const mi = members[bi] ?? [];
    const mj = members[bj] ?? [];
    if (opts.canMerge && !opts.canMerge(mi, mj)) {
      blocked.add(pairKey(bi, bj));
      recompute(bi);
      recompute(bj);
      continue;
    }
    // Merge bj into bi (Lance-Williams update for average linkage).
    const ni = mi.length;
    const nj = mj.length;
    for (let k = 0; k < n; k++) {
      if (!active[k] || k === bi || k === bj) continue;
      d[at(bi, k)] = ((d[at(bi, k)] ?? 0) * ni + (d[at(bj, k)] ?? 0) * nj) / (ni + nj);
    }
    members[bi] = [...mi, ...mj].sort((x, y) => x - y);
    members[bj] = [];
    active[bj] = 0;
    count--;
    for (const key of [...blocked]) {
      const a = Math.floor(key / n);
      const b = key % n;
      if (a === bj || b === bj || a === bi || b === bi) blocked.delete(key);
    }
    recompute(bi);
    for (let k = 0; k < n; k++) {
      if (!active[k] || k === bi) continue;
      if (nnIdx[k] === bi || nnIdx[k] === bj) recompute(k);
      else {
        const v = d[at(k, bi)] ?? Infinity;
        if (!blocked.has(pairKey(k, bi)) && (v < (nnDist[k] ?? Infinity) || (v === nnDist[k] && bi < (nnIdx[k] ?? n)))) {
          nnIdx[k] = bi;
          nnDist[k] = v;
        }
      }
    }
  }
  const out: number[][] = [];
  for (let i = 0; i < n; i++) if (active[i]) out.push(members[i] ?? [i]);
  return out;
}
