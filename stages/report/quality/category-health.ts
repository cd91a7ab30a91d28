// Category health: warnings about the taxonomy itself. A singleton category
// rests on one run; two categories whose names or definitions share most of
// their distinctive words may be one category split in two; a generic name
// ("Other", "Miscellaneous") or a catch-all definition says what a category
// is not rather than what it is. Word overlap is a cheap proxy for meaning:
// these are prompts to look, not findings.
import { compareCodePoints } from '../../util/order.ts';

export interface CategoryHealthInput {
  id: string;
  name: string;
  definition: string;
  /** Runs in the category. */
  runs: number;
}

export interface CategoryRef {
  id: string;
  name: string;
}

export interface NearDuplicate {
  a: CategoryRef;
  b: CategoryRef;
  /** Jaccard similarity of the distinctive words of the two names (0 to 1). */
  name_similarity: number;
  /** Jaccard similarity of the distinctive words of the two definitions (0 to 1). */
  definition_similarity: number;
}

export interface CategoryHealth {
  singletons: CategoryRef[];
  near_duplicates: NearDuplicate[];
  generic_names: (CategoryRef & { reason: string })[];
  /** The similarity at or above which a pair is listed (names or definitions). */
  similarity_threshold: number;
}

export const NEAR_DUPLICATE_SIMILARITY = 0.5;

const STOPWORDS = new Set(
  'a an and any are as at be been being but by for from has have in into is it its of on or that the their them then there these they this those to was were what when which while who will with without'.split(' '),
);

const GENERIC_WORDS = new Set(['other', 'others', 'misc', 'miscellaneous', 'general', 'generic', 'various', 'uncategorized', 'uncategorised', 'unclassified', 'unknown', 'mixed', 'catch-all', 'catchall', 'none']);

// A definition that collects what fits nowhere else.
const CATCH_ALL = /\b(?:matches none of|fits? no other|does not fit any other|no other category|everything else|anything else|catch-all)\b/i;

/** Lower-case words of a text that carry meaning (no stopwords, no single letters). */
function rawWords(text: string): string[] {
  return (text.toLowerCase().match(/[\p{L}\p{N}][\p{L}\p{N}'-]*/gu) ?? []).filter((w) => w.length > 1 && !STOPWORDS.has(w));
}

/** rawWords with a crude plural/possessive strip, so "request" and "requests" meet. */
function words(text: string): string[] {
  return rawWords(text).map((w) => w.replace(/'s$/, '').replace(/([^s])s$/, '$1'));
}

/**
 * Distinctive words of each text: its words minus those found in more than
 * half of the texts (with four or more texts), which say nothing about
 * whether two of them are alike (e.g. a prefix every definition starts with).
 */
function distinctive(texts: string[]): Set<string>[] {
  const sets = texts.map((t) => new Set(words(t)));
  if (sets.length < 4) return sets;
  const df = new Map<string, number>();
  for (const s of sets) for (const w of s) df.set(w, (df.get(w) ?? 0) + 1);
  return sets.map((s) => new Set([...s].filter((w) => (df.get(w) ?? 0) * 2 <= sets.length)));
}

function jaccard(a: Set<string>, b: Set<string>): number {
  if (!a.size && !b.size) return 0;
  let shared = 0;
  for (const w of a) if (b.has(w)) shared += 1;
  return shared / (a.size + b.size - shared);
}

const round = (x: number) => Math.round(x * 1e4) / 1e4;

export function categoryHealth(categories: CategoryHealthInput[], threshold = NEAR_DUPLICATE_SIMILARITY): CategoryHealth {
  const sorted = [...categories].sort((x, y) => compareCodePoints(x.id, y.id));
  const ref = (c: CategoryHealthInput): CategoryRef => ({ id: c.id, name: c.name });
  const names = distinctive(sorted.map((c) => c.name));
  const definitions = distinctive(sorted.map((c) => c.definition));
  const near: NearDuplicate[] = [];
  for (let i = 0; i < sorted.length; i++) {
    for (let j = i + 1; j < sorted.length; j++) {
      const n = jaccard(names[i] as Set<string>, names[j] as Set<string>);
      const d = jaccard(definitions[i] as Set<string>, definitions[j] as Set<string>);
      if (n >= threshold || d >= threshold) {
        near.push({ a: ref(sorted[i] as CategoryHealthInput), b: ref(sorted[j] as CategoryHealthInput), name_similarity: round(n), definition_similarity: round(d) });
      }
    }
  }
  const generic: CategoryHealth['generic_names'] = [];
  for (const c of sorted) {
    const nameWords = rawWords(c.name);
    const hit = nameWords.find((w) => GENERIC_WORDS.has(w));
    if (hit) generic.push({ ...ref(c), reason: `the name contains "${hit}"` });
    else if (CATCH_ALL.test(c.definition)) generic.push({ ...ref(c), reason: 'the definition describes what fits no other category' });
  }
  return {
    singletons: sorted.filter((c) => c.runs === 1).map(ref),
    near_duplicates: near,
    generic_names: generic,
    similarity_threshold: threshold,
  };
}
