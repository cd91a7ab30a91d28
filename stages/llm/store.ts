// The content-addressed response store: every answer is kept under the hash of
// the request that produced it. A hit costs nothing; a miss is written the
// moment it returns (atomically), so a crash loses at most the calls in flight.
// Failures are never stored. Keys and timestamps never enter a key; the
// endpoint does (which server answered, see endpoint.ts).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Usage } from './types.ts';
import { writeFileAtomic, writeFileAtomicSync } from '../util/fs.ts';

/** JSON with object keys sorted recursively: the canonical form that is hashed. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
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

export function requestHash(canonicalRequest: unknown): string {
  return sha256(canonicalJson(canonicalRequest));
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

/** An entry's file text. */
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
        writeFileAtomicSync(pathOf(hash), entryText(answer));
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
