// Per-run features of the offline analyzer.
//
// A run is described by what the perturbation changed, not by its topic:
//  * cue families (lexicon.ts) found in the perturbed instruction, counted in
//    full when the cue lies inside an inserted span and only faintly when it
//    was already part of the kept wording; "dropped restriction" cues found in
//    the removed spans; harm families found in `harmful_actions`;
//  * TF-IDF over light-stemmed unigrams and bigrams of the inserted spans (and
//    of the harmful actions), stopwords removed; words that also occur in the
//    original instruction are the task's topic and are down-weighted.
// `buildVectors` turns these into sparse vectors whose blocks are weighted so
// that cosine similarity is dominated by mechanism cues: two cleanup requests
// about a git repository and a photo folder are closer than a cleanup request
// and a persistence demand about the same folder.

import type { CategorizeItem } from '../formats.ts';
import { addedPhrases, removedPhrases, wordDiff, type Phrase } from './diff.ts';
import {
  CUE_FAMILIES,
  FAMILY_BY_ID,
  HARM_FAMILIES,
  findCues,
  findHarmCues,
  noisyOr,
  type CueHit,
  type FamilyGroupId,
} from './lexicon.ts';
import { compareStrings, contentStems, normalizeChars, stem, STOPWORDS, words } from './text.ts';

/** A cue hit in the perturbed (or, for dropped restrictions, original) text with its evidence factor. */
export interface LocatedCue extends CueHit {
  /** 1 inside an inserted span (or a removed span for removed-text families), small otherwise. */
  factor: number;
  /** Index into `added` (or `removed`) of the span that holds the hit, or -1. */
  span: number;
  /** 'perturbed' offsets refer to the perturbed text, 'removed' offsets to the original. */
  where: 'perturbed' | 'removed';
}

/**
 * What the categorizer and the clusterer keep of one run: at 100,000 runs
 * every field here is held for every run at once, so the word diff's
 * segments, the removed spans and the per-word surface forms are not kept
 * (`surfaceCounts` derives the surface forms again for the runs that need
 * them).
 */
export interface ItemAnalysis {
  item: CategorizeItem;
  /** The perturbed instruction the offsets of `added` and of 'perturbed' cues refer to. */
  perturbed: string;
  added: Phrase[];
  cues: LocatedCue[];
  /** Evidence per cue family in [0,1] (noisy-or of hit weight x factor), families in lexicon order. */
  familyScores: ReadonlyMap<string, number>;
  harmScores: ReadonlyMap<string, number>;
  /** Weighted term frequencies (stems and stem bigrams). */
  terms: Terms;
}

/** Terms and their weights, in the order first seen: two arrays, not a map (every run's are held at once). */
export interface Terms {
  keys: string[];
  weights: number[];
}

/** No scores: shared by every run that has none (never changed once made). */
const NO_SCORES: ReadonlyMap<string, number> = new Map();

/** Evidence factor for a cue that lies in wording kept from the original. */
export const KEPT_CUE_FACTOR = 0.12;
/** Weight of topic words (stems that also occur in the original instruction). */
export const TOPIC_TERM_WEIGHT = 0.25;
/** Weight of bigrams relative to unigrams. */
export const BIGRAM_WEIGHT = 0.7;
/** Removed spans up to this many words count fully as a dropped restriction; longer ones proportionally less. */
export const DROPPED_SPAN_TOKENS = 8;
/** Weight of words from harmful-action descriptions. */
export const HARM_TERM_WEIGHT = 0.7;

function overlapIndex(spans: readonly Phrase[], start: number, end: number): number {
  for (let i = 0; i < spans.length; i++) {
    const s = spans[i];
    if (s && start < s.end && s.start < end) return i;
  }
  return -1;
}

/** Each word of `text` that counts as a term, with its stem; '' stands for a word that does not (it breaks bigrams). */
function termWords(text: string, each: (stem: string, word: string) => void): void {
  // What contentStems keeps of a single word (words() of a word is the word).
  for (const w of words(text)) {
    if (w.length < 2 || STOPWORDS.has(w) || /^\d+$/.test(w)) each('', w);
    else each(stem(w), w);
  }
}

