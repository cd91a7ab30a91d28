// Offline categorization: groups runs by the mechanism their perturbation
// adds, names each group after its most distinctive cue family and quotes a
// verbatim trigger phrase for every run.
//
// Algorithm:
//  1. Items are sorted by id (then by their text), so the result does not
//     depend on input order.
//  2. Each run is analysed (features.ts): word diff, cue-family evidence,
//     harm-family evidence, TF-IDF over inserted wording.
//  3. Runs without any cue or harm evidence ("uncued") are set aside; the
//     others are clustered by average-linkage agglomerative clustering over
//     cosine distance of their feature vectors, cut at `threshold`. Above
//     EXACT_LINKAGE_MAX cued runs, a stable sample of that many is clustered
//     and the others join the nearest group (`groupByLinkage`), so time and
//     memory grow linearly with the runs instead of with their square.
//  4. Uncued runs form one residual category, named as such, unless they are
//     close enough (by terms) to a cued category.
//  5. Each category is named "<dominant family title>: '<cue>', '<cue>'" from
//     the family with the largest mean weighted evidence among its members and
//     the cues of that family seen most often in their inserted wording.

import type { CategorizeItem, Category, CategoryExample } from '../formats.ts';
import { trimPhrase, type Phrase } from './diff.ts';
import {
  itemAnalyzer,
  buildCorpus,
  CATEGORY_WEIGHTS,
  familyValues,
  packedCentroid,
  packedCosineDistances,
  packedDot,
  packedCosineTo,
  surfaceCounts,
  surfaceOf,
  vectorTable,
  type Corpus,
  type FeatureWeights,
  type ItemAnalysis,
  type LocatedCue,
  type PackedVector,
  type SparseVector,
  type SurfaceCounts,
} from './features.ts';
import { CUE_FAMILIES, FAMILY_BY_ID, HARM_BY_ID, type CueFamily } from './lexicon.ts';
import { averageLinkageOf } from './linkage.ts';
import { compareStrings, isFillerKey, OFFLINE_MARK, titleCase, tokenize } from './text.ts';

export interface OfflineCategorizeOptions {
  /** Average-linkage cut (cosine distance). Default 0.6. */
  threshold?: number;
  /** Longest trigger phrase, in words. Default 12. */
  maxTriggerWords?: number;
  /** Feature block weights (see features.ts). */
  weights?: Partial<FeatureWeights>;
  /** A run whose strongest cue family value is below this is "uncued". Default 0.25. */
  minCueValue?: number;
}

export interface OfflineCategorizeResult {
  categories: Category[];
}

/** Internal view of one category, also used by the cluster stage and the bench. */
export interface CategoryModel {
  members: ItemAnalysis[];
  /** Mean weighted family value over members, sorted descending (ties: lexicon order). */
  families: [string, number][];
  dominant: CueFamily | null;
  /** Cue texts of the dominant (then secondary) family, most frequent first. */
  cueTerms: string[];
  /** Distinctive TF-IDF terms (surface forms). */
  topTerms: string[];
  centroid: SparseVector;
  residual: boolean;
}

const FAMILY_ORDER = new Map(CUE_FAMILIES.map((f, i) => [f.id, i]));

/** Sort key that makes the partition independent of input order. */
export function sortItems(items: readonly CategorizeItem[]): CategorizeItem[] {
  return [...items].sort(
    (a, b) =>
      compareStrings(a.id, b.id) ||
      compareStrings(a.perturbed_instruction ?? '', b.perturbed_instruction ?? '') ||
      compareStrings(a.original_instruction ?? '', b.original_instruction ?? ''),
  );
}

function maxFamilyValue(a: ItemAnalysis, corpus: Corpus, w: FeatureWeights): number {
  let m = 0;
  for (const v of familyValues(a, corpus, w).values()) m = Math.max(m, v);
  return m;
}

/** Mean weighted family values over members, sorted (value desc, lexicon order). */
export function meanFamilies(members: readonly ItemAnalysis[], corpus: Corpus, w: FeatureWeights): [string, number][] {
  const acc = new Map<string, number>();
  for (const m of members) for (const [f, v] of familyValues(m, corpus, w)) acc.set(f, (acc.get(f) ?? 0) + v);
  const n = Math.max(1, members.length);
  return [...acc.entries()]
    .map(([f, v]): [string, number] => [f, v / n])
    .sort((x, y) => y[1] - x[1] || (FAMILY_ORDER.get(x[0]) ?? 0) - (FAMILY_ORDER.get(y[0]) ?? 0));
}

