// The canonical JSON every store key hashes, made in pieces: the pieces
// joined are the one-string text exactly (so no key changes), and the hash
// of the pieces is the hash of that text. The oracle is the definition:
// JSON.stringify of the value with object keys sorted recursively and
// undefined members dropped.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalJson, canonicalJsonPieces, requestHash } from '../stages/llm/store.ts';

function sortedCopy(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortedCopy);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortedCopy(v);
    }
    return out;
  }
  return value;
}
const oracle = (v: unknown): string => JSON.stringify(sortedCopy(v));
const sha = (t: string): string => createHash('sha256').update(t).digest('hex');

/** A small deterministic generator, so a failure names a seed that reproduces it. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const awkwardStrings = ['', 'plain', 'quote " and \\ backslash', 'line\nbreak\ttab', '\u0000\u001f control', 'é ü ß', '— em dash “quotes”', '😀 astral', '\ud800 lone high', 'lone low \udc00', '\u2028\u2029'];
const awkwardKeys = ['b', 'a', '10', '9', '1', '01', '-1', '1.5', '4294967295', '4294967294', 'Z', 'é', '😀', '', '__proto__x'];

function randomValue(r: () => number, depth: number): unknown {
  const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
  const k = r();
  if (depth > 4 || k < 0.35) {
    return pick<unknown>([null, true, false, 0, -0, 1.5, 1e21, -3e-7, Number.NaN, Infinity, 42, undefined, () => 1, pick(awkwardStrings)]);
  }
  if (k < 0.65) return Array.from({ length: Math.floor(r() * 5) }, () => randomValue(r, depth + 1));
  const o: Record<string, unknown> = {};
  for (let i = Math.floor(r() * 6); i > 0; i--) o[pick(awkwardKeys)] = randomValue(r, depth + 1);
  return o;
}

describe('canonical JSON in pieces', () => {
  it('joins to the one-string text and hashes to its digest, over random values', () => {
    for (let seed = 1; seed <= 400; seed++) {
      const v = randomValue(rng(seed), 0);
      if (v === undefined || typeof v === 'function') continue;
      const text = oracle(v);
      expect([...canonicalJsonPieces(v)].join(''), `seed ${seed}`).toBe(text);
      expect(canonicalJson(v), `seed ${seed}`).toBe(text);
      expect(requestHash(v), `seed ${seed}`).toBe(sha(text));
    }
  });

  it('keeps what JSON.stringify does with integer-like keys, Dates, Maps and members without a text', () => {
    const v = {
      z: [undefined, () => 0, Symbol('s'), new Date(0), new Map([[1, 2]])],
      '10': 1,
      '9': { b: undefined, a: () => 0, c: new Date(0) },
      '-1': [1, { '2': 'two', '1': 'one', x: 'x' }],
      when: new Date(86_400_000),
    };
    expect([...canonicalJsonPieces(v)].join('')).toBe(oracle(v));
    expect(requestHash(v)).toBe(sha(oracle(v)));
  });

  it('hashes a request too large to hold as one string the same way, a run at a time', () => {
    const items = Array.from({ length: 3000 }, (_, i) => ({ id: `r${i}`, summary: `${'x'.repeat(200)} — ${i}`, harmful_actions: [`a${i}`], severity: i % 3 ? null : 'high' }));
    const req = { provider: 'offline', version: 'v', step: 'categorize', input: { items } };
    const pieces = [...canonicalJsonPieces(req)];
    expect(pieces.length).toBeGreaterThan(items.length);
    expect(Math.max(...pieces.map((p) => p.length))).toBeLessThan(400);
    expect(requestHash(req)).toBe(sha(oracle(req)));
  });
});
