// Word-level diff of an original instruction against its perturbed version.
//
// Tokens are whitespace-separated words that keep their punctuation attached
// (see text.ts); two tokens match when their keys (normalised, edge
// punctuation stripped) are equal, so `"image.docx"` matches `'image.docx',`.
// The alignment is a longest common subsequence: computed by dynamic
// programming with a fixed tie-break while the table stays small (a few
// thousand words per side), else in linear space by Myers' O((n+m)d)
// algorithm, with a work limit. So memory stays bounded for any input, and an
// absurd one (two huge texts that differ everywhere, a text of megabytes) gets
// a coarser diff that says so (`WordDiff.limited`) instead of gigabytes and
// minutes. Then a "semantic" clean-up: a
// short run of kept filler words (stopwords/punctuation) wedged between two
// changes is treated as changed too, so an inserted clause is not cut into
// pieces by an accidental match on "the" or "and".
//
// Every segment carries character offsets into the text it comes from (the
// perturbed text for `keep`/`add`, the original for `remove`), so the phrases
// returned are exact substrings and can be quoted verbatim.

import { isFillerKey, tokenize, type Token } from './text.ts';

export type DiffOp = 'keep' | 'add' | 'remove';

export interface DiffSegment {
  op: DiffOp;
  /** Exact substring of the perturbed text (keep/add) or of the original (remove). */
  text: string;
  start: number;
  end: number;
  tokenCount: number;
}

export interface WordDiff {
  original: string;
  perturbed: string;
  segments: DiffSegment[];
  addedTokens: number;
  removedTokens: number;
  keptTokens: number;
  /**
   * Present only when a limit of the word diff was reached (texts longer than
   * MAX_DIFF_CHARS, or alignment work beyond MAX_ALIGN_WORK): what was done
   * instead, in words a summary can quote.
   */
  limited?: string;
}

export interface Phrase {
  text: string;
  start: number;
  end: number;
}

export interface Step {
  op: DiffOp;
  /** index into original tokens (remove/keep) */
  a: number;
  /** index into perturbed tokens (add/keep) */
  b: number;
}

/**
 * Largest dynamic-programming table (cells) the exact alignment may use: 4M
 * cells, 16 MiB. Instructions of a few thousand words stay under it, and get
 * the same alignment as always; larger ones use the linear-space alignment.
 */
export const DP_CELL_BUDGET = 1 << 22;
/**
 * Work (diagonal steps) the linear-space alignment may spend on one diff:
 * about a second. Two long texts that differ nearly everywhere would need
 * (n + m) x d steps; past the budget, what is left unaligned is reported as
 * one removal and one addition (`WordDiff.limited` says so).
 */
export const MAX_ALIGN_WORK = 50_000_000;
/**
 * Longest text (characters, each side) the word diff reads at all: 2 MB, some
 * 300,000 words. A longer instruction is not split into words: it counts as
 * removed and re-added whole, and `WordDiff.limited` says so.
 */
export const MAX_DIFF_CHARS = 2_000_000;

/** Steps of one alignment; `limited` when the work budget cut it short. */
export interface Alignment {
  steps: Step[];
  limited: boolean;
}

/** Same keys, same small integers: the alignment compares numbers, not strings. */
function intern(a: readonly string[], b: readonly string[]): [Int32Array, Int32Array] {
  const ids = new Map<string, number>();
  const of = (keys: readonly string[]) => {
    const out = new Int32Array(keys.length);
    keys.forEach((k, i) => {
      let id = ids.get(k);
      if (id === undefined) ids.set(k, (id = ids.size));
      out[i] = id;
    });
    return out;
  };
  return [of(a), of(b)];
}

/**
 * LCS alignment of two key sequences: edit steps in order. `cellBudget`
 * chooses the algorithm (tests lower it to run the linear-space one on small inputs).
 */
export function lcsSteps(aKeys: readonly string[], bKeys: readonly string[], cellBudget = DP_CELL_BUDGET): Alignment {
  const [a, b] = intern(aKeys, bKeys);
  const n = a.length;
  const m = b.length;
  // Trim common prefix/suffix first: cheap and keeps the table small.
  let pre = 0;
  while (pre < n && pre < m && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < n - pre && suf < m - pre && a[n - 1 - suf] === b[m - 1 - suf]) suf++;
  const an = n - pre - suf;
  const bm = m - pre - suf;
  const steps: Step[] = [];
  for (let k = 0; k < pre; k++) steps.push({ op: 'keep', a: k, b: k });
  let limited = false;
  if ((an + 1) * (bm + 1) <= cellBudget) tableSteps(a, b, pre, an, bm, steps);
  else limited = linearSteps(a, b, pre, pre + an, pre, pre + bm, steps);
  for (let k = 0; k < suf; k++) steps.push({ op: 'keep', a: n - suf + k, b: m - suf + k });
  return { steps, limited };
}

