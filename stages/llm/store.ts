// The content-addressed response store: every answer is kept under the hash of
// the request that produced it. A hit costs nothing; a miss is written the
// moment it returns (atomically), so a crash loses at most the calls in flight.
// Failures are never stored. Keys and timestamps never enter a key; the
// endpoint does (which server answered, see endpoint.ts).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Usage } from './types.ts';
import { Utf8Chunks, writeFileAtomic, writePiecesAtomicSync } from '../util/fs.ts';
import { jsonPieces, stringifies } from '../util/json-pieces.ts';

/** JSON with object keys sorted recursively (members without a value left out): the canonical form that is hashed. */
export function canonicalJson(value: unknown): string {
  return [...canonicalJsonPieces(value)].join('');
}

/**
 * Containers this deep or less are written member by member; a deeper value
 * is one piece. An offline request holds every run (`input.items[i]`, depth
 * 3): at 100,000 runs its text is hundreds of MiB, so it is hashed a run at
 * a time, never built as one string.
 */
const OPEN_DEPTH = 3;

/** canonicalJson's text in pieces (test/canonical-json.test.ts: joined, they are that text). */
export function* canonicalJsonPieces(value: unknown, depth = 0): Generator<string> {
  if (depth >= OPEN_DEPTH || value === null || typeof value !== 'object') {
    yield JSON.stringify(sortKeys(value));
    return;
  }
  if (Array.isArray(value)) {
    yield '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) yield ',';
      // As JSON.stringify: an element without a JSON text (undefined, a function, a symbol) is null.
      if (stringifies(value[i])) yield* canonicalJsonPieces(value[i], depth + 1);
      else yield 'null';
    }
    yield ']';
    return;
  }
  // The order JSON.stringify gives an object whose keys were added sorted: integer-like keys first, ascending.
  const order: Record<string, true> = {};
  for (const key of Object.keys(value).sort()) if (stringifies((value as Record<string, unknown>)[key])) order[key] = true;
  let first = true;
  for (const key of Object.keys(order)) {
    yield `${first ? '{' : ','}${JSON.stringify(key)}:`;
    first = false;
    yield* canonicalJsonPieces((value as Record<string, unknown>)[key], depth + 1);
  }
  yield first ? '{}' : '}';
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = sortKeys(v);
    }
    return out;
  }
  return value;
}

export function sha256(text: string | Uint8Array): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The sha256 of canonicalJson(request), its pieces hashed as UTF-8 a chunk at a time (Utf8Chunks, the writers' encoder). */
export function requestHash(canonicalRequest: unknown): string {
  const hash = createHash('sha256');
  const chunks = new Utf8Chunks((bytes) => hash.update(bytes));
  for (const piece of canonicalJsonPieces(canonicalRequest)) chunks.write(piece);
  chunks.end();
  return hash.digest('hex');
}

export interface StoredAnswer {
  /** The canonical request, for inspection (never contains secrets). */
  request: unknown;
  text: string;
  usage: Usage;
  /** Cost when the answer was bought (USD, null when unknown). */
  cost_usd: number | null;
}

export interface ResponseStore {
  readonly dir: string;
  /**
   * The answer stored under `hash`. `request` is the canonical request of the
   * lookup: a layer that copies an answer from elsewhere (carried.ts) stores
   * it with that request.
   */
  get(hash: string, request?: unknown): StoredAnswer | undefined;
  /** Stores an answer before it returns: for synchronous callers (a lookup that copies an answer in, the offline analyzer) and the batch engine, which stores results as it reads them. */
  put(hash: string, answer: StoredAnswer): void;
  /**
   * Stores an answer without blocking the event loop, resolving once it is on
   * disk (never rejecting): for the LLM client, whose answers arrive while
   * other calls are in flight. A synchronous write there held every other
   * call's answer and next request up behind it (0.7 to 1.5 s of the call
   * phase of 1,000 calls, on a machine whose disk other work kept busy).
   */
  save(hash: string, answer: StoredAnswer): Promise<void>;
}

/** An entry's file text (put writes the same text in pieces, jsonPieces). */
const entryText = (answer: StoredAnswer) => `${JSON.stringify(answer, null, 2)}\n`;

export function openStore(dir: string, warn: (msg: string) => void = () => {}): ResponseStore {
  const pathOf = (hash: string) => join(dir, hash.slice(0, 2), `${hash}.json`);
  // Losing a store write costs money later but must not fail the stage.
  const writeFailed = (hash: string, err: unknown) => warn(`response store: could not write ${pathOf(hash)}: ${(err as Error).message}`);
  return {
    dir,
    get(hash) {
      let raw: string;
      try {
        raw = readFileSync(pathOf(hash), 'utf8');
      } catch {
        return undefined;
      }
      try {
        const parsed = JSON.parse(raw) as StoredAnswer;
        if (typeof parsed.text !== 'string' || typeof parsed.usage !== 'object') throw new Error('missing text or usage');
        return parsed;
      } catch (err) {
        // A damaged entry is treated as a miss and overwritten by the next answer.
        warn(`response store: ignoring unreadable entry ${pathOf(hash)}: ${(err as Error).message}`);
        return undefined;
      }
    },
    put(hash, answer) {
      try {
        // In pieces: an offline categorization at 100,000 runs is one answer of 45 MB.
        writePiecesAtomicSync(pathOf(hash), jsonPieces(answer));
      } catch (err) {
        writeFailed(hash, err);
      }
    },
    async save(hash, answer) {
      try {
        await writeFileAtomic(pathOf(hash), entryText(answer));
      } catch (err) {
        writeFailed(hash, err);
      }
    },
  };
}
