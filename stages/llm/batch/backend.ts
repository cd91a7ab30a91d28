// What the batch engine needs from a provider's batch API, and which
// providers have one here. A backend turns requests into batch lines (the
// very body the normal provider call sends), submits them, reports whether a
// batch has ended, and reads its results back by custom_id. Everything else
// (store, manifests, budget, validation, waiting) is the engine's.
import { LlmConfigError } from '../errors.ts';
import type { ProviderAnswer, ProviderOptions, ProviderRequest } from '../providers/shared.ts';
import type { LlmSettings, ProviderName } from '../types.ts';
import { createAnthropicBatchBackend } from './anthropic.ts';
import { createOpenAIBatchBackend } from './openai.ts';
import { PROVIDER_SPECS } from '../providers/index.ts';

export type { BatchBackend, BatchItem, BatchLimits, BatchResult, BatchStatus, SubmittedBatch } from './types.ts';
import type { BatchBackend, BatchItem, BatchLimits } from './types.ts';

/** The batch APIs spoken here, by provider (BATCH_PROVIDERS in llm/types.ts lists the same). */
const BATCH_BACKENDS: Readonly<Partial<Record<ProviderName, (settings: LlmSettings, opts: ProviderOptions) => BatchBackend>>> = {
  openai: createOpenAIBatchBackend,
  anthropic: createAnthropicBatchBackend,
};

/**
 * Providers without batch support here, and why (each provider's spec says
 * it). A stage asked to batch with one of these gets this message
 * (LlmConfigError) and the caller uses normal calls.
 */
export const BATCH_UNSUPPORTED: Readonly<Partial<Record<ProviderName, string>>> = {
  offline: 'the offline analyzer answers locally; there is nothing to batch',
  ...Object.fromEntries(Object.entries(PROVIDER_SPECS).flatMap(([name, spec]) => (spec.noBatch ? [[name, spec.noBatch]] : []))),
};

/** The backend of a provider's batch API (no network access until the first call). */
export function createBatchBackend(settings: LlmSettings, opts: ProviderOptions): BatchBackend {
  const backend = BATCH_BACKENDS[settings.provider];
  if (backend) return backend(settings, opts);
  const why = BATCH_UNSUPPORTED[settings.provider] ?? `unknown provider "${settings.provider}"`;
  throw new LlmConfigError(`batch: ${settings.provider}: ${why}`);
}

/** Splits lines into batches within `limits`, in order. A line larger than maxBytes on its own is returned apart. */
export function splitByLimits<T extends { bytes: number }>(lines: T[], limits: BatchLimits): { batches: T[][]; tooLarge: T[] } {
  const batches: T[][] = [];
  const tooLarge: T[] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const line of lines) {
    if (line.bytes > limits.maxBytes) {
      tooLarge.push(line);
      continue;
    }
    if (current.length > 0 && (current.length >= limits.maxRequests || bytes + line.bytes > limits.maxBytes)) {
      batches.push(current);
      current = [];
      bytes = 0;
    }
    current.push(line);
    bytes += line.bytes;
  }
  if (current.length > 0) batches.push(current);
  return { batches, tooLarge };
}