/** A cue as shown in names and quotes: no double quotes, no edge apostrophes. */
export function displayCue(cue: string): string {
  return cue.replace(/"/g, '').replace(/^'+|'+$/g, '').trim();
}

/**
 * Cues of `family` inside inserted (or, for dropped restrictions, removed)
 * wording across members, aggregated per lexicon pattern so that "all users",
 * "any user" and "other users" count as one cue. Each entry is the pattern's
 * most frequent text and the number of members that carry it; most frequent
 * first, then stronger pattern, then alphabetical.
 */
export function cueCounts(members: readonly ItemAnalysis[], family: string): [string, number][] {
  const byPattern = new Map<number, { members: number; weight: number; texts: Map<string, number> }>();
  for (const m of members) {
    const seen = new Set<number>();
    for (const c of m.cues) {
      if (c.family !== family || c.factor < 0.5) continue;
      const text = displayCue(c.cue);
      if (text === '' || text.split(' ').length > 6) continue;
      const entry = byPattern.get(c.pattern) ?? { members: 0, weight: c.weight, texts: new Map<string, number>() };
      if (!seen.has(c.pattern)) {
        entry.members++;
        seen.add(c.pattern);
      }
      entry.weight = Math.max(entry.weight, c.weight);
      entry.texts.set(text, (entry.texts.get(text) ?? 0) + 1);
      byPattern.set(c.pattern, entry);
    }
  }
  const patterns = FAMILY_BY_ID.get(family)?.patterns ?? [];
  const out: [string, number, number][] = [];
  for (const [pi, e] of byPattern) {
    const text =
      patterns[pi]?.label ??
      [...e.texts.entries()].sort((x, y) => y[1] - x[1] || x[0].length - y[0].length || compareStrings(x[0], y[0]))[0]?.[0];
    if (text !== undefined) out.push([text, e.members, e.weight]);
  }
  // Most members x pattern strength first (a weak "remove" does not outrank "clean up").
  return out
    .sort((x, y) => y[1] * y[2] - x[1] * x[2] || y[1] - x[1] || compareStrings(x[0], y[0]))
    .map(([t, n]): [string, number] => [t, n]);
}

function topTermsOf(members: readonly ItemAnalysis[], corpus: Corpus, k: number): string[] {
  const acc = new Map<string, number>();
  for (const m of members) {
    for (let i = 0; i < m.terms.keys.length; i++) {
      const t = m.terms.keys[i] as string;
      const c = m.terms.weights[i] as number;
      const idf = corpus.termIdf.get(t);
      if (idf === undefined || c < 0.5) continue;
      acc.set(t, (acc.get(t) ?? 0) + Math.log1p(c) * idf);
    }
  }
  const ranked = [...acc.entries()].sort((x, y) => y[1] - x[1] || compareStrings(x[0], y[0]));
  const out: string[] = [];
  let surfaces: SurfaceCounts | undefined;
  for (const [t] of ranked) {
    if (out.length >= k) break;
    const s = surfaceOf(t, (surfaces ??= surfaceCounts(members)));
    // Skip a unigram already covered by a chosen bigram and vice versa.
    if (out.some((o) => o.includes(s) || s.includes(o))) continue;
    out.push(s);
  }
  return out;
}

export function buildModel(
  members: ItemAnalysis[],
  vectors: RunVectors,
  corpus: Corpus,
  w: FeatureWeights,
  residual: boolean,
): CategoryModel {
  const families = residual ? [] : meanFamilies(members, corpus, w);
  const dominantId = families[0]?.[0];
  const dominant = dominantId ? (FAMILY_BY_ID.get(dominantId) ?? null) : null;
  const cueTerms: string[] = [];
  if (dominant) {
    for (const [c] of cueCounts(members, dominant.id)) if (cueTerms.length < 3) cueTerms.push(c);
    const second = families[1]?.[0];
    if (cueTerms.length < 2 && second) for (const [c] of cueCounts(members, second)) if (cueTerms.length < 2) cueTerms.push(c);
  }
  return {
    members,
    families,
    dominant,
    cueTerms,
    topTerms: topTermsOf(members, corpus, 4),
    centroid: packedCentroid(members.map(vectors.of), vectors.keys),
    residual,
  };
}

function quoteList(xs: readonly string[]): string {
  return xs.map((x) => `'${x}'`).join(', ');
}

function harmLabels(members: readonly ItemAnalysis[]): string[] {
  const acc = new Map<string, number>();
  for (const m of members) for (const [h, s] of m.harmScores) acc.set(h, (acc.get(h) ?? 0) + s);
  return [...acc.entries()]
    .sort((x, y) => y[1] - x[1] || compareStrings(x[0], y[0]))
    .slice(0, 2)
    .map(([h]) => HARM_BY_ID.get(h)?.label ?? h);
}

/** Names categories; names are unique (secondary family, then a counter, disambiguate). */
function nameModels(models: readonly CategoryModel[]): string[] {
  const base = models.map((m) => {
    if (m.residual || !m.dominant) {
      // Terms of a residual group are usually topic words of single runs: they would mislead as a name.
      return 'Rewording Without a Catalogued Cue';
    }
    return `${m.dominant.title}${m.cueTerms.length ? `: ${quoteList(m.cueTerms.slice(0, 2))}` : ''}`;
  });
  const titleCount = new Map<string, number>();
  for (const m of models) if (m.dominant) titleCount.set(m.dominant.id, (titleCount.get(m.dominant.id) ?? 0) + 1);
  const names = models.map((m, i) => {
    const b = base[i] ?? '';
    if (!m.dominant || (titleCount.get(m.dominant.id) ?? 0) < 2) return b;
    // Several categories share the dominant family: qualify by the strongest secondary family.
    const second = m.families[1];
    const dom = m.families[0]?.[1] ?? 0;
    if (second && second[1] >= 0.35 * dom) {
      const fam = FAMILY_BY_ID.get(second[0]);
      if (fam) return b.replace(m.dominant.title, `${m.dominant.title} with ${titleCase(fam.short)}`);
    }
    return b;
  });
  const seen = new Map<string, number>();
  return names.map((n) => {
    const k = (seen.get(n) ?? 0) + 1;
    seen.set(n, k);
    return k === 1 ? n : `${n} (${k})`;
  });
}

function defineModel(m: CategoryModel): string {
  const n = m.members.length;
  const runs = `${n} run${n === 1 ? '' : 's'}`;
  const harms = harmLabels(m.members);
  const harmText = harms.length ? ` Observed harm in these runs: ${harms.join(', ')}.` : '';
  if (m.residual || !m.dominant) {
    return (
      `${OFFLINE_MARK} Perturbations whose inserted wording matches none of the analyzer's cue families: ` +
      `they paraphrase the task or drop part of it, leaving the harmful reading implicit (${runs}` +
      `${m.topTerms.length ? `; most distinctive inserted terms ${quoteList(m.topTerms)}` : ''}).${harmText}`
    );
  }
  const second = m.families[1];
  const secondFam = second && second[1] >= 0.3 * (m.families[0]?.[1] ?? 0) ? FAMILY_BY_ID.get(second[0]) : undefined;
  const secondCues = secondFam ? cueCounts(m.members, secondFam.id).slice(0, 2).map(([c]) => c) : [];
  return (
    `${OFFLINE_MARK} Perturbations that ${m.dominant.description} (${runs}` +
    `${m.cueTerms.length ? `; distinctive cues ${quoteList(m.cueTerms)}` : ''}` +
    `${m.topTerms.length ? `; distinctive inserted terms ${quoteList(m.topTerms.slice(0, 3))}` : ''}).` +
    `${secondFam ? ` Often combined with ${secondFam.title.toLowerCase()}${secondCues.length ? ` (${quoteList(secondCues)})` : ''}.` : ''}` +
    harmText
  );
}

/** Index range of the tokens of `text` that overlap [start, end). */
function tokenRange(toks: ReturnType<typeof tokenize>, start: number, end: number): [number, number] {
  let a = -1;
  let b = -1;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i];
    if (!t) continue;
    if (t.end > start && t.start < end) {
      if (a < 0) a = i;
      b = i;
    }
  }
  return [a, b];
}

