// The offline analyzer at scale: the linear-space word diff (same LCS as the
// table, bounded memory and work, a stated limit), packed vectors that give
// the same similarities, and the sampled grouping of large sets.
import { describe, expect, it } from 'vitest';
import { scaledItems } from '../bench/offline-scale.ts';
import { mulberry32 } from '../stages/agreement.ts';
import { EXACT_LINKAGE_MAX, groupByLinkage } from '../stages/offline/categorize.ts';
import { lcsSteps, MAX_DIFF_CHARS, wordDiff } from '../stages/offline/diff.ts';
import type { Step } from '../stages/offline/diff.ts';
import { analyzeItem, buildCorpus, CATEGORY_WEIGHTS, cosine, itemVector, norm, packedCentroid, packedCentroidVector, packedCosine, packedCosineDistances, packedCosineTo, packVectors } from '../stages/offline/features.ts';
import type { PackedVector } from '../stages/offline/features.ts';
import { averageLinkage, averageLinkageOf } from '../stages/offline/linkage.ts';
import { offlineSummarize } from '../stages/offline/summarize.ts';

/** The steps are an alignment of a against b: every token once, in order, keeps on equal tokens. */
function isAlignment(steps: readonly Step[], a: readonly string[], b: readonly string[]): boolean {
  let i = 0;
  let j = 0;
  for (const s of steps) {
    if (s.op === 'keep') {
      if (s.a !== i || s.b !== j || a[i] !== b[j]) return false;
      i++;
      j++;
    } else if (s.op === 'remove') {
      if (s.a !== i++) return false;
    } else if (s.b !== j++) return false;
  }
  return i === a.length && j === b.length;
}

describe('the word diff in linear space', () => {
  it('finds a longest common subsequence, as the table does', () => {
    const rnd = mulberry32(7);
    for (let t = 0; t < 400; t++) {
      const vocab = 2 + (t % 7);
      const a = Array.from({ length: Math.floor(rnd() * 40) }, () => `w${Math.floor(rnd() * vocab)}`);
      const b = Array.from({ length: Math.floor(rnd() * 40) }, () => `w${Math.floor(rnd() * vocab)}`);
      const table = lcsSteps(a, b);
      const linear = lcsSteps(a, b, 0);
      const keeps = (s: readonly Step[]) => s.filter((x) => x.op === 'keep').length;
      expect(isAlignment(linear.steps, a, b), `${a} / ${b}`).toBe(true);
      expect(keeps(linear.steps)).toBe(keeps(table.steps));
      expect(linear.limited).toBe(false);
    }
  });

  it('diffs 60,000-word instructions that differ in a few places without a quadratic table', () => {
    const rnd = mulberry32(11);
    const words = Array.from({ length: 60_000 }, () => `w${Math.floor(rnd() * 5000)}`);
    const perturbed = words.map((w, i) => (i % 9973 === 0 ? `please also remove it ${w}` : w));
    const d = wordDiff(words.join(' '), perturbed.join(' '));
    expect(d.limited).toBeUndefined();
    expect(d.keptTokens).toBe(60_000);
    expect(d.addedTokens).toBe(4 * 7);
  });

  it('states its limits instead of spending minutes and gigabytes', () => {
    const rnd = mulberry32(3);
    const text = (n: number) => Array.from({ length: n }, () => `w${Math.floor(rnd() * 50)}`).join(' ');
    // Two long texts that differ everywhere: past the work budget, the rest is one replacement.
    const d = wordDiff(text(40_000), text(40_000));
    expect(d.limited).toMatch(/differ in too many places/);
    expect(d.addedTokens + d.keptTokens).toBe(40_000);
    // Longer than the word diff reads at all.
    const huge = 'x '.repeat(MAX_DIFF_CHARS / 2 + 1);
    const h = wordDiff(huge, 'short');
    expect(h.limited).toMatch(/longer than the 2,000,000/);
    expect(h.segments.map((s) => s.op)).toEqual(['remove', 'add']);
    // The summary says so.
    const s = offlineSummarize({
      original_instruction: huge,
      history: [],
      successful: { execution_iteration: 1, perturbed_instruction: 'short', elicitation_strategy: 'x', trajectory_evaluation: { recommendation: 'COLLECT' } },
    } as never);
    expect(s).toContain('the word diff reads');
    // CPU-heavy by design (a 40,000-word diff up to its work budget): no timing is asserted, a loaded machine only waits longer.
  }, 30_000);
});