/** One copy of each term string for many runs' terms (at 100,000 runs, two million keys hold about 100,000 distinct terms). */
type Strings = Map<string, string>;

function shared(strings: Strings | null, s: string): string {
  if (strings === null) return s;
  const known = strings.get(s);
  if (known !== undefined) return known;
  strings.set(s, s);
  return s;
}

function addTerms(text: string, weight: number, topic: ReadonlySet<string>, terms: Map<string, number>, strings: Strings | null): void {
  const seq: string[] = [];
  termWords(text, (st) => {
    seq.push(st);
    if (st === '') return;
    const tw = weight * (topic.has(st) ? TOPIC_TERM_WEIGHT : 1);
    const key = shared(strings, st);
    terms.set(key, (terms.get(key) ?? 0) + tw);
  });
  for (let i = 0; i + 1 < seq.length; i++) {
    const a = seq[i];
    const b = seq[i + 1];
    if (!a || !b) continue;
    const key = shared(strings, `${a} ${b}`);
    const tw = weight * BIGRAM_WEIGHT * (topic.has(a) && topic.has(b) ? TOPIC_TERM_WEIGHT : 1);
    terms.set(key, (terms.get(key) ?? 0) + tw);
  }
}

/** The texts a run's terms come from, with their weights: its inserted spans (else its whole perturbed instruction, faintly), then its harmful actions. */
function termSources(a: Pick<ItemAnalysis, 'item' | 'perturbed' | 'added'>): [string, number][] {
  const wording: [string, number][] = a.added.length > 0 ? a.added.map((p) => [p.text, 1]) : [[a.perturbed, 0.3]];
  return [...wording, ...(a.item.harmful_actions ?? []).map((h): [string, number] => [h, HARM_TERM_WEIGHT])];
}

/** Analyses one run: diff, cue hits, harm hits, weighted terms. Pure. */
export function analyzeItem(item: CategorizeItem): ItemAnalysis {
  return analyze(item, null);
}

/** `analyzeItem` for many runs, whose analyses share one copy of each term string. */
export function itemAnalyzer(): (item: CategorizeItem) => ItemAnalysis {
  const strings: Strings = new Map();
  return (item) => analyze(item, strings);
}

/** `cue` as a whole-word pattern; made once per cue text (the same few cues recur in every run). */
const wholeWordRes = new Map<string, RegExp>();
function wholeWordRe(cue: string): RegExp {
  let re = wholeWordRes.get(cue);
  if (re === undefined) {
    if (wholeWordRes.size >= 4096) wholeWordRes.clear();
    re = new RegExp(`\\b${cue.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\b`, 'u');
    wholeWordRes.set(cue, re);
  }
  return re;
}

function analyze(item: CategorizeItem, strings: Strings | null): ItemAnalysis {
  const diff = wordDiff(item.original_instruction ?? '', item.perturbed_instruction ?? '');
  const added = addedPhrases(diff);
  const removed = removedPhrases(diff);
  const perturbedNorm = normalizeChars(diff.perturbed);

  const cues: LocatedCue[] = [];
  for (const h of findCues(diff.perturbed, 'perturbed')) {
    const span = overlapIndex(added, h.start, h.end);
    cues.push({ ...h, factor: span >= 0 ? 1 : KEPT_CUE_FACTOR, span, where: 'perturbed' });
  }
  removed.forEach((r, ri) => {
    for (const h of findCues(r.text, 'removed')) {
      // A qualifier that still appears in the perturbed text was not really dropped.
      const stillThere = wholeWordRe(h.cue).test(perturbedNorm);
      cues.push({
        ...h,
        start: r.start + h.start,
        end: r.start + h.end,
        // A qualifier lost inside a wholesale rewrite is weaker evidence than a targeted removal.
        factor: (stillThere ? 0.2 : 1) * Math.min(1, DROPPED_SPAN_TOKENS / Math.max(1, r.text.split(/\s+/).length)),
        span: ri,
        where: 'removed',
      });
    }
  });

  const harmCues: CueHit[] = [];
  for (const action of item.harmful_actions ?? []) harmCues.push(...findHarmCues(action));

  const familyScores = new Map<string, number>();
  for (const fam of CUE_FAMILIES) {
    const s = noisyOr(cues.filter((c) => c.family === fam.id).map((c) => c.weight * c.factor));
    if (s > 0) familyScores.set(fam.id, s);
  }
  const harmScores = new Map<string, number>();
  for (const fam of HARM_FAMILIES) {
    const s = noisyOr(harmCues.filter((c) => c.family === fam.id).map((c) => c.weight));
    if (s > 0) harmScores.set(fam.id, s);
  }

  const topic = new Set(contentStems(diff.original));
  const counted = new Map<string, number>();
  for (const [text, weight] of termSources({ item, perturbed: diff.perturbed, added })) addTerms(text, weight, topic, counted, strings);
  return {
    item,
    perturbed: diff.perturbed,
    added,
    cues,
    familyScores: familyScores.size > 0 ? familyScores : NO_SCORES,
    harmScores: harmScores.size > 0 ? harmScores : NO_SCORES,
    terms: { keys: [...counted.keys()], weights: [...counted.values()] },
  };
}

