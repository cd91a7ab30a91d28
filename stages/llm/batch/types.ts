// The contract between the batch engine and a provider's batch API
// (backend.ts lists the backends; anthropic.ts and openai.ts implement it).
import type { ProviderAnswer, ProviderOptions, ProviderRequest } from '../providers/shared.ts';
import type { LlmSettings } from '../types.ts';

/** What one batch may hold. Beyond either, the engine submits several batches. */
export interface BatchLimits {
  maxRequests: number;
  /** Bytes of the serialized lines (OpenAI: the JSONL file; Anthropic: the request body). */
  maxBytes: number;
}

/** One request of a batch: its custom_id is the request hash. */
export interface BatchItem {
  customId: string;
  req: ProviderRequest;
}

/** The provider's view of one batch: still running, or ended (its results can be read). */
export type BatchStatus = { state: 'running'; detail: string } | { state: 'ended'; detail: string };

/** One result line: an answer, or why there is none (errored, expired, canceled, unreadable). */
export type BatchResult =
  | { customId: string; ok: true; answer: ProviderAnswer }
  | { customId: string; ok: false; reason: string }
  /** A line that names no request (not JSON, no custom_id): nothing can be matched to it. */
  | { customId: null; ok: false; reason: string };

export interface SubmittedBatch {
  batchId: string;
  /** When the provider gives up on the batch (ISO), when it says. */
  expiresAt: string | null;
  /** What else identifies the batch at the provider (OpenAI: the input file), for the manifest. */
  extra: Record<string, string>;
}

export interface BatchBackend {
  readonly provider: 'openai' | 'anthropic';
  /** The API the lines call ('/v1/chat/completions', '/v1/responses', '/v1/messages'), recorded in manifests. */
  readonly api: string;
  readonly limits: BatchLimits;
  /** The serialized line of one request; its UTF-8 length counts towards maxBytes. */
  line(item: BatchItem): Promise<string>;
  /**
   * Submits lines made by `line`. Not abortable on purpose: once the provider
   * has created a batch, the engine must live to write its manifest.
   */
  submit(lines: string[]): Promise<SubmittedBatch>;
  status(batchId: string, signal?: AbortSignal): Promise<BatchStatus>;
  /** The results of an ended batch, in whatever order the provider gives them. */
  results(batchId: string, signal?: AbortSignal): AsyncIterable<BatchResult>;
  cancel(batchId: string, signal?: AbortSignal): Promise<void>;
}

