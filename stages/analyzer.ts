// Who answers a stage: the offline analyzer (a deterministic lexical
// algorithm, no network) or a language model through the LLM client. Both go
// through the response store, keyed by the hash of the canonical request, so
// a re-run reuses every answer whose inputs did not change.
import type { Answer } from './llm/answer.ts';
import type { LlmSettings } from './llm/types.ts';
import { requestHash, sha256 } from './llm/store.ts';
import type { ResponseStore } from './llm/store.ts';
import { ZERO_USAGE } from './llm/usage.ts';
import { compactJson } from './util/json-pieces.ts';

import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The offline analyzer's version: a name plus a digest of its source files,
 * so that any change to the algorithm changes every store key it answers
 * under (a stale stored answer can never be served for new code).
 */
export const OFFLINE_ANALYZER_VERSION = `offline-lexical-1+${offlineCodeDigest()}`;

function offlineCodeDigest(): string {
  const dir = fileURLToPath(new URL('./offline/', import.meta.url));
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts')).sort();
  const text = files.map((f) => `${f}\n${readFileSync(dir + f, 'utf8')}`).join('\n');
  return sha256(text).slice(0, 8);
}

export const OFFLINE_NOTICE =
  'Produced by the offline analyzer: a deterministic lexical algorithm (word diff, TF-IDF and mechanism cues, agglomerative clustering), not a language model.';

/** A human-readable label of who answers, for metadata and reports. */
export function analyzerLabel(s: LlmSettings): string {
  return s.provider === 'offline' ? `offline analyzer (${OFFLINE_ANALYZER_VERSION}, not an LLM)` : `${s.provider}:${s.model}`;
}

/**
 * Runs an offline computation through the store: the key covers the
 * algorithm version, the step and the whole input. `refresh` computes again
 * and overwrites the stored answer. `text` is the answer as stored (JSON).
 */
export function offlineAnswer<T>(
  store: ResponseStore | null,
  step: string,
  input: unknown,
  compute: () => T,
  opts: { refresh?: boolean } = {},
): Answer<T> & { text: string } {
  const canonical = { provider: 'offline', version: OFFLINE_ANALYZER_VERSION, step, input };
  const hash = requestHash(canonical);
  // What the store keeps as the request: the input is large and already in the key.
  const stored = { provider: 'offline', version: OFFLINE_ANALYZER_VERSION, step };
  const hit = opts.refresh ? undefined : store?.get(hash, stored);
  if (hit) {
    try {
      return { value: JSON.parse(hit.text) as T, usage: ZERO_USAGE, costUsd: 0, cached: true, requestHash: hash, text: hit.text };
    } catch {
      // an unreadable stored answer is a miss: computed again and overwritten
    }
  }
  const value = compute();
  const text = compactJson(value);
  store?.put(hash, { request: stored, text, usage: ZERO_USAGE, cost_usd: 0 });
  return { value, usage: ZERO_USAGE, costUsd: 0, cached: false, requestHash: hash, text };
}