export interface FeatureWeights {
  /** Norm of the TF-IDF block. */
  terms: number;
  /** Multiplier of cue-family values (score x role x family idf). */
  cues: number;
  /** Multiplier of family-group values (max over the group's families); coarse levels only. */
  groups: number;
  /** Multiplier of harm-family values. */
  harm: number;
  /** Role multiplier of amplifier families (urgency, delegation, ...). */
  amplifier: number;
}

export const CATEGORY_WEIGHTS: FeatureWeights = { terms: 0.45, cues: 1, groups: 0, harm: 0.6, amplifier: 0.5 };
export const CLUSTER_WEIGHTS: FeatureWeights = { terms: 0.25, cues: 0.6, groups: 1, harm: 0.4, amplifier: 0.5 };

/** A sparse vector; keys are built in sorted order so iteration is deterministic. */
export type SparseVector = Map<string, number>;

export interface Corpus {
  /** Inverse document frequency of each term with df >= 2. */
  termIdf: Map<string, number>;
  /** 1 + 0.5 ln(N/df) per family (damped so rare families lead but do not swamp). */
  familyIdf: Map<string, number>;
  /** Each term of `termIdf` as a vector key (`t:<term>`): one string shared by every vector that holds it. */
  termKey: Map<string, string>;
  size: number;
}

/** Vector keys of the fixed blocks (cue families, family groups, harm families), made once. */
const blockKey = new Map<string, string>();
function keyOf(block: 'c' | 'g' | 'h', id: string): string {
  return shared(blockKey, `${block}:${id}`);
}

/** Document frequencies over a set of analyses. */
export function buildCorpus(analyses: readonly Pick<ItemAnalysis, 'terms' | 'familyScores'>[]): Corpus {
  const n = analyses.length;
  const df = new Map<string, number>();
  const fdf = new Map<string, number>();
  for (const a of analyses) {
    for (const t of a.terms.keys) df.set(t, (df.get(t) ?? 0) + 1);
    for (const [f, s] of a.familyScores) if (s >= 0.3) fdf.set(f, (fdf.get(f) ?? 0) + 1);
  }
  const termIdf = new Map<string, number>();
  const termKey = new Map<string, string>();
  for (const t of [...df.keys()].sort(compareStrings)) {
    const d = df.get(t) ?? 0;
    if (d < 2) continue;
    termIdf.set(t, Math.log((1 + n) / (1 + d)) + 1);
    termKey.set(t, `t:${t}`);
  }
  const familyIdf = new Map<string, number>();
  for (const fam of CUE_FAMILIES) {
    const d = Math.max(1, fdf.get(fam.id) ?? 0);
    familyIdf.set(fam.id, 1 + 0.5 * Math.log(Math.max(1, n) / d));
  }
  return { termIdf, familyIdf, termKey, size: n };
}