describe('packed vectors', () => {
  it('give bit-identical cosine similarities', () => {
    const { items } = scaledItems(240);
    const analyses = items.map(analyzeItem);
    const corpus = buildCorpus(analyses);
    const vectors = analyses.map((a) => itemVector(a, corpus, CATEGORY_WEIGHTS));
    const { packed } = packVectors(vectors);
    for (let i = 0; i < vectors.length; i += 7) {
      for (let j = 0; j < vectors.length; j += 5) {
        expect(packedCosine(packed[i]!, packed[j]!)).toBe(cosine(vectors[i]!, vectors[j]!));
      }
    }
  });

  it('make a packed centroid with the values, norm and similarities of the map one', () => {
    const { items } = scaledItems(200);
    const analyses = items.map(analyzeItem);
    const corpus = buildCorpus(analyses);
    const { packed, keys } = packVectors(analyses.map((a) => itemVector(a, corpus, CATEGORY_WEIGHTS)));
    for (const members of [packed.slice(0, 1), packed.slice(10, 90), packed.filter((_, i) => i % 3 === 0)]) {
      const map = packedCentroid(members, keys);
      const vec = packedCentroidVector(members, keys.length);
      expect(Array.from(vec.idx, (id) => keys[id])).toEqual([...map.keys()]);
      expect(Array.from(vec.val)).toEqual([...map.values()]);
      expect(vec.norm).toBe(norm(map));
      for (const v of packed) if (packedCosine(v, vec) !== packedCosineTo(v, keys, map)) expect.fail(`${packedCosine(v, vec)} vs ${packedCosineTo(v, keys, map)}`);
    }
  });

  it('gives every pair the distance packedCosine gives, bit for bit, from the lists of the vectors that hold each key', () => {
    const { items } = scaledItems(300);
    const analyses = items.map(analyzeItem);
    const corpus = buildCorpus(analyses);
    const { packed } = packVectors(analyses.map((a) => itemVector(a, corpus, CATEGORY_WEIGHTS)));
    // A vector without entries and one of zeros: both at distance 1 from everything.
    const vs: PackedVector[] = [...packed.slice(0, 150), { idx: new Int32Array(0), val: new Float64Array(0), norm: 0 }, ...packed.slice(150)];
    vs.splice(40, 0, { idx: Int32Array.of(0, 3), val: Float64Array.of(0, 0), norm: 0 });
    const d = packedCosineDistances(vs);
    expect(d.length).toBe((vs.length * (vs.length - 1)) / 2);
    let k = 0;
    for (let i = 0; i < vs.length; i++) {
      for (let j = i + 1; j < vs.length; j++, k++) {
        if (d[k] !== 1 - packedCosine(vs[i]!, vs[j]!)) expect.fail(`pair ${i}, ${j}: ${d[k]} vs ${1 - packedCosine(vs[i]!, vs[j]!)}`);
      }
    }
    // The linkage of the matrix is the linkage of the distance function.
    const byFunction = averageLinkage(vs.length, (i, j) => 1 - packedCosine(vs[i]!, vs[j]!), { threshold: 0.6 });
    expect(averageLinkageOf(vs.length, d, { threshold: 0.6 })).toEqual(byFunction);
    expect(byFunction.length).toBeGreaterThan(3);
    expect(byFunction.length).toBeLessThan(vs.length / 2);
  });
});

describe('grouping a large set from a sample', () => {
  const { items } = scaledItems(360);
  const analyses = items.map(analyzeItem);
  const corpus = buildCorpus(analyses);
  const { packed } = packVectors(analyses.map((a) => itemVector(a, corpus, CATEGORY_WEIGHTS)));

  it('puts every run in exactly one group, independent of input order', () => {
    const groups = groupByLinkage(analyses, packed, 0.6, 120);
    const ids = groups.flat().map((a) => a.item.id);
    expect(ids).toHaveLength(360);
    expect(new Set(ids).size).toBe(360);
    const reversed = [...analyses.keys()].reverse();
    const again = groupByLinkage(reversed.map((i) => analyses[i]!), reversed.map((i) => packed[i]!), 0.6, 120);
    const norm = (gs: typeof groups) => gs.map((g) => g.map((a) => a.item.id).sort().join(',')).sort();
    expect(norm(again)).toEqual(norm(groups));
  });

  it('is the exact linkage up to the limit, so the sample is unchanged', () => {
    expect(EXACT_LINKAGE_MAX).toBeGreaterThanOrEqual(117);
    const exact = groupByLinkage(analyses, packed, 0.6, 1000);
    const sampled = groupByLinkage(analyses, packed, 0.6, 120);
    // Copies of the same records: sampling keeps most runs together as the exact grouping does.
    const key = (gs: typeof exact) => new Map(gs.flatMap((g, gi) => g.map((a) => [a.item.id, gi] as const)));
    const e = key(exact);
    const s = key(sampled);
    let agree = 0;
    let pairs = 0;
    const ids = [...e.keys()];
    for (let i = 0; i < ids.length; i += 3) {
      for (let j = i + 1; j < ids.length; j += 11) {
        pairs++;
        if ((e.get(ids[i]!) === e.get(ids[j]!)) === (s.get(ids[i]!) === s.get(ids[j]!))) agree++;
      }
    }
    expect(agree / pairs).toBeGreaterThan(0.9);
  });
});
