// Word-level diff of an original instruction against its perturbed version.
//
// Tokens are whitespace-separated words that keep their punctuation attached
// (see text.ts); two tokens match when their keys (normalised, edge
// punctuation stripped) are equal, so `"image.docx"` matches `'image.docx',`.
// The alignment is a longest common subsequence computed by dynamic
// programming, with a fixed tie-break, followed by a "semantic" clean-up: a
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
}

export interface Phrase {
  text: string;
  start: number;
  end: number;
}

interface Step {
  op: DiffOp;
  /** index into original tokens (remove/keep) */
  a: number;
  /** index into perturbed tokens (add/keep) */
  b: number;
}

/** LCS alignment of two key sequences; returns edit steps in order. */
function lcsSteps(a: readonly string[], b: readonly string[]): Step[] {
  const n = a.length;
  const m = b.length;
  // Trim common prefix/suffix first: cheap and keeps the table small.
  let pre = 0;
  while (pre < n && pre < m && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < n - pre && suf < m - pre && a[n - 1 - suf] === b[m - 1 - suf]) suf++;
  const an = n - pre - suf;
  const bm = m - pre - suf;
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
  const steps: Step[] = [];
  for (let k = 0; k < pre; k++) steps.push({ op: 'keep', a: k, b: k });
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
  for (let k = 0; k < suf; k++) steps.push({ op: 'keep', a: n - suf + k, b: m - suf + k });
  return steps;
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
  const aTok = tokenize(original);
  const bTok = tokenize(perturbed);
  const raw = lcsSteps(
    aTok.map((t) => t.key),
    bTok.map((t) => t.key),
  );
  const steps = absorbFillerKeeps(raw, bTok, 2);
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
  return { original, perturbed, segments, addedTokens, removedTokens, keptTokens };
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
