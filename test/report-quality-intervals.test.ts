// The interval formulas of the report's quality section against the worked
// examples published with them. Each expected value below was recomputed from
// the formulas by hand (z = 1.959964) and agrees with the published table to
// the 4 decimals printed there.
//
// Sources:
// - Wilson score interval (no continuity correction): R. G. Newcombe (1998),
//   "Two-sided confidence intervals for the single proportion: comparison of
//   seven methods", Statistics in Medicine 17:857-872, Table I, method 3.
// - Hybrid score interval for a difference of independent proportions:
//   R. G. Newcombe (1998), "Interval estimation for the difference between
//   independent proportions: comparison of eleven methods", Statistics in
//   Medicine 17:873-890, Table II, method 10.
import { describe, expect, it } from 'vitest';
import { newcombeDifference, wilsonInterval, Z95 } from '../stages/report/quality/intervals.ts';

const at4 = (x: number) => Number(x.toFixed(4));

describe('wilsonInterval', () => {
  it.each([
    // x, n, lower, upper (Newcombe 1998a, Table I, method 3)
    [81, 263, 0.2553, 0.3662],
    [15, 148, 0.0624, 0.1605],
    [0, 20, 0, 0.1611],
    [1, 29, 0.0061, 0.1718],
  ])('%i/%i -> %f to %f', (x, n, lower, upper) => {
    const i = wilsonInterval(x, n);
    expect(i).not.toBeNull();
    expect(at4(i!.lower)).toBe(lower);
    expect(at4(i!.upper)).toBe(upper);
  });

  it('is exactly 0 or 1 at the ends and symmetric under x -> n - x', () => {
    expect(wilsonInterval(0, 7)!.lower).toBe(0);
    expect(wilsonInterval(7, 7)!.upper).toBe(1);
    const a = wilsonInterval(3, 11)!;
    const b = wilsonInterval(8, 11)!;
    expect(a.lower).toBeCloseTo(1 - b.upper, 12);
    expect(a.upper).toBeCloseTo(1 - b.lower, 12);
  });

  it('always contains the observed share and narrows as n grows', () => {
    for (const n of [1, 2, 5, 17, 100]) {
      for (let x = 0; x <= n; x++) {
        const i = wilsonInterval(x, n)!;
        expect(i.lower).toBeLessThanOrEqual(x / n);
        expect(i.upper).toBeGreaterThanOrEqual(x / n);
      }
    }
    const small = wilsonInterval(5, 10)!;
    const large = wilsonInterval(50, 100)!;
    expect(large.upper - large.lower).toBeLessThan(small.upper - small.lower);
  });

  it('has no interval without observations and refuses impossible counts', () => {
    expect(wilsonInterval(0, 0)).toBeNull();
    expect(() => wilsonInterval(3, 2)).toThrow(RangeError);
    expect(() => wilsonInterval(-1, 2)).toThrow(RangeError);
    expect(() => wilsonInterval(1.5, 2)).toThrow(RangeError);
  });

  it('uses the two-sided 95% normal quantile', () => {
    expect(Z95).toBeCloseTo(1.96, 2);
  });
});

describe('newcombeDifference (hybrid score, method 10)', () => {
  it.each([
    // x1, n1, x2, n2, lower, upper (Newcombe 1998b, Table II, method 10)
    [56, 70, 48, 80, 0.0524, 0.3339],
    [9, 10, 3, 10, 0.1705, 0.809],
    [6, 7, 2, 7, 0.0582, 0.8062],
    [5, 56, 0, 29, -0.0381, 0.1926],
    [0, 10, 0, 20, -0.1611, 0.2775],
    [10, 10, 0, 20, 0.6791, 1],
  ])('%i/%i - %i/%i -> %f to %f', (x1, n1, x2, n2, lower, upper) => {
    const d = newcombeDifference(x1, n1, x2, n2)!;
    expect(d.difference).toBeCloseTo(x1 / n1 - x2 / n2, 12);
    expect(at4(d.lower)).toBe(lower);
    expect(at4(d.upper)).toBe(upper);
    expect(d.excludesZero).toBe(lower > 0 || upper < 0);
  });

  it('mirrors when the samples swap', () => {
    const ab = newcombeDifference(12, 40, 5, 33)!;
    const ba = newcombeDifference(5, 33, 12, 40)!;
    expect(ba.difference).toBeCloseTo(-ab.difference, 12);
    expect(ba.lower).toBeCloseTo(-ab.upper, 12);
    expect(ba.upper).toBeCloseTo(-ab.lower, 12);
  });

  it('has no interval when a sample is empty', () => {
    expect(newcombeDifference(0, 0, 1, 3)).toBeNull();
    expect(newcombeDifference(1, 3, 0, 0)).toBeNull();
  });
});
