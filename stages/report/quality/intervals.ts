// Interval estimates for proportions and their differences. Pure arithmetic,
// no dependencies: the formulas are a few lines each.
//
// - Wilson's score interval for one proportion x/n (no continuity
//   correction): the set of p for which the normal score test of x/n against
//   p does not reject at the chosen level. Unlike the textbook "p ± z·SE"
//   interval it stays inside [0, 1] and does not collapse to a point at 0 or n.
// - Newcombe's hybrid score interval for p1 - p2 with independent samples
//   (method 10 in Newcombe 1998, "Interval estimation for the difference
//   between independent proportions: comparison of eleven methods",
//   Statistics in Medicine 17:873-890): each proportion's Wilson limits are
//   combined as D - sqrt((p1-l1)^2 + (u2-p2)^2) and D + sqrt((u1-p1)^2 + (p2-l2)^2).

/** The two-sided 95% normal quantile, z such that P(|Z| <= z) = 0.95. */
export const Z95 = 1.959963984540054;

export interface Interval {
  lower: number;
  upper: number;
}

/** Wilson's score interval for x successes out of n; null when n is 0 (no information). */
export function wilsonInterval(x: number, n: number, z = Z95): Interval | null {
  if (!Number.isInteger(x) || !Number.isInteger(n) || x < 0 || n < 0 || x > n) {
    throw new RangeError(`wilsonInterval: need integers 0 <= x <= n, got x=${x}, n=${n}`);
  }
  if (n === 0) return null;
  const p = x / n;
  const z2 = z * z;
  const denominator = 1 + z2 / n;
  const centre = (p + z2 / (2 * n)) / denominator;
  const half = (z / denominator) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  // At x = 0 and x = n the limit is exactly 0 or 1; rounding must not push it past.
  return {
    lower: x === 0 ? 0 : Math.max(0, centre - half),
    upper: x === n ? 1 : Math.min(1, centre + half),
  };
}

export interface DifferenceEstimate {
  /** p1 - p2. */
  difference: number;
  lower: number;
  upper: number;
  /** Whether the interval lies wholly above or below 0. */
  excludesZero: boolean;
}

/**
 * Newcombe's hybrid score interval (method 10) for p1 - p2, with p1 = x1/n1 and
 * p2 = x2/n2 from independent samples; null when either sample is empty.
 */
export function newcombeDifference(x1: number, n1: number, x2: number, n2: number, z = Z95): DifferenceEstimate | null {
  const w1 = wilsonInterval(x1, n1, z);
  const w2 = wilsonInterval(x2, n2, z);
  if (!w1 || !w2) return null;
  const p1 = x1 / n1;
  const p2 = x2 / n2;
  const d = p1 - p2;
  const lower = d - Math.sqrt((p1 - w1.lower) ** 2 + (w2.upper - p2) ** 2);
  const upper = d + Math.sqrt((w1.upper - p1) ** 2 + (p2 - w2.lower) ** 2);
  return {
    difference: d,
    lower: Math.max(-1, lower),
    upper: Math.min(1, upper),
    excludesZero: lower > 0 || upper < 0,
  };
}
