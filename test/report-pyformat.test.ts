import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { formatDollars, formatFixed, formatPercent1 } from '../stages/util/pyformat.ts';

// Strings recorded from CPython 3.11 by test/fixtures/report/make-pyformat-golden.py.
interface PyGolden {
  fixed: [string, number, string][];
  dollars: [string, string][];
}
const golden = JSON.parse(
  readFileSync(new URL('./fixtures/report/pyformat-golden.json', import.meta.url), 'utf8'),
) as PyGolden;

function parsePyFloat(repr: string): number {
  if (repr === 'nan') return NaN;
  if (repr === 'inf') return Infinity;
  if (repr === '-inf') return -Infinity;
  return Number(repr);
}

describe('formatFixed', () => {
  it('rounds exact binary ties to even, unlike toFixed', () => {
    expect(formatFixed(6.25, 1)).toBe('6.2');
    expect((6.25).toFixed(1)).toBe('6.3'); // the reason this module exists
    expect(formatFixed(0.125, 2)).toBe('0.12');
    expect(formatFixed(0.375, 2)).toBe('0.38');
    expect(formatFixed((1 / 16) * 100, 1)).toBe('6.2');
    expect(formatFixed((3 / 16) * 100, 1)).toBe('18.8'); // 18.75 -> 18.8 (8 is even)
    expect(formatFixed(0.5, 0)).toBe('0');
    expect(formatFixed(1.5, 0)).toBe('2');
    expect(formatFixed(2.5, 0)).toBe('2');
    expect(formatFixed(-2.5, 0)).toBe('-2');
  });

  it('rounds the binary value, not the shortest decimal form', () => {
    // 2.675 is stored as 2.67499999999999982236431605997495353221893310546875
    expect(formatFixed(2.675, 2)).toBe('2.67');
    // 1.005 is stored slightly below 1.005
    expect(formatFixed(1.005, 2)).toBe('1.00');
    // 0.15 and 0.35 are stored slightly below the tie
    expect(formatFixed(0.15, 1)).toBe('0.1');
    expect(formatFixed(0.35, 1)).toBe('0.3');
    expect(formatFixed((2 / 3) * 100, 1)).toBe('66.7');
  });

  it('handles zero, negative zero and negatives that round to zero', () => {
    expect(formatFixed(0, 1)).toBe('0.0');
    expect(formatFixed(0, 0)).toBe('0');
    expect(formatFixed(-0, 1)).toBe('-0.0');
    expect(formatFixed(-0.04, 1)).toBe('-0.0');
    expect(formatFixed(-0.05, 1)).toBe('-0.1'); // -0.05 is stored just above 0.05 in magnitude
    expect(formatFixed(-12.345, 2)).toBe('-12.35'); // stored as -12.3450000000000006394884621840901672840118408203125
  });

  it('prints large values with every digit, no exponent', () => {
    expect(formatFixed(1e22, 2)).toBe('10000000000000000000000.00');
    expect(formatFixed(1e23, 0)).toBe('99999999999999991611392');
    expect(formatFixed(2 ** 53 + 2, 1)).toBe('9007199254740994.0');
    expect(formatFixed(Number.MAX_VALUE, 0)).toHaveLength(309);
  });

  it('handles subnormals and long precisions', () => {
    expect(formatFixed(5e-324, 1)).toBe('0.0');
    expect(formatFixed(1 / 3, 20)).toBe('0.33333333333333331483');
  });

  it('prints non-finite values like Python', () => {
    expect(formatFixed(NaN, 1)).toBe('nan');
    expect(formatFixed(-NaN, 1)).toBe('nan');
    expect(formatFixed(Infinity, 2)).toBe('inf');
    expect(formatFixed(-Infinity, 0)).toBe('-inf');
  });

  it('rejects invalid digit counts', () => {
    expect(() => formatFixed(1, -1)).toThrow(RangeError);
    expect(() => formatFixed(1, 1.5)).toThrow(RangeError);
    expect(() => formatFixed(1, NaN)).toThrow(RangeError);
  });

  it('formatPercent1 is the one-decimal form', () => {
    expect(formatPercent1(6.25)).toBe('6.2');
    expect(formatPercent1(100)).toBe('100.0');
  });

  it(`matches ${golden.fixed.length} strings recorded from Python`, () => {
    const mismatches: string[] = [];
    for (const [repr, digits, expected] of golden.fixed) {
      const actual = formatFixed(parsePyFloat(repr), digits);
      if (actual !== expected) mismatches.push(`${repr} %.${digits}f: python ${expected}, ours ${actual}`);
    }
    expect(mismatches).toEqual([]);
  });
});

describe('formatDollars', () => {
  it('uses 4, 3 or 2 decimals depending on size', () => {
    expect(formatDollars(0)).toBe('$0.0000');
    expect(formatDollars(0.0123)).toBe('$0.012');
    expect(formatDollars(0.00123)).toBe('$0.0012');
    expect(formatDollars(0.456)).toBe('$0.456');
    expect(formatDollars(1.234)).toBe('$1.23');
    expect(formatDollars(1234.5678)).toBe('$1234.57');
  });

  it('decides on the raw value, so values near a threshold round up across it', () => {
    expect(formatDollars(0.00999)).toBe('$0.0100');
    expect(formatDollars(0.9999)).toBe('$1.000');
    expect(formatDollars(0.01)).toBe('$0.010');
    expect(formatDollars(1)).toBe('$1.00');
    expect(formatDollars(-0.5)).toBe('$-0.5000');
  });

  it(`matches ${golden.dollars.length} strings recorded from Python`, () => {
    for (const [repr, expected] of golden.dollars) {
      expect(formatDollars(parsePyFloat(repr)), repr).toBe(expected);
    }
  });
});
