// How much two partitions of the same runs agree, and a seeded shuffle: the
// tools to measure how much an iterative taxonomy depends on the order in
// which batches are sent (categorize k times with shuffled order, compare the
// run -> category assignments pairwise).
import type { Category } from './formats.ts';

function pairs(n: number): number {
  return (n * (n - 1)) / 2;
}

/**
 * Adjusted Rand index of two labelings (item -> label), over the items both
 * contain. 1 means the same partition (labels may differ), about 0 what chance
 * gives, negative less than chance. Fewer than two common items, or two
 * partitions that are both trivial in the same way, count as identical (1).
 */
export function adjustedRandIndex(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): number {
  const contingency = new Map<string, number>();
  const rows = new Map<string, number>();
  const cols = new Map<string, number>();
  let n = 0;
  for (const [item, la] of a) {
    const lb = b.get(item);
    if (lb === undefined) continue;
    n += 1;
    const cell = JSON.stringify([la, lb]);
    contingency.set(cell, (contingency.get(cell) ?? 0) + 1);
    rows.set(la, (rows.get(la) ?? 0) + 1);
    cols.set(lb, (cols.get(lb) ?? 0) + 1);
  }
  if (n < 2) return 1;
  let index = 0;
  for (const c of contingency.values()) index += pairs(c);
  let sumA = 0;
  for (const c of rows.values()) sumA += pairs(c);
  let sumB = 0;
  for (const c of cols.values()) sumB += pairs(c);
  const expected = (sumA * sumB) / pairs(n);
  const max = (sumA + sumB) / 2;
  if (max === expected) return index === max ? 1 : 0;
  return (index - expected) / (max - expected);
}

/** run id -> category name, from a taxonomy (first category wins for a repeated id). */
export function assignmentsOf(categories: readonly Category[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of categories) for (const e of c.examples) if (!out.has(e.id)) out.set(e.id, c.category_name);
  return out;
}

export interface AgreementSummary {
  /** ARI of every pair (i < j), in order (0,1), (0,2), ..., (1,2), ... */
  pairs: { i: number; j: number; ari: number }[];
  /** Mean, min and max over the pairs; null with fewer than two partitions. */
  mean: number | null;
  min: number | null;
  max: number | null;
}

/** Pairwise adjusted Rand index of several labelings of the same runs. */
export function pairwiseAgreement(partitions: readonly ReadonlyMap<string, string>[]): AgreementSummary {
  const out: { i: number; j: number; ari: number }[] = [];
  for (let i = 0; i < partitions.length; i++) {
    for (let j = i + 1; j < partitions.length; j++) out.push({ i, j, ari: adjustedRandIndex(partitions[i]!, partitions[j]!) });
  }
  if (out.length === 0) return { pairs: out, mean: null, min: null, max: null };
  const values = out.map((p) => p.ari);
  return {
    pairs: out,
    mean: values.reduce((s, v) => s + v, 0) / values.length,
    min: Math.min(...values),
    max: Math.max(...values),
  };
}

/** 32-bit seed from a number or a string (FNV-1a for strings). */
export function seedOf(seed: number | string): number {
  if (typeof seed === 'number') return seed >>> 0;
  let h = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) {
    h ^= seed.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32: a small deterministic PRNG returning numbers in [0, 1). */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A copy of `items` in an order fixed by `seed` (Fisher-Yates over mulberry32). */
export function seededShuffle<T>(items: readonly T[], seed: number | string): T[] {
  const out = [...items];
  const random = mulberry32(seedOf(seed));
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    const tmp = out[i] as T;
    out[i] = out[j] as T;
    out[j] = tmp;
  }
  return out;
}
