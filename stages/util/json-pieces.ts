// JSON.stringify(value, null, 2) in pieces: the text of a large output
// (summarize's index.json and evaluations.json hold a line per run: 24 to
// 40 MiB at 100,000 runs) written as it is made, never one string in memory
// besides the value. The pieces joined, plus the newline writeJson adds, are
// writeJson's bytes exactly (test/json-pieces.test.ts).

import { pairSafeEnd } from './utf16.ts';

/** A string longer than this (UTF-16 code units) is escaped a part at a time (an offline categorization stored as one answer: 45 MB). */
const LONG_STRING = 1 << 16;

/**
 * JSON.stringify(text) in pieces: the text is cut into parts, never between
 * the two halves of a surrogate pair (JSON.stringify keeps a pair and escapes
 * a lone half), and each part is escaped on its own.
 */
export function* jsonStringPieces(text: string): Generator<string> {
  if (text.length <= LONG_STRING) {
    yield JSON.stringify(text);
    return;
  }
  yield '"';
  for (let at = 0; at < text.length; ) {
    const end = pairSafeEnd(text, Math.min(text.length, at + LONG_STRING));
    yield JSON.stringify(text.slice(at, end)).slice(1, -1);
    at = end;
  }
  yield '"';
}

/** Containers this deep or less are opened here; deeper values are one JSON.stringify each (a run's entry, say). */
const OPEN_DEPTH = 2;
/** A container with more members than this, and one that holds such a container within HOLDS_DEPTH levels, is opened at any depth (categorization.json: categories, each with one example per run it holds). */
const LARGE_ARRAY = 64;
const HOLDS_DEPTH = 3;

/** The pieces of `${JSON.stringify(value, null, 2)}\n`, for a value that stringifies to something (not undefined). */
export function* jsonPieces(value: unknown): Generator<string> {
  yield* pieces(value, 0, '', false);
  yield '\n';
}

/**
 * JSON.stringify(value). A value that holds a large container is joined
 * from pieces: V8's own builder of an offline categorization at 100,000
 * runs (43 million characters) peaked at twice the text's size.
 */
export function compactJson(value: unknown): string {
  return holdsLarge(value, HOLDS_DEPTH) ? [...compactJsonPieces(value)].join('') : (JSON.stringify(value) as string);
}

/** The pieces of JSON.stringify(value) (compact), for a value that stringifies to something. */
export function* compactJsonPieces(value: unknown): Generator<string> {
  yield* pieces(value, 0, '', true);
}

function* pieces(value: unknown, depth: number, indent: string, compact: boolean): Generator<string> {
  if (typeof value === 'string') {
    yield* jsonStringPieces(value);
    return;
  }
  if (!isOpenable(value) || (depth >= OPEN_DEPTH && !holdsLarge(value, HOLDS_DEPTH))) {
    // Each line of a nested value's text, after the first, moves right by the indentation it sits at (strings hold no raw newline).
    yield compact ? (JSON.stringify(value) as string) : JSON.stringify(value, null, 2).replaceAll('\n', `\n${indent}`);
    return;
  }
  const inner = compact ? '' : `${indent}  `;
  // What comes before a member, and before the closing bracket: a new line at the member's (the container's) indentation.
  const br = (at: string) => (compact ? '' : `\n${at}`);
  if (Array.isArray(value)) {
    if (value.length === 0) {
      yield '[]';
      return;
    }
    for (let i = 0; i < value.length; i++) {
      yield `${i === 0 ? '[' : ','}${br(inner)}`;
      // As JSON.stringify: an element that has no JSON text (undefined, a function) is null.
      yield* stringifies(value[i]) ? pieces(value[i], depth + 1, inner, compact) : ['null'];
    }
    yield `${br(indent)}]`;
    return;
  }
  // As JSON.stringify: own enumerable string keys in their order, members without a JSON text left out.
  const keys = Object.keys(value).filter((k) => stringifies((value as Record<string, unknown>)[k]));
  if (keys.length === 0) {
    yield '{}';
    return;
  }
  for (const [i, k] of keys.entries()) {
    yield `${i === 0 ? '{' : ','}${br(inner)}${JSON.stringify(k)}:${compact ? '' : ' '}`;
    yield* pieces((value as Record<string, unknown>)[k], depth + 1, inner, compact);
  }
  yield `${br(indent)}}`;
}

/** An array or a plain object whose members are stringified here; anything else (a value with toJSON, a Map, a boxed value) goes to JSON.stringify whole. */
function isOpenable(value: unknown): value is object {
  if (value === null || typeof value !== 'object' || typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return Array.isArray(value) || proto === Object.prototype || proto === null;
}

/** Whether `value` is a large container or holds one `levels` deep or less (only small containers are looked into: cheap). */
function holdsLarge(value: unknown, levels: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  const members = Array.isArray(value) ? value : Object.values(value);
  if (members.length > LARGE_ARRAY) return true;
  return levels > 0 && members.some((m) => holdsLarge(m, levels - 1));
}

/** Whether JSON.stringify gives the value a text (undefined, functions and symbols have none). */
export function stringifies(value: unknown): boolean {
  return value !== undefined && typeof value !== 'function' && typeof value !== 'symbol';
}
