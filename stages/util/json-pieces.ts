// JSON.stringify(value, null, 2) in pieces: the text of a large output
// (summarize's index.json and evaluations.json hold a line per run: 24 to
// 40 MiB at 100,000 runs) written as it is made, never one string in memory
// besides the value. The pieces joined, plus the newline writeJson adds, are
// writeJson's bytes exactly (test/json-pieces.test.ts).

/** Containers this deep or less are opened here; deeper values are one JSON.stringify each (a run's entry, say). */
const OPEN_DEPTH = 2;
/** An array with more members than this, and a container that holds one, is opened at any depth (a category's examples: one per run it holds). */
const LARGE_ARRAY = 64;

/** The pieces of `${JSON.stringify(value, null, 2)}\n`, for a value that stringifies to something (not undefined). */
export function* jsonPieces(value: unknown): Generator<string> {
  yield* pieces(value, 0, '');
  yield '\n';
}

function* pieces(value: unknown, depth: number, indent: string): Generator<string> {
  if (!isOpenable(value) || (depth >= OPEN_DEPTH && !isLarge(value) && !Object.values(value).some(isLarge))) {
    // Each line of a nested value's text, after the first, moves right by the indentation it sits at (strings hold no raw newline).
    yield JSON.stringify(value, null, 2).replaceAll('\n', `\n${indent}`);
    return;
  }
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    if (value.length === 0) {
      yield '[]';
      return;
    }
    for (let i = 0; i < value.length; i++) {
      yield i === 0 ? `[\n${inner}` : `,\n${inner}`;
      // As JSON.stringify: an element that has no JSON text (undefined, a function) is null.
      yield* stringifies(value[i]) ? pieces(value[i], depth + 1, inner) : ['null'];
    }
    yield `\n${indent}]`;
    return;
  }
  // As JSON.stringify: own enumerable string keys in their order, members without a JSON text left out.
  const keys = Object.keys(value).filter((k) => stringifies((value as Record<string, unknown>)[k]));
  if (keys.length === 0) {
    yield '{}';
    return;
  }
  for (const [i, k] of keys.entries()) {
    yield `${i === 0 ? '{' : ','}\n${inner}${JSON.stringify(k)}: `;
    yield* pieces((value as Record<string, unknown>)[k], depth + 1, inner);
  }
  yield `\n${indent}}`;
}

/** An array or a plain object whose members are stringified here; anything else (a value with toJSON, a Map, a boxed value) goes to JSON.stringify whole. */
function isOpenable(value: unknown): value is object {
  if (value === null || typeof value !== 'object' || typeof (value as { toJSON?: unknown }).toJSON === 'function') return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return Array.isArray(value) || proto === Object.prototype || proto === null;
}

function isLarge(value: unknown): boolean {
  return Array.isArray(value) && value.length > LARGE_ARRAY;
}

/** Whether JSON.stringify gives the value a text (undefined, functions and symbols have none). */
function stringifies(value: unknown): boolean {
  return value !== undefined && typeof value !== 'function' && typeof value !== 'symbol';
}