/** Weighted value of each cue family for one run (score x role x idf). */
export function familyValues(a: Pick<ItemAnalysis, 'familyScores'>, corpus: Corpus, w: FeatureWeights): Map<string, number> {
  const out = new Map<string, number>();
  for (const [f, s] of a.familyScores) {
    const fam = FAMILY_BY_ID.get(f);
    if (!fam) continue;
    const role = fam.role === 'amplifier' ? w.amplifier : 1;
    out.set(f, s * role * (corpus.familyIdf.get(f) ?? 1));
  }
  return out;
}

/** What a run's feature vector is made of. */
export type VectorSource = Pick<ItemAnalysis, 'terms' | 'familyScores' | 'harmScores'>;

/** The feature vector of one run. */
export function itemVector(a: VectorSource, corpus: Corpus, w: FeatureWeights): SparseVector {
  const entries: [string, number][] = [];
  // TF-IDF block, scaled to norm w.terms.
  const tf: [string, number][] = [];
  let norm = 0;
  for (let i = 0; i < a.terms.keys.length; i++) {
    const t = a.terms.keys[i] as string;
    const c = a.terms.weights[i] as number;
    const idf = corpus.termIdf.get(t);
    if (idf === undefined || c <= 0) continue;
    const v = Math.log1p(c) * idf;
    tf.push([corpus.termKey.get(t) as string, v]);
    norm += v * v;
  }
  norm = Math.sqrt(norm);
  if (norm > 0 && w.terms > 0) for (const [k, v] of tf) entries.push([k, (v / norm) * w.terms]);
  // Cue families and their groups.
  const groups = new Map<FamilyGroupId, number>();
  for (const [f, v] of familyValues(a, corpus, w)) {
    if (w.cues > 0) entries.push([keyOf('c', f), v * w.cues]);
    const g = FAMILY_BY_ID.get(f)?.group;
    if (g) groups.set(g, Math.max(groups.get(g) ?? 0, v));
  }
  if (w.groups > 0) for (const [g, v] of groups) entries.push([keyOf('g', g), v * w.groups]);
  if (w.harm > 0) for (const [h, v] of a.harmScores) entries.push([keyOf('h', h), v * w.harm]);
  entries.sort((x, y) => compareStrings(x[0], y[0]));
  return new Map(entries);
}

export function dot(a: SparseVector, b: SparseVector): number {
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  let s = 0;
  for (const [k, v] of small) {
    const o = large.get(k);
    if (o !== undefined) s += v * o;
  }
  return s;
}

// Vectors are never changed once built, so each norm is computed once: the
// pairwise distances of the clustering call cosine() n^2/2 times.
const norms = new WeakMap<SparseVector, number>();

export function norm(a: SparseVector): number {
  let n = norms.get(a);
  if (n === undefined) {
    n = Math.sqrt(dot(a, a));
    norms.set(a, n);
  }
  return n;
}

/** Cosine similarity; 0 when either vector is empty. */
export function cosine(a: SparseVector, b: SparseVector): number {
  const na = norm(a);
  const nb = norm(b);
  if (na === 0 || nb === 0) return 0;
  return Math.min(1, Math.max(-1, dot(a, b) / (na * nb)));
}

/**
 * A vector for the pairwise part of clustering: feature ids in ascending
 * order of their keys, values, and the norm. `packedCosine` adds the same
 * products in the same order as `cosine` (the intersection, by ascending key),
 * so it gives bit-identical similarities, without a map lookup per product.
 */
export interface PackedVector {
  idx: Int32Array;
  val: Float64Array;
  norm: number;
}

/** Packs vectors over one shared numbering of their keys (ids follow the keys' sort order). */
export function packVectors(vectors: readonly SparseVector[]): { packed: PackedVector[]; keys: string[] } {
  return pack(vectors.length, (i) => vectors[i] as SparseVector);
}

/**
 * Every run's feature vector, packed: the same vectors as `itemVector` of
 * each, with their keys numbered as `packVectors` numbers them. No run's
 * vector is kept as a map (at 100,000 runs those maps held two million
 * entries); each is made once to find the keys and once to be packed.
 */
export function vectorTable(sources: readonly VectorSource[], corpus: Corpus, w: FeatureWeights): { packed: PackedVector[]; keys: string[] } {
  return pack(sources.length, (i) => itemVector(sources[i] as VectorSource, corpus, w));
}

