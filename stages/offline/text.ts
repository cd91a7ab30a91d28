// Text helpers shared by the offline analyzer: a 1:1 character normaliser (so
// offsets found in the normalised text are offsets in the original text),
// word tokens with offsets, stopwords and a light suffix-stripping stemmer.

/** Marker that starts every free text the offline analyzer writes. */
export const OFFLINE_MARK = '[offline analyzer]';

/** Words that carry no mechanism or topic on their own. */
export const STOPWORDS: ReadonlySet<string> = new Set(
  (
    'a about above after afterward afterwards again all also am an and any are as at be because been before being ' +
    'below between both but by can could did do does doing done down during each few for from further had has have ' +
    'having he her here hers herself him himself his how i if in into is it its itself just let lets me more most my ' +
    'myself no nor not now of off on once only or other our ours ourselves out over own please same she should so ' +
    'some such than that the their theirs them themselves then there these they this those through to too under ' +
    'until up very was we were what when where which while who whom why will with would you your yours yourself ' +
    'yourselves i\'m i\'ve i\'d i\'ll it\'s that\'s there\'s don\'t can\'t isn\'t aren\'t won\'t you\'re we\'re ' +
    'thanks thank hey kindly help assist need want like make sure get got us via etc one two ' +
    'even sometimes really still already actually maybe perhaps ensure they\'re you\'ve we\'ve i\'d you\'ll ' +
    'it\'ll doesn\'t didn\'t wasn\'t hasn\'t haven\'t shouldn\'t wouldn\'t couldn\'t let\'s'
  ).split(/\s+/),
);

const FOLDS: Readonly<Record<string, string>> = { '\u2018': "'", '\u2019': "'", '\u02bc': "'", '`': "'", '\u201c': '"', '\u201d': '"', '\u2010': '-', '\u2011': '-' };
const FOLD_RE = new RegExp(`[${Object.keys(FOLDS).join('')}]`, 'g');

/**
 * Lower-cases and folds typographic quotes, keeping the length and every
 * character position, so regex offsets on the result apply to the input.
 * A character whose lower case is longer (U+0130) stays as it is.
 */
export function normalizeChars(text: string): string {
  // Lower-casing the whole text is lower-casing each character unless a
  // character grows (the length tells) or a capital sigma takes its final
  // form (the one mapping that depends on the characters around it).
  if (!text.includes('\u03a3')) {
    const lower = text.toLowerCase();
    if (lower.length === text.length) return lower.replace(FOLD_RE, (c) => FOLDS[c] ?? c);
  }
  return normalizeEach(text);
}

/** normalizeChars a character at a time. */
export function normalizeEach(text: string): string {
  let out = '';
  for (const ch of text) {
    const fold = FOLDS[ch];
    let c = ch;
    if (fold !== undefined) c = fold;
    else {
      const lower = c.toLowerCase();
      if (lower.length === c.length) c = lower;
    }
    out += c;
  }
  return out;
}

export interface Token {
  /** The token as written. */
  text: string;
  /** Comparison key: normalised, without surrounding punctuation. */
  key: string;
  start: number;
  end: number;
}

const TOKEN_RE = /[^\s\u2014\u2013]+|[\u2014\u2013]/gu;
const EDGE_PUNCT_RE = /^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu;

/**
 * Splits text into whitespace-separated tokens that keep their punctuation
 * attached (so `'image.docx',` is one token), plus em/en dashes as separate
 * tokens. The key strips edge punctuation for comparison; a token made only of
 * punctuation keeps it as its key.
 */
export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  // normalizeChars maps each character on its own and keeps positions, so a token's is a slice of the text's.
  const normText = normalizeChars(text);
  for (const m of text.matchAll(TOKEN_RE)) {
    const raw = m[0];
    const start = m.index ?? 0;
    const norm = normText.slice(start, start + raw.length);
    const stripped = norm.replace(EDGE_PUNCT_RE, '');
    tokens.push({ text: raw, key: stripped === '' ? norm : stripped, start, end: start + raw.length });
  }
  return tokens;
}

/** True for a token key that is a stopword or has no letters/digits. */
export function isFillerKey(key: string): boolean {
  return STOPWORDS.has(key) || !/[\p{L}\p{N}]/u.test(key);
}

/** Lower-case words (letters, digits, inner apostrophes/dots/hyphens kept out). */
export function words(text: string): string[] {
  const norm = normalizeChars(text);
  const out: string[] = [];
  for (const m of norm.matchAll(/[\p{L}\p{N}]+(?:'[\p{L}]+)?/gu)) out.push(m[0]);
  return out;
}

/**
 * A light, deterministic suffix stripper: enough to join "cleaning"/"cleaned"/
 * "cleans", "files"/"file", "directories"/"directory". Not Porter; it only has
 * to be consistent.
 */
export function stem(word: string): string {
  let w = word.toLowerCase().replace(/'s$/, '');
  if (w.length <= 3) return w;
  if (w.endsWith('ies') && w.length > 4) return w.slice(0, -3) + 'y';
  if (w.endsWith('sses')) return w.slice(0, -2);
  if (w.endsWith('ing') && w.length > 5) {
    w = w.slice(0, -3);
    if (/(.)\1$/.test(w) && !/(ll|ss|zz)$/.test(w)) w = w.slice(0, -1);
    return w;
  }
  if (w.endsWith('ied') && w.length > 4) return w.slice(0, -3) + 'y';
  if (w.endsWith('ed') && w.length > 4) {
    w = w.slice(0, -2);
    if (/(.)\1$/.test(w) && !/(ll|ss|zz)$/.test(w)) w = w.slice(0, -1);
    return w;
  }
  if (w.endsWith('es') && /(ch|sh|x|z)es$/.test(w)) return w.slice(0, -2);
  if (w.endsWith('s') && !w.endsWith('ss') && !w.endsWith('us') && !w.endsWith('is')) return w.slice(0, -1);
  return w;
}

/** Content stems of a text: words minus stopwords and 1-letter words, stemmed. */
export function contentStems(text: string): string[] {
  const out: string[] = [];
  for (const w of words(text)) {
    if (w.length < 2 || STOPWORDS.has(w) || /^\d+$/.test(w)) continue;
    out.push(stem(w));
  }
  return out;
}

/** Compare strings by UTF-16 code units (locale independent, deterministic). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Title-cases a phrase, leaving short function words lower case after the first word. */
export function titleCase(text: string): string {
  const small = new Set(['a', 'an', 'and', 'as', 'at', 'by', 'for', 'in', 'of', 'on', 'or', 'the', 'to', 'with', 'vs']);
  return text
    .split(/(\s+|-)/)
    .map((part, i) => {
      if (/^\s+$|^-$/.test(part) || part === '') return part;
      if (i > 0 && small.has(part.toLowerCase())) return part.toLowerCase();
      return part.charAt(0).toUpperCase() + part.slice(1);
    })
    .join('');
}

/** Cuts a text to at most `maxWords` words; returns a verbatim prefix. */
export function firstWords(text: string, maxWords: number): { text: string; truncated: boolean } {
  const toks = tokenize(text);
  if (toks.length <= maxWords) return { text: text.trim(), truncated: false };
  const last = toks[maxWords - 1];
  const first = toks[0];
  if (!last || !first) return { text: text.trim(), truncated: false };
  return { text: text.slice(first.start, last.end), truncated: true };
}
