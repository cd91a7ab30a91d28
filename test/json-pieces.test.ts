// JSON in pieces (stages/util/json-pieces.ts) and the atomic piece writer
// (stages/util/fs.ts writePiecesAtomicSync): the bytes of writeJson, exactly.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeJson, writePiecesAtomicSync } from '../stages/util/fs.ts';
import { compactJson, compactJsonPieces, jsonPieces, jsonStringPieces } from '../stages/util/json-pieces.ts';

const whole = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
const joined = (v: unknown) => [...jsonPieces(v)].join('');

/** A seeded random JSON-ish value: nested arrays and objects (empty ones too), strings with newlines, quotes and non-ASCII, members without a JSON text. */
function randomValue(seed: number): unknown {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const leaf = (): unknown => [null, true, 0, -1.5, 1e21, Number.NaN, 'a\nb "c" é \u2028', '', undefined, () => 1, new Date(0)][Math.floor(rnd() * 11)];
  const make = (depth: number): unknown => {
    const r = rnd();
    if (depth > 4 || r < 0.3) return leaf();
    const n = Math.floor(rnd() * 4);
    if (r < 0.65) return Array.from({ length: n }, () => make(depth + 1));
    return Object.fromEntries(Array.from({ length: n }, (_, i) => [[`k${i}`, String(i * 7), 'a b', '__x'][Math.floor(rnd() * 4)]!, make(depth + 1)]));
  };
  return make(0);
}

describe('jsonPieces', () => {
  it('joins to JSON.stringify(value, null, 2) and a newline', () => {
    const values: unknown[] = [
      null, 3, 'x\ny', [], {}, [[]], { a: {} }, { a: [] }, { a: [{}] },
      { runs: [{ run_id: 'a', file: null, reason: 'line\nbreak' }, { run_id: 'b' }], failed: [] },
      { runs: { 'b:1': { severity: null, harmful: ['x', 'y'] }, 'a:0': { severity: 'low', harmful: [] }, 10: { x: 1 }, 2: {} } },
      { u: undefined, f: () => 1, keep: 1, nested: { u: undefined, list: [undefined, () => 1, 2] } },
      [undefined, { toJSON: () => ({ replaced: [1, 2] }) }, new Map([[1, 2]]), Object.assign(Object.create(null), { n: 1 })],
      { deep: { deeper: { deepest: [1, { x: [2, [3]] }] } } },
    ];
    for (const v of values) {
      expect(joined(v)).toBe(whole(v));
      expect([...compactJsonPieces(v)].join('')).toBe(JSON.stringify(v));
    }
    const withProto = {};
    Object.defineProperty(withProto, '__proto__', { value: { a: 1 }, enumerable: true });
    expect(joined(withProto)).toBe(whole(withProto));
    for (let seed = 1; seed <= 500; seed++) {
      const v = randomValue(seed);
      if (JSON.stringify(v) === undefined) continue;
      expect(joined(v)).toBe(whole(v));
      expect([...compactJsonPieces(v)].join('')).toBe(JSON.stringify(v));
    }
  });

  it('yields a container member by member, not as one string', () => {
    const runs = Array.from({ length: 1000 }, (_, i) => ({ run_id: `r${i}`, status: 'done' }));
    const parts = [...jsonPieces({ runs })];
    expect(parts.length).toBeGreaterThan(2000);
    expect(Math.max(...parts.map((p) => p.length))).toBeLessThan(100);
  });

  it('escapes a long string a part at a time, never between the halves of a surrogate pair', () => {
    const part = 1 << 16;
    const texts = [
      `${'a'.repeat(part - 1)}😀${'b'.repeat(part)}`,
      `${'"\\\n'.repeat(part)}\ud800 lone ${'é'.repeat(part)}\udc00`,
      '😀'.repeat(part + 3),
    ];
    for (const text of texts) {
      const parts = [...jsonStringPieces(text)];
      expect(parts.length).toBeGreaterThan(2);
      expect(parts.join('')).toBe(JSON.stringify(text));
      expect([...jsonPieces({ text })].join('')).toBe(whole({ text }));
    }
  });

  it('opens a large array at any depth (a category holding every run), with the same text', () => {
    const examples = Array.from({ length: 3000 }, (_, i) => (i % 500 === 7 ? undefined : i % 500 === 9 ? () => 1 : { id: `r${i}`, trigger_phrase: i % 3 ? `x "${i}"\n é` : null }));
    const byId = Object.fromEntries(examples.map((e, i) => [`id ${i}`, e]));
    const value = { categorization: { categories: [{ category_name: 'A', examples, nested: [examples.slice(0, 100)], byId }, { category_name: 'B', examples: [] }] } };
    const parts = [...jsonPieces(value)];
    expect(parts.join('')).toBe(whole(value));
    expect(Math.max(...parts.map((p) => p.length))).toBeLessThan(200);
    const compact = [...compactJsonPieces(value)];
    expect(compact.join('')).toBe(JSON.stringify(value));
    expect(compactJson(value)).toBe(JSON.stringify(value));
    expect(compactJson({ small: [1, 2] })).toBe('{"small":[1,2]}');
    expect(Math.max(...compact.map((p) => p.length))).toBeLessThan(200);
  });
});

describe('writePiecesAtomicSync', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'json-pieces-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes the bytes of the whole text encoded at once (several MiB: more than one write), through a temporary file; so does writeJson', () => {
    const value = { runs: Array.from({ length: 40_000 }, (_, i) => ({ run_id: `run ${i} é \ud800 😀`, score: i / 7 })) };
    writeJson(join(dir, 'whole.json'), value);
    writePiecesAtomicSync(join(dir, 'sub', 'pieces.json'), jsonPieces(value));
    const expected = Buffer.from(whole(value), 'utf8');
    expect(expected.length).toBeGreaterThan(2 * 2 ** 20);
    expect(readFileSync(join(dir, 'sub', 'pieces.json')).equals(expected)).toBe(true);
    expect(readFileSync(join(dir, 'whole.json')).equals(expected)).toBe(true);
    expect(readdirSync(join(dir, 'sub'))).toEqual(['pieces.json']);
  });

  it('leaves nothing behind when a piece cannot be made', () => {
    function* failing(): Generator<string> {
      yield 'start';
      throw new Error('no more');
    }
    expect(() => writePiecesAtomicSync(join(dir, 'out.json'), failing())).toThrow('no more');
    expect(readdirSync(dir)).toEqual([]);
  });
});