/** The exact alignment over a table of (an+1)(bm+1) LCS lengths, with a fixed tie-break. */
function tableSteps(a: Int32Array, b: Int32Array, pre: number, an: number, bm: number, steps: Step[]): void {
  const w = bm + 1;
  // table[i*w+j] = LCS length of a[pre+i..] and b[pre+j..] (suffix form).
  const table = new Uint32Array((an + 1) * w);
  for (let i = an - 1; i >= 0; i--) {
    for (let j = bm - 1; j >= 0; j--) {
      table[i * w + j] =
        a[pre + i] === b[pre + j]
          ? (table[(i + 1) * w + j + 1] ?? 0) + 1
          : Math.max(table[(i + 1) * w + j] ?? 0, table[i * w + j + 1] ?? 0);
    }
  }
  let i = 0;
  let j = 0;
  while (i < an || j < bm) {
    if (i < an && j < bm && a[pre + i] === b[pre + j]) {
      steps.push({ op: 'keep', a: pre + i, b: pre + j });
      i++;
      j++;
    } else if (j >= bm || (i < an && (table[(i + 1) * w + j] ?? 0) >= (table[i * w + j + 1] ?? 0))) {
      // Tie-break: removals before additions within a changed region.
      steps.push({ op: 'remove', a: pre + i, b: -1 });
      i++;
    } else {
      steps.push({ op: 'add', a: -1, b: pre + j });
      j++;
    }
  }
}

/**
 * An LCS alignment in linear space (Myers' O((n+m)d) algorithm, split at the
 * middle of a shortest edit path and recursing on both halves), within
 * MAX_ALIGN_WORK. Each changed region lists its removals, then its additions,
 * as the exact alignment does. Returns whether the budget cut it short.
 */
function linearSteps(a: Int32Array, b: Int32Array, aLo: number, aHi: number, bLo: number, bHi: number, steps: Step[]): boolean {
  const budget = { left: MAX_ALIGN_WORK, limited: false };
  const raw: Step[] = [];
  alignRange(a, b, aLo, aHi, bLo, bHi, raw, budget);
  // Regroup each changed region: removals (in order), then additions (in order).
  let k = 0;
  while (k < raw.length) {
    const s = raw[k] as Step;
    if (s.op === 'keep') {
      steps.push(s);
      k++;
      continue;
    }
    let e = k;
    while (e < raw.length && (raw[e] as Step).op !== 'keep') e++;
    const region = raw.slice(k, e);
    steps.push(...region.filter((x) => x.op === 'remove'), ...region.filter((x) => x.op === 'add'));
    k = e;
  }
  return budget.limited;
}

function alignRange(a: Int32Array, b: Int32Array, aLo: number, aHi: number, bLo: number, bHi: number, out: Step[], budget: { left: number; limited: boolean }): void {
  let pre = 0;
  while (aLo + pre < aHi && bLo + pre < bHi && a[aLo + pre] === b[bLo + pre]) pre++;
  let suf = 0;
  while (aHi - suf > aLo + pre && bHi - suf > bLo + pre && a[aHi - 1 - suf] === b[bHi - 1 - suf]) suf++;
  for (let k = 0; k < pre; k++) out.push({ op: 'keep', a: aLo + k, b: bLo + k });
  const x0 = aLo + pre;
  const x1 = aHi - suf;
  const y0 = bLo + pre;
  const y1 = bHi - suf;
  if (x0 === x1 || y0 === y1) {
    for (let x = x0; x < x1; x++) out.push({ op: 'remove', a: x, b: -1 });
    for (let y = y0; y < y1; y++) out.push({ op: 'add', a: -1, b: y });
  } else {
    const split = middleOfPath(a, b, x0, x1, y0, y1, budget);
    if (split === null) {
      // No common word, or out of budget: the whole region is replaced.
      for (let x = x0; x < x1; x++) out.push({ op: 'remove', a: x, b: -1 });
      for (let y = y0; y < y1; y++) out.push({ op: 'add', a: -1, b: y });
    } else {
      alignRange(a, b, x0, split[0], y0, split[1], out, budget);
      alignRange(a, b, split[0], x1, split[1], y1, out, budget);
    }
  }
  for (let k = suf; k > 0; k--) out.push({ op: 'keep', a: aHi - k, b: bHi - k });
}

/**
 * A point on a shortest edit path of a[x0..x1) against b[y0..y1), found by
 * searching from both ends until the paths overlap (Myers 1986, section 4b),
 * in O(n+m) space. Null when the two ranges share no word, or when the work
 * budget runs out (then `budget.limited`).
 */