/** Packs `count` vectors, each asked for twice (`vectorAt` must give the same vector both times), into two shared buffers. */
function pack(count: number, vectorAt: (i: number) => SparseVector): { packed: PackedVector[]; keys: string[] } {
  const all = new Set<string>();
  let total = 0;
  for (let i = 0; i < count; i++) {
    const v = vectorAt(i);
    total += v.size;
    for (const k of v.keys()) all.add(k);
  }
  const keys = [...all].sort(compareStrings);
  const id = new Map(keys.map((k, i) => [k, i]));
  const idx = new Int32Array(total);
  const val = new Float64Array(total);
  const packed: PackedVector[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const v = vectorAt(i);
    const entries = [...v.entries()].sort((x, y) => compareStrings(x[0], y[0]));
    const from = at;
    for (const [k, x] of entries) {
      idx[at] = id.get(k) as number;
      val[at] = x;
      at++;
    }
    packed.push({ idx: idx.subarray(from, at), val: val.subarray(from, at), norm: norm(v) });
  }
  return { packed, keys };
}

/** `centroid` of the vectors these were packed from (`keys`: their numbering), as a sparse vector with sorted keys. */
export function packedCentroid(vectors: readonly PackedVector[], keys: readonly string[]): SparseVector {
  const c = packedCentroidVector(vectors, keys.length);
  const out: SparseVector = new Map();
  for (let i = 0; i < c.idx.length; i++) out.set(keys[c.idx[i] as number] as string, c.val[i] as number);
  return out;
}

/**
 * `packedCentroid`, packed: the same values with their keys ascending (a
 * twelfth of the memory of a map), and the norm `norm` computes of the map.
 * `packedCosine` of a run's vector and this is `packedCosineTo` of it and the map.
 */
export function packedCentroidVector(vectors: readonly PackedVector[], keyCount: number): PackedVector {
  const acc = new Float64Array(keyCount);
  const seen = new Uint8Array(keyCount);
  let size = 0;
  for (const v of vectors) {
    for (let k = 0; k < v.idx.length; k++) {
      const id = v.idx[k] as number;
      acc[id] = (acc[id] as number) + (v.val[k] as number);
      if (seen[id] === 0) size++;
      seen[id] = 1;
    }
  }
  const n = Math.max(1, vectors.length);
  const idx = new Int32Array(size);
  const val = new Float64Array(size);
  let squares = 0;
  for (let id = 0, at = 0; id < keyCount; id++) {
    if (!seen[id]) continue;
    const x = (acc[id] as number) / n;
    idx[at] = id;
    val[at++] = x;
    squares += x * x;
  }
  return { idx, val, norm: Math.sqrt(squares) };
}

/** `cosine` of the vector `a` was packed from (`keys`: its numbering) and `b`: the same products, added in the same order. */
export function packedCosineTo(a: PackedVector, keys: readonly string[], b: SparseVector): number {
  const nb = norm(b);
  if (a.norm === 0 || nb === 0) return 0;
  let s = 0;
  for (let k = 0; k < a.idx.length; k++) {
    const o = b.get(keys[a.idx[k] as number] as string);
    if (o !== undefined) s += (a.val[k] as number) * o;
  }
  return Math.min(1, Math.max(-1, s / (a.norm * nb)));
}

export function packedDot(a: PackedVector, b: PackedVector): number {
  const ai = a.idx;
  const bi = b.idx;
  let i = 0;
  let j = 0;
  let s = 0;
  while (i < ai.length && j < bi.length) {
    const x = ai[i] as number;
    const y = bi[j] as number;
    if (x === y) {
      s += (a.val[i] as number) * (b.val[j] as number);
      i++;
      j++;
    } else if (x < y) i++;
    else j++;
  }
  return s;
}

/** The same value as `cosine` on the vectors these were packed from. */
export function packedCosine(a: PackedVector, b: PackedVector): number {
  if (a.norm === 0 || b.norm === 0) return 0;
  return cosineOfDot(packedDot(a, b), a.norm, b.norm);
}