/**
 * A window of at most `maxWords` tokens of `source` inside [spanStart, spanEnd)
 * that contains [hitStart, hitEnd), cut at sentence ends where possible.
 */
export function windowAround(
  source: string,
  spanStart: number,
  spanEnd: number,
  hitStart: number,
  hitEnd: number,
  maxWords: number,
): Phrase {
  const toks = tokenize(source);
  const [s0, s1] = tokenRange(toks, spanStart, spanEnd);
  if (s0 < 0) return { text: '', start: spanStart, end: spanStart };
  let [h0, h1] = tokenRange(toks, hitStart, hitEnd);
  if (h0 < 0) [h0, h1] = [s0, s0];
  const endsSentence = (i: number): boolean => /[.?!]["')\]]?$/u.test(toks[i]?.text ?? '');
  const endsClause = (i: number): boolean =>
    /[.?!;:,]["')\]]?$/u.test(toks[i]?.text ?? '') || /^[\u2014\u2013]$/u.test(toks[i]?.text ?? '');
  // The sentence around the hit, inside the span.
  let lo = h0;
  while (lo > s0 && !endsSentence(lo - 1)) lo--;
  let hi = h1;
  while (hi < s1 && !endsSentence(hi)) hi++;
  let naturalEnd = hi;
  if (hi - lo + 1 > maxWords) {
    // Too long: try the clause around the hit (commas, semicolons, dashes).
    const sentenceLo = lo;
    const sentenceHi = hi;
    lo = h0;
    while (lo > sentenceLo && !endsClause(lo - 1)) lo--;
    hi = h1;
    while (hi < sentenceHi && !endsClause(hi)) hi++;
    // A short clause takes in its neighbours while they fit (right first, then left).
    for (;;) {
      let next = hi + 1;
      while (next < sentenceHi && !endsClause(next)) next++;
      if (hi >= sentenceHi || next - lo + 1 > maxWords) break;
      hi = next;
    }
    for (;;) {
      let prev = lo - 1;
      while (prev > sentenceLo && !endsClause(prev - 1)) prev--;
      if (lo <= sentenceLo || hi - prev + 1 > maxWords) break;
      lo = prev;
    }
    naturalEnd = hi;
    if (hi - lo + 1 > maxWords) {
      // Still too long: keep the cue and the rest of its clause, fill the room left with lead-in words.
      const rest = hi - h0 + 1;
      if (rest >= maxWords) {
        lo = h0;
        hi = h0 + maxWords - 1;
      } else {
        lo = Math.max(lo, h0 - (maxWords - rest));
      }
      while (lo < h0 && isFillerKey(toks[lo]?.key ?? '')) lo++;
    }
  }
  // A cut-short window should not end on a dangling function word ("... left on the").
  const cut = hi < naturalEnd || (naturalEnd === s1 && !endsClause(hi));
  // Never trim into the cue itself, unless the window already cut the hit (a long uncued span).
  const guard = hi < h1 ? h0 : h1;
  if (cut) while (hi > guard && isFillerKey(toks[hi]?.key ?? '')) hi--;
  const first = toks[lo];
  const last = toks[hi];
  if (!first || !last) return { text: '', start: spanStart, end: spanStart };
  return trimPhrase(source, { text: source.slice(first.start, last.end), start: first.start, end: last.end });
}

export interface TriggerChoice {
  phrase: Phrase | null;
  /** Cues inside the chosen phrase. */
  cues: LocatedCue[];
}

/** Picks the most cue-bearing inserted wording of a run, as a verbatim span of its perturbed instruction. */
export function chooseTrigger(a: ItemAnalysis, preferred: readonly string[], maxWords: number): TriggerChoice {
  const text = a.perturbed;
  if (text.trim() === '') return { phrase: null, cues: [] };
  const rank = (f: string): number => {
    const i = preferred.indexOf(f);
    return i < 0 ? 0.5 : i === 0 ? 2 : 1;
  };
  // Cues inside inserted wording; cues in kept wording only when nothing was inserted.
  const inserted = a.cues.filter((c) => c.where === 'perturbed' && c.span >= 0);
  const pool = inserted.length > 0 || a.added.length > 0 ? inserted : a.cues.filter((c) => c.where === 'perturbed');
  const candidates = pool
    .map((c) => ({ c, score: c.weight * c.factor * rank(c.family) }))
    .sort((x, y) => y.score - x.score || x.c.start - y.c.start);
  const best = candidates[0]?.c;
  let phrase: Phrase;
  if (best) {
    const span = best.span >= 0 ? a.added[best.span] : undefined;
    phrase = span
      ? windowAround(text, span.start, span.end, best.start, best.end, maxWords)
      : windowAround(text, 0, text.length, best.start, best.end, maxWords);
  } else {
    // No cue: the longest inserted span (else the start of the instruction).
    const longest = [...a.added].sort((x, y) => y.text.length - x.text.length || x.start - y.start)[0];
    phrase = longest
      ? windowAround(text, 0, text.length, longest.start, longest.end, maxWords)
      : windowAround(text, 0, text.length, 0, 1, maxWords);
  }
  if (phrase.text === '') phrase = trimPhrase(text, { text, start: 0, end: text.length });
  const cues = a.cues.filter((c) => c.where === 'perturbed' && c.start >= phrase.start && c.end <= phrase.end);
  return { phrase, cues };
}

function justify(a: ItemAnalysis, model: CategoryModel, sim: number): string {
  const byFam = new Map<string, string[]>();
  const inserted = a.cues.filter((c) => c.factor >= 0.5);
  for (const c of inserted) {
    const list = byFam.get(c.family) ?? [];
    const cue = c.where === 'removed' ? `dropped "${displayCue(c.cue)}"` : displayCue(c.cue);
    if (!list.includes(cue)) list.push(cue);
    byFam.set(c.family, list);
  }
  const parts: string[] = [];
  const dom = model.dominant;
  if (dom && byFam.has(dom.id)) {
    parts.push(`its inserted wording carries the ${dom.title.toLowerCase()} cue(s) ${quoteList((byFam.get(dom.id) ?? []).slice(0, 3))}`);
  } else if (dom) {
    const weak = a.cues.filter((c) => c.family === dom.id).map((c) => c.cue);
    parts.push(
      weak.length
        ? `it only weakly carries the ${dom.title.toLowerCase()} cue ${quoteList(weak.slice(0, 2))} and is grouped by its other features`
        : `it has no ${dom.title.toLowerCase()} cue of its own and is grouped by its other cues and terms`,
    );
  } else {
    parts.push('no cue family of the lexicon matches its inserted wording');
  }
  const others = [...byFam.entries()]
    .filter(([f]) => f !== dom?.id)
    .sort((x, y) => (FAMILY_ORDER.get(x[0]) ?? 0) - (FAMILY_ORDER.get(y[0]) ?? 0))
    .slice(0, 2)
    .map(([f, cs]) => `${FAMILY_BY_ID.get(f)?.title.toLowerCase() ?? f} (${quoteList(cs.slice(0, 2))})`);
  if (others.length) parts.push(`also ${others.join(' and ')}`);
  const harms = [...a.harmScores.keys()].map((h) => HARM_BY_ID.get(h)?.label ?? h);
  if (harms.length) parts.push(`harmful actions: ${harms.slice(0, 2).join(', ')}`);
  const shared = model.topTerms.filter((t) => {
    const words = t.split(' ');
    return words.every((w) => a.perturbed.toLowerCase().includes(w));
  });
  if (shared.length) parts.push(`shares the category terms ${quoteList(shared.slice(0, 3))}`);
  return `${OFFLINE_MARK} Assigned because ${parts.join('; ')} (cosine similarity ${sim.toFixed(2)} to the category centroid).`;
}

/**
 * Cued runs that average-linkage clustering groups all at once: its cost
 * grows with the square of the runs (time, and an n x n matrix of 8-byte
 * distances: 128 MiB here). A larger set is grouped from a sample
 * (`groupByLinkage`).
 */
export const EXACT_LINKAGE_MAX = 4000;

/** FNV-1a: a cheap, stable hash of an id, to draw a sample that does not depend on input order. */
function idHash(id: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) {
    h ^= id.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Groups of cued runs (ascending indices into `runs`). Up to
 * EXACT_LINKAGE_MAX runs: average linkage over all of them, cut at
 * `threshold`. Above: average linkage over a sample of EXACT_LINKAGE_MAX runs
 * (those with the smallest hash of their id: stable as runs are added), then
 * every other run joins the sample group at the smallest average distance
 * (1 - mean cosine to its members, the same quantity average linkage merges
 * on) when that is within `threshold`; the runs no group takes are grouped
 * the same way among themselves, so rare mechanisms keep categories of their
 * own. Time and memory grow linearly beyond the sample (bench/offline-scale.ts).
 */
export function groupByLinkage(runs: readonly ItemAnalysis[], packed: readonly PackedVector[], threshold: number, exactMax = EXACT_LINKAGE_MAX): ItemAnalysis[][] {
  return groupIndices(runs.map((_, i) => i), runs, packed, threshold, exactMax).map((g) => g.map((i) => runs[i] as ItemAnalysis));
}

function groupIndices(members: readonly number[], runs: readonly ItemAnalysis[], packed: readonly PackedVector[], threshold: number, exactMax: number): number[][] {
  const linkage = (ids: readonly number[]) =>
    averageLinkageOf(ids.length, packedCosineDistances(ids.map((i) => packed[i] as PackedVector)), { threshold }).map((g) => g.map((k) => ids[k] as number));
  if (members.length <= exactMax) return linkage(members);
  const byHash = [...members].sort((x, y) => idHash((runs[x] as ItemAnalysis).item.id) - idHash((runs[y] as ItemAnalysis).item.id) || x - y);
  const sample = byHash.slice(0, exactMax).sort((x, y) => x - y);
  const groups = linkage(sample);
  // Each group's sum of unit vectors: the mean cosine of a run to the group is its unit vector's dot with it, over the size.
  // Packed with its keys ascending, as a run's vector is: a dot product is then a merge of the two,
  // adding the same products in the same order as looking each of the run's keys up would (a key
  // the sum lacks adds 0, which changes no sum).
  const sums = groups.map((g) => {
    const acc = new Map<number, number>();
    for (const i of g) {
      const v = packed[i] as PackedVector;
      if (v.norm === 0) continue;
      for (let k = 0; k < v.idx.length; k++) acc.set(v.idx[k] as number, (acc.get(v.idx[k] as number) ?? 0) + (v.val[k] as number) / v.norm);
    }
    const keys = Int32Array.from(acc.keys()).sort();
    // Its norm is never read: only packedDot takes these.
    return { idx: keys, val: Float64Array.from(keys, (k) => acc.get(k) as number), norm: 0 } satisfies PackedVector;
  });
  const sizes = groups.map((g) => g.length);
  const inSample = new Set(sample);
  const rest: number[] = [];
  for (const i of members) {
    if (inSample.has(i)) continue;
    const v = packed[i] as PackedVector;
    let best = -1;
    let bestDist = Infinity;
    if (v.norm > 0) {
      groups.forEach((g, gi) => {
        const dot = packedDot(v, sums[gi] as PackedVector);
        const dist = 1 - dot / v.norm / (sizes[gi] as number);
        if (dist < bestDist) {
          bestDist = dist;
          best = gi;
        }
      });
    }
    if (best >= 0 && bestDist <= threshold) (groups[best] as number[]).push(i);
    else rest.push(i);
  }
  const out = groups.map((g) => g.sort((x, y) => x - y));
  if (rest.length > 0) out.push(...groupIndices(rest, runs, packed, threshold, exactMax));
  return out.sort((x, y) => (x[0] as number) - (y[0] as number));
}

/** Every run's packed vector (features.ts vectorTable) and the numbering of their keys. */
export interface RunVectors {
  of(a: ItemAnalysis): PackedVector;
  keys: readonly string[];
}

/** Every run's vector under the categorizer's own weights (CATEGORY_WEIGHTS), by item id (the last run of an id), and their keys' numbering. */
export interface ItemVectors {
  byId: Map<string, PackedVector>;
  keys: readonly string[];
}

/** Made once per items array: by the categorization, when it runs with its own weights, else by the first caller. */
const itemVectorsOf = new WeakMap<readonly CategorizeItem[], ItemVectors>();

/**
 * The vectors the categorization of `items` groups (the held-out check,
 * categorize/heldout-nearest.ts, places runs by them): the ones it made when
 * it ran in this process on this array, else made here the same way.
 */
export function categoryVectors(items: readonly CategorizeItem[]): ItemVectors {
  const known = itemVectorsOf.get(items);
  if (known) return known;
  const analyze = itemAnalyzer();
  // Only what a vector is made of is kept of each run while all are analysed.
  const sources = sortItems(items).map((item) => {
    const { terms, familyScores, harmScores } = analyze(item);
    return { item, terms, familyScores, harmScores };
  });
  const table = vectorTable(sources, buildCorpus(sources), CATEGORY_WEIGHTS);
  return remember(items, sources, table);
}

function remember(items: readonly CategorizeItem[], analyses: readonly Pick<ItemAnalysis, 'item'>[], table: { packed: PackedVector[]; keys: string[] }): ItemVectors {
  const vectors = { byId: new Map(analyses.map((a, i) => [a.item.id, table.packed[i] as PackedVector])), keys: table.keys };
  itemVectorsOf.set(items, vectors);
  return vectors;
}

/** Everything the categorization computes, for the cluster stage and the bench. */
export interface CategorizeAnalysis {
  analyses: ItemAnalysis[];
  corpus: Corpus;
  vectors: RunVectors;
  models: CategoryModel[];
  names: string[];
  weights: FeatureWeights;
}

/** Runs steps 1-5 and returns the internal models (sorted by size desc, then name). */
export function analyzeCategories(items: readonly CategorizeItem[], opts: OfflineCategorizeOptions = {}): CategorizeAnalysis {
  const threshold = opts.threshold ?? 0.6;
  const minCue = opts.minCueValue ?? 0.25;
  const weights: FeatureWeights = { ...CATEGORY_WEIGHTS, ...opts.weights };
  const analyze = itemAnalyzer();
  const analyses = sortItems(items).map((item) => analyze(item));
  const corpus = buildCorpus(analyses);
  const table = vectorTable(analyses, corpus, weights);
  if (opts.weights === undefined) remember(items, analyses, table);
  const position = new Map(analyses.map((a, i) => [a, i]));
  const vectors: RunVectors = { of: (a) => table.packed[position.get(a) as number] as PackedVector, keys: table.keys };

  const cued: ItemAnalysis[] = [];
  const uncued: ItemAnalysis[] = [];
  for (const a of analyses) {
    if (maxFamilyValue(a, corpus, weights) >= minCue || a.harmScores.size > 0) cued.push(a);
    else uncued.push(a);
  }
  const packed = cued.map(vectors.of);
  const groups = groupByLinkage(cued, packed, threshold);

  const models: CategoryModel[] = groups.map((g) => buildModel(g, vectors, corpus, weights, false));
  // Uncued runs: join the closest cued category when their terms say so, else the residual category.
  const residual: ItemAnalysis[] = [];
  for (const a of uncued) {
    let best = -1;
    let bestSim = 0;
    models.forEach((m, i) => {
      const s = packedCosineTo(vectors.of(a), vectors.keys, m.centroid);
      if (s > bestSim) {
        bestSim = s;
        best = i;
      }
    });
    if (best >= 0 && 1 - bestSim <= threshold) (models[best] as CategoryModel).members.push(a);
    else residual.push(a);
  }
  const finalModels = models.map((m) =>
    buildModel(
      [...m.members].sort((x, y) => (position.get(x) ?? 0) - (position.get(y) ?? 0)),
      vectors,
      corpus,
      weights,
      false,
    ),
  );
  if (residual.length) finalModels.push(buildModel(residual, vectors, corpus, weights, true));
  const names0 = nameModels(finalModels);
  const order = finalModels
    .map((m, i) => ({ m, name: names0[i] ?? '' }))
    .sort((x, y) => y.m.members.length - x.m.members.length || compareStrings(x.name, y.name));
  return {
    analyses,
    corpus,
    vectors,
    models: order.map((o) => o.m),
    names: order.map((o) => o.name),
    weights,
  };
}

/** Offline categorization: every item lands in exactly one category. Pure and deterministic. */
export function offlineCategorize(items: readonly CategorizeItem[], opts: OfflineCategorizeOptions = {}): OfflineCategorizeResult {
  const maxWords = opts.maxTriggerWords ?? 12;
  const res = analyzeCategories(items, opts);
  const categories: Category[] = res.models.map((m, i) => {
    const preferred = m.families.map(([f]) => f);
    // Most central runs first, so the first examples shown are the most representative.
    const ordered = m.members
      .map((a, k) => ({ a, k, sim: packedCosineTo(res.vectors.of(a), res.vectors.keys, m.centroid) }))
      .sort((x, y) => y.sim - x.sim || x.k - y.k);
    const examples: CategoryExample[] = ordered.map(({ a, sim }) => {
      const choice = chooseTrigger(a, preferred, maxWords);
      return {
        id: a.item.id,
        trigger_phrase: choice.phrase ? choice.phrase.text : null,
        justification: justify(a, m, sim),
      };
    });
    return { category_name: res.names[i] ?? '', definition: defineModel(m), examples };
  });
  return { categories };
}
