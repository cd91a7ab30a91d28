// Anthropic's Message Batches: messages.batches.create takes the requests
// inline ({ custom_id, params }), retrieve reports processing_status, and
// results() streams the JSONL at the batch's results_url: one line per
// request, in no particular order, succeeded / errored / canceled / expired.
import type { BatchCreateParams } from '@anthropic-ai/sdk/resources/messages/batches';
import { redactSecrets } from '../errors.ts';
import { answerFromMessage, createAnthropicClient, messagesWireRequest } from '../providers/anthropic.ts';
import { sdkCaller, toProviderError } from '../providers/shared.ts';
import type { ProviderOptions } from '../providers/shared.ts';
import type { LlmSettings } from '../types.ts';
import type { BatchBackend, BatchResult, BatchStatus } from './types.ts';

/** 100,000 requests or 256 MB per batch (counted in 10^6 bytes, to stay clear of the limit). */
export const ANTHROPIC_BATCH_LIMITS = { maxRequests: 100_000, maxBytes: 256_000_000 };

const NAME = 'anthropic';

export function createAnthropicBatchBackend(settings: LlmSettings, opts: ProviderOptions): BatchBackend {
  const { getClient, call } = sdkCaller(NAME, () => createAnthropicClient(settings, opts));

  return {
    provider: 'anthropic',
    api: '/v1/messages',
    limits: ANTHROPIC_BATCH_LIMITS,

    async line(item) {
      // The first call's way of asking for structure: output_config.format.
      const wire = await messagesWireRequest(item.req, true);
      return JSON.stringify({ custom_id: item.customId, params: wire.body });
    },

    async submit(lines) {
      const requests = lines.map((l) => JSON.parse(l) as BatchCreateParams.Request);
      const batch = await call(({ client }) => client.messages.batches.create({ requests }));
      return { batchId: batch.id, expiresAt: batch.expires_at ?? null, extra: {} };
    },

    async status(batchId, signal): Promise<BatchStatus> {
      const batch = await call(({ client }) => client.messages.batches.retrieve(batchId, {}, { signal }), signal);
      const c = batch.request_counts;
      const detail = `${batch.processing_status}, ${c.succeeded} succeeded, ${c.errored} errored, ${c.expired} expired, ${c.canceled} canceled, ${c.processing} processing`;
      return { state: batch.processing_status === 'ended' ? 'ended' : 'running', detail };
    },

    async *results(batchId, signal): AsyncIterable<BatchResult> {
      const handle = await getClient();
      const stream = await call(({ client }) => client.messages.batches.results(batchId, {}, { signal }), signal);
      const iterator = stream[Symbol.asyncIterator]();
      for (;;) {
        let next: IteratorResult<unknown>;
        try {
          next = await iterator.next();
        } catch (err) {
          // A line the SDK cannot decode ends the stream: the engine keeps the manifest and reports the rest.
          throw toProviderError(err, NAME, handle.secrets, signal);
        }
        if (next.done) return;
        yield resultOf(next.value, handle.secrets);
      }
    },

    async cancel(batchId, signal) {
      await call(({ client }) => client.messages.batches.cancel(batchId, {}, { signal }), signal);
    },
  };
}

interface IndividualResponse {
  custom_id?: unknown;
  result?: { type?: string; message?: unknown; error?: { error?: { type?: string; message?: string } } };
}

/** One result line of a message batch. */
export function resultOf(value: unknown, secrets: readonly string[]): BatchResult {
  const line = value as IndividualResponse | null;
  if (typeof line?.custom_id !== 'string') return { customId: null, ok: false, reason: 'a result line has no custom_id' };
  const customId = line.custom_id;
  const result = line.result;
  switch (result?.type) {
    case 'succeeded':
      try {
        return { customId, ok: true, answer: answerFromMessage(NAME, result.message) };
      } catch (err) {
        return { customId, ok: false, reason: redactSecrets((err as Error).message, secrets) };
      }
    case 'errored': {
      const e = result.error?.error;
      return { customId, ok: false, reason: redactSecrets(`errored: ${e?.type ?? 'error'}: ${e?.message ?? 'no message'}`, secrets) };
    }
    case 'canceled':
    case 'expired':
      return { customId, ok: false, reason: result.type };
    default:
      return { customId, ok: false, reason: `unknown result type ${JSON.stringify(result?.type ?? null)}` };
  }
}
