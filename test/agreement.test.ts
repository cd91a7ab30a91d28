// Adjusted Rand index against hand-computed values, and the seeded shuffle.
import { describe, expect, it } from 'vitest';
import { adjustedRandIndex, assignmentsOf, mulberry32, pairwiseAgreement, seededShuffle, seedOf } from '../stages/agreement.ts';

const labels = (values: (string | number)[], prefix = 'r') => new Map(values.map((v, i) => [`${prefix}${i}`, String(v)]));

describe('adjustedRandIndex', () => {
  it('is 1 for identical partitions, whatever the labels are called', () => {
    expect(adjustedRandIndex(labels([0, 0, 1, 1, 2]), labels([0, 0, 1, 1, 2]))).toBe(1);
    expect(adjustedRandIndex(labels(['a', 'a', 'b', 'b', 'c']), labels(['z', 'z', 'x', 'x', 'y']))).toBe(1);
  });

  it('matches hand computation: [0,0,1,1] vs [0,0,1,2] = 4/7', () => {
    // Contingency cells 2,1,1 -> index = C(2,2) = 1. Rows 2,2 -> 2 pairs; columns 2,1,1 -> 1 pair.
    // Expected = 2*1/C(4,2) = 1/3; max = (2+1)/2 = 3/2; ARI = (1 - 1/3) / (3/2 - 1/3) = 4/7.
    expect(adjustedRandIndex(labels([0, 0, 1, 1]), labels([0, 0, 1, 2]))).toBeCloseTo(4 / 7, 12);
  });

  it('is negative when worse than chance: [0,0,1,1] vs [0,1,0,1] = -1/2', () => {
    // All cells 1 -> index 0; rows and columns 2 pairs each; expected = 4/6; max = 2.
    expect(adjustedRandIndex(labels([0, 0, 1, 1]), labels([0, 1, 0, 1]))).toBeCloseTo(-0.5, 12);
  });

  it('a second example: 6 runs, [a,a,a,b,b,b] vs [a,a,b,b,c,c]', () => {
    // Cells: (a,a)=2, (a,b)=1, (b,b)=1, (b,c)=2 -> index = 1 + 1 = 2.
    // Rows 3,3 -> 3 + 3 = 6; columns 2,2,2 -> 3; C(6,2) = 15; expected = 18/15 = 1.2; max = 4.5.
    // ARI = (2 - 1.2) / (4.5 - 1.2) = 0.8 / 3.3 = 8/33.
    expect(adjustedRandIndex(labels(['a', 'a', 'a', 'b', 'b', 'b']), labels(['a', 'a', 'b', 'b', 'c', 'c']))).toBeCloseTo(8 / 33, 12);
  });

  it('trivial partitions: all-in-one vs all-apart is 0; the same trivial partition is 1', () => {
    expect(adjustedRandIndex(labels([0, 0, 0, 0]), labels([0, 1, 2, 3]))).toBe(0);
    expect(adjustedRandIndex(labels([0, 0, 0]), labels([5, 5, 5]))).toBe(1);
    expect(adjustedRandIndex(labels([0, 1, 2]), labels([2, 1, 0]))).toBe(1);
  });

  it('compares the common keys only, and is symmetric', () => {
    const a = new Map([
      ['x', '1'],
      ['y', '1'],
      ['z', '2'],
      ['only-a', '9'],
    ]);
    const b = new Map([
      ['x', 'p'],
      ['y', 'p'],
      ['z', 'q'],
      ['only-b', 'p'],
    ]);
    expect(adjustedRandIndex(a, b)).toBe(1);
    const c = labels([0, 0, 1, 1, 2, 2, 0]);
    const d = labels([0, 1, 1, 2, 2, 0, 0]);
    expect(adjustedRandIndex(c, d)).toBeCloseTo(adjustedRandIndex(d, c), 12);
    expect(adjustedRandIndex(new Map([['x', '1']]), new Map([['x', '2']]))).toBe(1);
  });

  it('pairwise agreement over several partitions; assignmentsOf reads a taxonomy', () => {
    const p = [labels([0, 0, 1, 1]), labels([0, 0, 1, 2]), labels([0, 0, 1, 1])];
    const s = pairwiseAgreement(p);
    expect(s.pairs.map((x) => [x.i, x.j])).toEqual([
      [0, 1],
      [0, 2],
      [1, 2],
    ]);
    expect(s.mean).toBeCloseTo((4 / 7 + 1 + 4 / 7) / 3, 12);
    expect(s.min).toBeCloseTo(4 / 7, 12);
    expect(s.max).toBe(1);
    expect(pairwiseAgreement([p[0]!])).toEqual({ pairs: [], mean: null, min: null, max: null });
    const ex = (id: string) => ({ id, trigger_phrase: null, justification: null });
    expect([...assignmentsOf([
      { category_name: 'A', definition: '', examples: [ex('1'), ex('2')] },
      { category_name: 'B', definition: '', examples: [ex('3'), ex('1')] },
    ])]).toEqual([
      ['1', 'A'],
      ['2', 'A'],
      ['3', 'B'],
    ]);
  });
});

describe('seededShuffle', () => {
  const items = Array.from({ length: 50 }, (_, i) => i);

  it('is a deterministic permutation that leaves the input alone', () => {
    const a = seededShuffle(items, 42);
    expect(seededShuffle(items, 42)).toEqual(a);
    expect([...a].sort((x, y) => x - y)).toEqual(items);
    expect(a).not.toEqual(items);
    expect(items[0]).toBe(0);
    expect(seededShuffle(items, 'run-1')).toEqual(seededShuffle(items, 'run-1'));
  });

  it('different seeds give different orders', () => {
    const orders = new Set([1, 2, 3, 4, 5, 'a', 'b'].map((s) => seededShuffle(items, s).join(',')));
    expect(orders.size).toBe(7);
  });

  it('mulberry32 is in [0, 1) and reproducible; string seeds are hashed to 32 bits', () => {
    const r = mulberry32(7);
    const values = Array.from({ length: 1000 }, () => r());
    expect(Math.min(...values)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...values)).toBeLessThan(1);
    const mean = values.reduce((s, v) => s + v, 0) / values.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
    const again = mulberry32(7);
    expect(again()).toBe(values[0]);
    expect(seedOf('abc')).toBe(seedOf('abc'));
    expect(seedOf('abc')).not.toBe(seedOf('abd'));
    expect(seedOf(-1)).toBe(4294967295);
  });

  it('handles empty and single-item lists', () => {
    expect(seededShuffle([], 1)).toEqual([]);
    expect(seededShuffle(['x'], 1)).toEqual(['x']);
  });
});
