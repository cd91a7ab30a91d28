// OpenAI's Batch API: the lines go up as one JSONL file (files.create with
// purpose "batch"), batches.create starts the work with a 24-hour window,
// batches.retrieve reports the status, and the answers come back as two JSONL
// files, output_file_id (answered lines) and error_file_id (failed, expired
// and cancelled lines), matched to requests by custom_id.
import { redactSecrets } from '../errors.ts';
import { createOpenAIClient, chatAnswerFromJson, OPENAI_BATCH_URLS, openaiWireRequest, responsesAnswerFromJson, usesResponsesApi } from '../providers/openai.ts';
import { sdkCaller } from '../providers/shared.ts';
import type { ProviderAnswer, ProviderOptions } from '../providers/shared.ts';
import type { LlmSettings } from '../types.ts';
import type { BatchBackend, BatchResult, BatchStatus } from './types.ts';

/** 50,000 requests and 200 MB per input file (counted in 10^6 bytes, to stay clear of the limit). */
export const OPENAI_BATCH_LIMITS = { maxRequests: 50_000, maxBytes: 200_000_000 };

const RUNNING = new Set(['validating', 'in_progress', 'finalizing', 'cancelling']);
const NAME = 'openai';

export function createOpenAIBatchBackend(settings: LlmSettings, opts: ProviderOptions): BatchBackend {
  const { getClient, call } = sdkCaller(NAME, () => createOpenAIClient(settings, opts));
  const api = usesResponsesApi(settings.model) ? OPENAI_BATCH_URLS.responses : OPENAI_BATCH_URLS.chat;
  const readAnswer = api === OPENAI_BATCH_URLS.responses ? responsesAnswerFromJson : chatAnswerFromJson;

  return {
    provider: 'openai',
    api,
    limits: OPENAI_BATCH_LIMITS,

    async line(item) {
      // The structured mode of a provider's first call: the server's json_schema support.
      const wire = await openaiWireRequest(item.req, 'json_schema', true);
      return JSON.stringify({ custom_id: item.customId, method: 'POST', url: OPENAI_BATCH_URLS[wire.api], body: wire.body });
    },

    async submit(lines) {
      return call(async ({ client }) => {
        const { toFile } = await import('openai');
        const file = await client.files.create({ file: await toFile(Buffer.from(lines.join('\n') + '\n'), 'batch.jsonl'), purpose: 'batch' });
        const batch = await client.batches.create({ input_file_id: file.id, endpoint: api as '/v1/chat/completions', completion_window: '24h' });
        return { batchId: batch.id, expiresAt: isoFromSeconds(batch.expires_at), extra: { input_file_id: file.id } };
      });
    },

    async status(batchId, signal): Promise<BatchStatus> {
      const batch = await call(({ client }) => client.batches.retrieve(batchId, { signal }), signal);
      const c = batch.request_counts;
      const counts = c ? `, ${c.completed} of ${c.total} done, ${c.failed} failed` : '';
      const errors = batch.errors?.data?.map((e) => e.message).filter(Boolean).join('; ');
      const detail = `${batch.status}${counts}${errors ? ` (${errors})` : ''}`;
      return { state: RUNNING.has(batch.status) ? 'running' : 'ended', detail };
    },

    async *results(batchId, signal): AsyncIterable<BatchResult> {
      const batch = await call(({ client }) => client.batches.retrieve(batchId, { signal }), signal);
      for (const fileId of [batch.output_file_id, batch.error_file_id]) {
        if (!fileId) continue;
        const text = await call(async ({ client }) => (await client.files.content(fileId, { signal })).text(), signal);
        const secrets = (await getClient()).secrets;
        for (const raw of text.split('\n')) {
          if (raw.trim() !== '') yield resultOfLine(raw, readAnswer, secrets);
        }
      }
    },

    async cancel(batchId, signal) {
      await call(({ client }) => client.batches.cancel(batchId, { signal }), signal);
    },
  };
}

interface OutputLine {
  custom_id?: unknown;
  response?: { status_code?: number; body?: unknown } | null;
  error?: { code?: string | null; message?: string | null } | null;
}

/** One line of an output or error file. */
export function resultOfLine(raw: string, readAnswer: (name: string, body: unknown) => ProviderAnswer, secrets: readonly string[]): BatchResult {
  let line: OutputLine;
  try {
    line = JSON.parse(raw) as OutputLine;
  } catch {
    return { customId: null, ok: false, reason: 'a result line is not JSON' };
  }
  if (typeof line?.custom_id !== 'string') return { customId: null, ok: false, reason: 'a result line has no custom_id' };
  const customId = line.custom_id;
  const clean = (s: string) => redactSecrets(s, secrets);
  if (line.error) {
    const code = line.error.code ?? 'error';
    const kind = code === 'batch_expired' ? 'expired' : code === 'batch_cancelled' ? 'canceled' : `errored (${code})`;
    return { customId, ok: false, reason: clean(`${kind}: ${line.error.message ?? ''}`) };
  }
  const status = line.response?.status_code ?? 0;
  if (status < 200 || status >= 300) {
    const message = (line.response?.body as { error?: { message?: string } } | undefined)?.error?.message ?? 'no message';
    return { customId, ok: false, reason: clean(`errored: HTTP ${status}: ${message}`) };
  }
  try {
    return { customId, ok: true, answer: readAnswer(NAME, line.response?.body) };
  } catch (err) {
    return { customId, ok: false, reason: clean((err as Error).message) };
  }
}

function isoFromSeconds(seconds: number | null | undefined): string | null {
  return typeof seconds === 'number' ? new Date(seconds * 1000).toISOString() : null;
}