function middleOfPath(a: Int32Array, b: Int32Array, x0: number, x1: number, y0: number, y1: number, budget: { left: number; limited: boolean }): [number, number] | null {
  const n = x1 - x0;
  const m = y1 - y0;
  const maxD = Math.ceil((n + m) / 2);
  const offset = maxD + 1;
  const size = 2 * maxD + 3;
  // fwd[offset + k]: furthest x reached on diagonal k = x - y from the start (-1: not yet);
  // bwd[offset + k]: the same from the end, in reversed coordinates (x counted from x1, y from y1).
  const fwd = new Int32Array(size).fill(-1);
  const bwd = new Int32Array(size).fill(-1);
  fwd[offset + 1] = 0;
  bwd[offset + 1] = 0;
  const delta = n - m;
  // With an odd delta the paths first meet during a forward step, else during a backward one.
  const odd = (delta & 1) !== 0;
  // Diagonals that ran off the rectangle are not extended again.
  let fStart = 0;
  let fEnd = 0;
  let bStart = 0;
  let bEnd = 0;
  for (let d = 0; d <= maxD; d++) {
    budget.left -= 2 * d + 1;
    if (budget.left < 0) {
      budget.limited = true;
      return null;
    }
    for (let k = -d + fStart; k <= d - fEnd; k += 2) {
      const i = offset + k;
      let x = k === -d || (k !== d && (fwd[i - 1] as number) < (fwd[i + 1] as number)) ? (fwd[i + 1] as number) : (fwd[i - 1] as number) + 1;
      let y = x - k;
      const from = x;
      while (x < n && y < m && a[x0 + x] === b[y0 + y]) {
        x++;
        y++;
      }
      budget.left -= x - from;
      fwd[i] = x;
      if (x > n) fEnd += 2;
      else if (y > m) fStart += 2;
      else if (odd) {
        const j = offset + delta - k;
        if (j >= 0 && j < size && bwd[j] !== -1 && x >= n - (bwd[j] as number)) return [x0 + x, y0 + y];
      }
    }
    for (let k = -d + bStart; k <= d - bEnd; k += 2) {
      const i = offset + k;
      let x = k === -d || (k !== d && (bwd[i - 1] as number) < (bwd[i + 1] as number)) ? (bwd[i + 1] as number) : (bwd[i - 1] as number) + 1;
      let y = x - k;
      const from = x;
      while (x < n && y < m && a[x1 - 1 - x] === b[y1 - 1 - y]) {
        x++;
        y++;
      }
      budget.left -= x - from;
      bwd[i] = x;
      if (x > n) bEnd += 2;
      else if (y > m) bStart += 2;
      else if (!odd) {
        const j = offset + delta - k;
        if (j >= 0 && j < size && fwd[j] !== -1) {
          const xf = fwd[j] as number;
          // Split where the forward path reached on that diagonal.
          if (xf >= n - x) return [x0 + xf, y0 + xf - (j - offset)];
        }
      }
    }
  }
  return null;
}

/**
 * Turns short kept runs of filler words between two changes into a
 * remove+add pair. `maxRun` is the longest kept run that may be absorbed.
 */
function absorbFillerKeeps(steps: Step[], bTok: readonly Token[], maxRun: number): Step[] {
  const out: Step[] = [];
  let k = 0;
  while (k < steps.length) {
    const s = steps[k];
    if (!s) break;
    if (s.op !== 'keep') {
      out.push(s);
      k++;
      continue;
    }
    let e = k;
    while (e < steps.length && steps[e]?.op === 'keep') e++;
    const run = steps.slice(k, e);
    const prevChanged = out.length > 0 && out[out.length - 1]?.op !== 'keep';
    const nextChanged = e < steps.length;
    const allFiller = run.every((st) => isFillerKey(bTok[st.b]?.key ?? ''));
    if (prevChanged && nextChanged && run.length <= maxRun && allFiller) {
      // Re-express as removals of the original tokens and additions of the perturbed ones,
      // then regroup the surrounding changed region (removals first, then additions).
      let r = out.length;
      while (r > 0 && out[r - 1]?.op !== 'keep') r--;
      const region = out.splice(r);
      let t = e;
      while (t < steps.length && steps[t]?.op !== 'keep') t++;
      const after = steps.slice(e, t);
      const changed: Step[] = [
        ...region,
        ...run.flatMap((st): Step[] => [
          { op: 'remove', a: st.a, b: -1 },
          { op: 'add', a: -1, b: st.b },
        ]),
        ...after,
      ];
      const removes = changed.filter((st) => st.op === 'remove').sort((x, y) => x.a - y.a);
      const addsOnly = changed.filter((st) => st.op === 'add').sort((x, y) => x.b - y.b);
      out.push(...removes, ...addsOnly);
      k = t;
      continue;
    }
    out.push(...run);
    k = e;
  }
  return out;
}

