// Number formatting that prints the same strings as Python.
//
// Files and reports written by the reference pipeline were produced by Python's
// fixed-point formatting ('%.1f' % x, f'{x:.2f}'). Python rounds the exact binary
// value of the double, with exact ties going to the even digit. JavaScript's
// Number.prototype.toFixed does not (1/16*100 is 6.25 exactly; Python prints
// '6.2', toFixed(1) prints '6.3'), so we compute the digits ourselves from the
// IEEE-754 bits with BigInt arithmetic, which is exact for every finite double.

const FRACTION_BITS = 52n;
const FRACTION_MASK = (1n << FRACTION_BITS) - 1n;

interface DecomposedDouble {
  negative: boolean;
  /** Integer significand (0 for zero). */
  significand: bigint;
  /** Power of two: value = significand * 2^exponent. */
  exponent: number;
}

function decompose(x: number): DecomposedDouble {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const negative = bits >> 63n === 1n;
  const biased = Number((bits >> FRACTION_BITS) & 0x7ffn);
  const fraction = bits & FRACTION_MASK;
  if (biased === 0) {
    // Zero or subnormal: no implicit leading one.
    return { negative, significand: fraction, exponent: -1074 };
  }
  return { negative, significand: fraction | (1n << FRACTION_BITS), exponent: biased - 1075 };
}

/**
 * Format `x` with exactly `digits` digits after the decimal point, as Python's
 * `'%.<digits>f' % x` (and `format(x, '.<digits>f')`) does:
 * - the exact decimal value of the double is rounded half to even,
 * - the sign is kept for negative zero and for negatives that round to zero
 *   (`-0.04` -> `'-0.0'`),
 * - no decimal point when `digits` is 0,
 * - `nan`, `inf`, `-inf` for non-finite values (NaN never gets a sign).
 */
export function formatFixed(x: number, digits: number): string {
  if (!Number.isSafeInteger(digits) || digits < 0) {
    throw new RangeError(`formatFixed: digits must be a non-negative integer, got ${String(digits)}`);
  }
  if (Number.isNaN(x)) return 'nan';
  if (x === Infinity) return 'inf';
  if (x === -Infinity) return '-inf';

  const { negative, significand, exponent } = decompose(x);
  const scaled = significand * 10n ** BigInt(digits);
  let units: bigint;
  if (exponent >= 0) {
    units = scaled << BigInt(exponent);
  } else {
    const denominator = 1n << BigInt(-exponent);
    units = scaled / denominator;
    const twiceRemainder = (scaled % denominator) * 2n;
    if (twiceRemainder > denominator || (twiceRemainder === denominator && units % 2n === 1n)) {
      units += 1n;
    }
  }

  let text = units.toString();
  if (digits > 0) {
    text = text.padStart(digits + 1, '0');
    text = `${text.slice(0, text.length - digits)}.${text.slice(text.length - digits)}`;
  }
  return negative ? `-${text}` : text;
}

/** A percentage as the reference prints it: `formatFixed(x, 1)`, without the `%` sign. */
export function formatPercent1(x: number): string {
  return formatFixed(x, 1);
}

/** The same with the sign, as the reports show it: `6.2%`. */
export function pct(x: number): string {
  return `${formatPercent1(x)}%`;
}

/**
 * A cost in US dollars as the reference clustering step stores it in
 * `statistics.cost`: `$` followed by 4 decimals below 0.01, 3 decimals below 1,
 * otherwise 2 (`$0.0123`, `$0.456`, `$1.23`). The thresholds compare the raw
 * value, so 0.00999 prints `$0.0100`; negatives take the 4-decimal branch.
 */
export function formatDollars(cost: number): string {
  if (cost < 0.01) return `$${formatFixed(cost, 4)}`;
  if (cost < 1) return `$${formatFixed(cost, 3)}`;
  return `$${formatFixed(cost, 2)}`;
}