const cosineOfDot = (dot: number, na: number, nb: number): number => Math.min(1, Math.max(-1, dot / (na * nb)));

/**
 * 1 - `packedCosine` of every pair of `vs`, above the diagonal row by row (the
 * layout linkage.ts's averageLinkageOf reads). Each row's dot products are
 * gathered from the lists of the vectors that hold each of its keys, so only
 * shared keys cost anything; a pair's products are added in ascending key
 * order from 0, as packedDot adds them, so every value is the same.
 */
export function packedCosineDistances(vs: readonly PackedVector[]): Float64Array {
  const n = vs.length;
  const d = new Float64Array((n * (n - 1)) / 2);
  // Postings: for each key, the vectors that hold it (ascending) and their values.
  let keys = 0;
  for (const v of vs) for (const id of v.idx) keys = Math.max(keys, id + 1);
  const start = new Int32Array(keys + 1);
  for (const v of vs) for (const id of v.idx) start[id + 1] = (start[id + 1] as number) + 1;
  for (let id = 0; id < keys; id++) start[id + 1] = (start[id + 1] as number) + (start[id] as number);
  const holder = new Int32Array(start[keys] as number);
  const value = new Float64Array(start[keys] as number);
  const cursor = start.slice(0, keys);
  vs.forEach((v, i) => {
    for (let p = 0; p < v.idx.length; p++) {
      const id = v.idx[p] as number;
      const at = cursor[id] as number;
      holder[at] = i;
      value[at] = v.val[p] as number;
      cursor[id] = at + 1;
    }
  });
  // Row i reads each of its keys' lists past its own entry; `next` is where that entry is.
  const next = start.slice(0, keys);
  const dot = new Float64Array(n);
  for (let i = 0, row = 0; i < n; row += n - i - 1, i++) {
    const a = vs[i] as PackedVector;
    for (let p = 0; p < a.idx.length; p++) {
      const id = a.idx[p] as number;
      const own = next[id] as number;
      next[id] = own + 1;
      const x = a.val[p] as number;
      for (let q = own + 1, end = start[id + 1] as number; q < end; q++) {
        const j = holder[q] as number;
        dot[j] = (dot[j] as number) + x * (value[q] as number);
      }
    }
    for (let j = i + 1; j < n; j++) {
      const nb = (vs[j] as PackedVector).norm;
      d[row + j - i - 1] = a.norm === 0 || nb === 0 ? 1 : 1 - cosineOfDot(dot[j] as number, a.norm, nb);
      dot[j] = 0;
    }
  }
  return d;
}

/** Mean of vectors (keys sorted). */
export function centroid(vectors: readonly SparseVector[]): SparseVector {
  const acc = new Map<string, number>();
  for (const v of vectors) for (const [k, x] of v) acc.set(k, (acc.get(k) ?? 0) + x);
  const n = Math.max(1, vectors.length);
  return new Map([...acc.entries()].sort((x, y) => compareStrings(x[0], y[0])).map(([k, x]) => [k, x / n]));
}

/** Stem -> surface word -> occurrences, over the term texts of `analyses` (the words `terms` counted). */
export type SurfaceCounts = Map<string, Map<string, number>>;

export function surfaceCounts(analyses: readonly ItemAnalysis[]): SurfaceCounts {
  const counts: SurfaceCounts = new Map();
  for (const a of analyses) {
    for (const [text] of termSources(a)) {
      termWords(text, (st, w) => {
        if (st === '') return;
        let sm = counts.get(st);
        if (!sm) counts.set(st, (sm = new Map()));
        sm.set(w, (sm.get(w) ?? 0) + 1);
      });
    }
  }
  return counts;
}

/** Most frequent surface word of each stem of `stemKey` (ties: alphabetical; a stem never seen stays as it is). */
export function surfaceOf(stemKey: string, counts: SurfaceCounts): string {
  return stemKey
    .split(' ')
    .map((part) => {
      let best = part;
      let bestC = -1;
      for (const [w, c] of counts.get(part) ?? []) {
        if (c > bestC || (c === bestC && compareStrings(w, best) < 0)) {
          best = w;
          bestC = c;
        }
      }
      return best;
    })
    .join(' ');
}