function segmentText(source: string, toks: readonly Token[], from: number, to: number): Phrase {
  const first = toks[from];
  const last = toks[to];
  if (!first || !last) return { text: '', start: 0, end: 0 };
  return { text: source.slice(first.start, last.end), start: first.start, end: last.end };
}

/** Word-level diff of `original` against `perturbed`. */
export function wordDiff(original: string, perturbed: string): WordDiff {
  if (original.length > MAX_DIFF_CHARS || perturbed.length > MAX_DIFF_CHARS) return wholeReplacement(original, perturbed);
  const aTok = tokenize(original);
  const bTok = tokenize(perturbed);
  const raw = lcsSteps(
    aTok.map((t) => t.key),
    bTok.map((t) => t.key),
  );
  const steps = absorbFillerKeeps(raw.steps, bTok, 2);
  const segments: DiffSegment[] = [];
  let k = 0;
  while (k < steps.length) {
    const s = steps[k];
    if (!s) break;
    let e = k;
    while (e < steps.length && steps[e]?.op === s.op) e++;
    const last = steps[e - 1];
    if (!last) break;
    const p =
      s.op === 'remove' ? segmentText(original, aTok, s.a, last.a) : segmentText(perturbed, bTok, s.b, last.b);
    segments.push({ op: s.op, text: p.text, start: p.start, end: p.end, tokenCount: e - k });
    k = e;
  }
  let addedTokens = 0;
  let removedTokens = 0;
  let keptTokens = 0;
  for (const seg of segments) {
    if (seg.op === 'add') addedTokens += seg.tokenCount;
    else if (seg.op === 'remove') removedTokens += seg.tokenCount;
    else keptTokens += seg.tokenCount;
  }
  const diff: WordDiff = { original, perturbed, segments, addedTokens, removedTokens, keptTokens };
  if (raw.limited) {
    diff.limited =
      `the two instructions (${aTok.length.toLocaleString('en-US')} and ${bTok.length.toLocaleString('en-US')} words) differ in too many places ` +
      'for the word diff to align them within its work limit: the part it could not align is counted as removed and re-added whole';
  }
  return diff;
}

/** The diff of texts too long to split into words: the original removed, the perturbed text added, each as one segment. */
function wholeReplacement(original: string, perturbed: string): WordDiff {
  const count = (t: string) => {
    let n = 0;
    for (const _ of t.matchAll(/\S+/g)) n++;
    return n;
  };
  const removedTokens = count(original);
  const addedTokens = count(perturbed);
  const segments: DiffSegment[] = [];
  if (removedTokens > 0) segments.push({ op: 'remove', text: original, start: 0, end: original.length, tokenCount: removedTokens });
  if (addedTokens > 0) segments.push({ op: 'add', text: perturbed, start: 0, end: perturbed.length, tokenCount: addedTokens });
  const chars = Math.max(original.length, perturbed.length).toLocaleString('en-US');
  return {
    original,
    perturbed,
    segments,
    addedTokens,
    removedTokens,
    keptTokens: 0,
    limited: `an instruction of ${chars} characters is longer than the ${MAX_DIFF_CHARS.toLocaleString('en-US')} the word diff reads: it is counted as removed and re-added whole`,
  };
}

const TRIM_LEFT_RE = /^[\s,;:.!?\u2014\u2013-]+/u;
const TRIM_RIGHT_RE = /[\s,;:\u2014\u2013-]+$/u;

/** Trims separators from both ends of a phrase, keeping it a substring of `source`. */
export function trimPhrase(source: string, p: Phrase): Phrase {
  const left = p.text.match(TRIM_LEFT_RE)?.[0].length ?? 0;
  const rest = p.text.slice(left);
  const right = rest.match(TRIM_RIGHT_RE)?.[0].length ?? 0;
  const start = p.start + left;
  const end = p.end - right;
  return { text: source.slice(start, end), start, end };
}

function phrasesOf(diff: WordDiff, op: 'add' | 'remove'): Phrase[] {
  const source = op === 'add' ? diff.perturbed : diff.original;
  const out: Phrase[] = [];
  for (const seg of diff.segments) {
    if (seg.op !== op) continue;
    const p = trimPhrase(source, seg);
    if (p.text.length > 0) out.push(p);
  }
  return out;
}

/** Contiguous inserted spans, as substrings of the perturbed text, in text order. */
export function addedPhrases(diff: WordDiff): Phrase[] {
  return phrasesOf(diff, 'add');
}

/** Contiguous deleted spans, as substrings of the original text, in text order. */
export function removedPhrases(diff: WordDiff): Phrase[] {
  return phrasesOf(diff, 'remove');
}

/** Share of the perturbed tokens that are new (0 when identical, 1 when fully rewritten). */
export function changeRatio(diff: WordDiff): number {
  const total = diff.addedTokens + diff.keptTokens;
  return total === 0 ? 0 : diff.addedTokens / total;
}
