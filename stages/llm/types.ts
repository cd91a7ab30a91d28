// The one interface every stage uses to talk to a language model.
import type { ZodType } from 'zod';

/** Who can answer: the offline analyzer, and each provider with a spec in llm/providers/index.ts (the compiler asks for it). */
export const PROVIDER_NAMES = ['offline', 'openai', 'azure', 'anthropic', 'anthropic_bedrock', 'openai_compatible'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

/** Providers whose batch API the batch engine speaks (stages/llm/batch/). */
export const BATCH_PROVIDERS: readonly ProviderName[] = ['openai', 'anthropic'];

/** Whether the batch engine can send this provider's requests through a batch API. */
export function batchSupported(provider: ProviderName): boolean {
  return BATCH_PROVIDERS.includes(provider);
}

/** The resolved LLM settings of one stage (from pipeline.yaml, defaults filled in). */
export interface LlmSettings {
  provider: ProviderName;
  model: string;
  temperature: number;
  max_tokens: number;
  concurrency: number;
  /** For openai_compatible (vLLM, Ollama, LM Studio) or a proxy. Part of the request hash (the endpoint decides the model; see endpoint.ts). */
  base_url: string | null;
  /** Name of the environment variable that holds the key, when not the provider's default. */
  api_key_env: string | null;
  /** Seconds before one HTTP attempt is abandoned. */
  timeout_s: number;
  /** Attempts after the first one, for retryable failures (408/409/429/5xx, timeouts). */
  max_retries: number;
  /** Stop the stage before it would spend more than this (null: no budget). */
  max_cost_usd: number | null;
  /**
   * Send the stage's independent requests (summaries, parallel assignment)
   * through the provider's batch API: about half price, results within the
   * provider's 24-hour window (stages/llm/batch/). OpenAI and Anthropic only.
   */
  batch: boolean;
  /** Batch mode: seconds between two status checks of a running batch. */
  batch_poll_seconds: number;
  /** Batch mode: minutes to wait for a batch before the stage ends as pending (a later run polls it again). */
  batch_wait_minutes: number;
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** What a stage asks for. `schema` requests a structured (JSON) answer validated by zod. */
export interface LlmRequest<T = unknown> {
  /** Stage/step name, for logs only (not hashed). */
  step: string;
  messages: ChatMessage[];
  schema?: { name: string; zod: ZodType<T> };
}

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
}

export interface LlmResult<T = unknown> {
  /** Raw answer text. */
  text: string;
  /** The validated structured answer when a schema was given. */
  value: T | undefined;
  usage: Usage;
  /** USD, or null when the model is not in the price table. */
  costUsd: number | null;
  /** True when served from the response store (no network call, no cost incurred now). */
  cached: boolean;
  /** sha256 of the canonical request: the store key. */
  requestHash: string;
  /** HTTP attempts made for this answer (0 when cached). */
  attempts: number;
}

/** A provider turns one canonical request into one answer. Retries, store and limits live outside. */
export interface Provider {
  complete(
    req: { model: string; temperature: number; max_tokens: number; messages: ChatMessage[]; schema?: { name: string; zod: ZodType } },
    signal?: AbortSignal,
  ): Promise<{ text: string; parsed?: unknown; usage: Usage }>;
}
