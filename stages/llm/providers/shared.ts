// Pieces every provider needs: lazy client creation, key lookup with a typed
// error, turning SDK errors into ProviderErrors (keys redacted), the JSON
// instruction for servers without structured output, and a way to read the
// raw body of a response whose structured parse failed (so a paid answer can
// still be re-asked about instead of being lost).
import { AsyncLocalStorage } from 'node:async_hooks';
import type { ZodType } from 'zod';
import type { EnvLookup } from '../env.ts';
import { AbortedError, LlmError, MissingCredentialsError, ProviderError, isRetryableStatus, redactSecrets } from '../errors.ts';
import { parseRetryAfter } from '../retry.ts';
import type { HeaderSource } from '../retry.ts';
import type { ChatMessage, LlmSettings, Provider, Usage } from '../types.ts';

export type ProviderRequest = Parameters<Provider['complete']>[0];

/** What our providers return; `extraRequests` counts HTTP requests beyond the first (format fallbacks). */
export interface ProviderAnswer {
  text: string;
  parsed?: unknown;
  usage: Usage;
  extraRequests?: number;
}

export interface NetworkProvider extends Provider {
  complete(req: ProviderRequest, signal?: AbortSignal): Promise<ProviderAnswer>;
  /** Builds the client (keys, endpoint, region) without sending anything: a missing key throws MissingCredentialsError, impossible settings LlmConfigError. */
  preflight(): Promise<void>;
}

export interface ProviderOptions {
  env: EnvLookup;
  /** Replaces global fetch (tests). */
  fetch?: typeof fetch;
}

export type ProviderFactory = (settings: LlmSettings, opts: ProviderOptions) => NetworkProvider;

/**
 * What the pipeline needs to know of a provider besides its endpoint, said in
 * its module: adding a provider is its module, its spec in providers/index.ts,
 * its endpoint rules in providers/endpoints.ts and its name in PROVIDER_NAMES
 * (llm/types.ts).
 */
export interface ProviderSpec {
  /** Builds the provider (no network access, no key lookup until the first call). */
  create: ProviderFactory;
  /** Why its requests cannot go through a batch API here; null when one is supported (its backend: llm/batch/backend.ts). */
  noBatch: string | null;
}

/** Reads the first variable that is set, or throws naming them all. */
export function requireEnv(env: EnvLookup, provider: string, names: readonly string[], hint?: string): string {
  for (const name of names) {
    const value = env(name);
    if (value !== undefined) return value;
  }
  throw new MissingCredentialsError(provider, names.join(' or '), hint);
}

/**
 * Memoizes an async factory; a failure is not memoized, so a missing key keeps
 * failing with the same typed error and a key added later is picked up.
 */
export function lazy<T>(make: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= make().catch((err: unknown) => {
      pending = undefined;
      throw err;
    });
    return pending;
  };
}

// --- raw response capture -------------------------------------------------

interface CaptureSlot {
  response?: Response;
}

const captureSlot = new AsyncLocalStorage<CaptureSlot>();

/** Wraps fetch so that a call run through `runCapturing` can read the raw JSON body afterwards. */
export function capturingFetch(inner: typeof fetch = globalThis.fetch): typeof fetch {
  return async (input, init) => {
    const response = await inner(input, init);
    const slot = captureSlot.getStore();
    if (slot && response.ok) slot.response = response.clone();
    return response;
  };
}

export function runCapturing<T>(fn: () => Promise<T>): { result: Promise<T>; rawJson(): Promise<unknown> } {
  const slot: CaptureSlot = {};
  const result = captureSlot.run(slot, fn);
  return {
    result,
    async rawJson() {
      const response = slot.response;
      slot.response = undefined;
      if (!response) return undefined;
      try {
        return JSON.parse(await response.text()) as unknown;
      } catch {
        return undefined;
      }
    },
  };
}

/**
 * Runs an SDK parse helper and reads its result. The helper throws when the
 * answer is not valid JSON or fails the schema; the answer was paid for, so it
 * is then read from the raw body (`fromRaw`) and the client re-asks with the errors.
 */
export async function parsedOrRaw<T>(parse: () => Promise<T>, read: (result: T) => ProviderAnswer, fromRaw: (raw: unknown) => ProviderAnswer): Promise<ProviderAnswer> {
  const call = runCapturing(parse);
  try {
    return read(await call.result);
  } catch (err) {
    const raw = await call.rawJson();
    if (raw === undefined) throw err;
    return fromRaw(raw);
  }
}

// --- errors -----------------------------------------------------------------

function errorName(err: unknown): string {
  return err instanceof Error ? (err.constructor?.name ?? err.name) : '';
}

/**
 * Maps what an SDK call threw onto our error types. SDK errors are matched by
 * shape (status, headers) and class name, which both SDKs share.
 */
export function toProviderError(err: unknown, provider: string, secrets: readonly (string | null | undefined)[], signal?: AbortSignal): Error {
  if (err instanceof LlmError) return err;
  const name = errorName(err);
  const raw = err instanceof Error ? err.message : String(err);
  const message = redactSecrets(raw, secrets);
  if (signal?.aborted || name === 'APIUserAbortError' || (err instanceof Error && err.name === 'AbortError')) {
    return new AbortedError(`${provider}: request aborted`);
  }
  if (name === 'APIConnectionTimeoutError') {
    return new ProviderError({ provider, message: `${provider}: request timed out`, kind: 'timeout', retryable: true });
  }
  if (name === 'APIConnectionError') {
    return new ProviderError({ provider, message: `${provider}: connection error: ${message}`, kind: 'connection', retryable: true });
  }
  const status = (err as { status?: unknown } | null)?.status;
  if (typeof status === 'number') {
    const headers = (err as { headers?: HeaderSource }).headers;
    return new ProviderError({
      provider,
      message: `${provider}: HTTP ${status}: ${message.replace(/^\d{3}\s+/, '')}`,
      status,
      kind: 'http',
      retryable: isRetryableStatus(status),
      retryAfterMs: parseRetryAfter(headers),
    });
  }
  if (err instanceof SyntaxError) {
    // The response body itself was not JSON (a proxy error page, a cut connection).
    return new ProviderError({ provider, message: `${provider}: unreadable response: ${message}`, kind: 'response', retryable: true });
  }
  return new ProviderError({ provider, message: `${provider}: ${message}`, kind: 'response', retryable: false });
}

/** A response that arrived but does not have the expected shape. */
export function malformed(provider: string, what: string): ProviderError {
  return new ProviderError({ provider, message: `${provider}: malformed response: ${what}`, kind: 'response', retryable: true });
}

/** True for a 400/422 whose message says the server does not understand the structured-output option. */
export function isFormatRejection(err: Error, words: RegExp): boolean {
  return err instanceof ProviderError && (err.status === 400 || err.status === 422) && words.test(err.message);
}

/**
 * Asks in `start` mode; while the server rejects that way of asking for JSON
 * (a format rejection naming one of `words`) and there is a lower mode, asks
 * again at once in the lower mode, which `remember` keeps for later calls.
 * The answer counts the extra requests.
 */
export async function withFormatFallback<M>(
  how: { start: M; lower: (mode: M) => M | null; words: RegExp; remember: (mode: M) => void },
  ask: (mode: M) => Promise<ProviderAnswer>,
): Promise<ProviderAnswer> {
  let mode = how.start;
  let extraRequests = 0;
  for (;;) {
    try {
      const answer = await ask(mode);
      return extraRequests ? { ...answer, extraRequests } : answer;
    } catch (err) {
      const lower = how.lower(mode);
      if (lower === null || !isFormatRejection(err as Error, how.words)) throw err;
      extraRequests++;
      mode = lower;
      how.remember(lower);
    }
  }
}

// --- structured answers without server support ------------------------------

// The schema's own method, not z.toJSONSchema: the same JSON, without loading zod
// where only an endpoint identity is needed (a stage's key script loads this file).
export function jsonSchemaOf(zod: ZodType): Record<string, unknown> {
  return zod.toJSONSchema({ unrepresentable: 'any' }) as Record<string, unknown>;
}

/** The instruction used when the server cannot be told the schema directly. */
export function jsonInstruction(schema: { name: string; zod: ZodType }): string {
  return (
    `Answer with a single JSON object (the "${schema.name}" object) and nothing else: no prose, no Markdown fences. ` +
    `It must conform to this JSON Schema:\n${JSON.stringify(jsonSchemaOf(schema.zod))}`
  );
}

/** Adds the JSON instruction as a trailing system message. */
export function withJsonInstruction(messages: ChatMessage[], schema: { name: string; zod: ZodType }): ChatMessage[] {
  return [...messages, { role: 'system', content: jsonInstruction(schema) }];
}

export function usage(input: unknown, output: unknown, total?: unknown): Usage {
  const i = typeof input === 'number' && Number.isFinite(input) ? input : 0;
  const o = typeof output === 'number' && Number.isFinite(output) ? output : 0;
  const t = typeof total === 'number' && Number.isFinite(total) ? total : i + o;
  return { input_tokens: i, output_tokens: o, total_tokens: t };
}

export function timeoutMs(settings: LlmSettings): number {
  return Math.max(1, Math.round(settings.timeout_s * 1000));
}

/**
 * The options every SDK client is built with: no SDK retries (retry.ts does
 * them), the stage's timeout (an explicit one also keeps the Anthropic SDK
 * from refusing large max_tokens without streaming), and the fetch that keeps
 * raw bodies readable.
 */
export function sdkTransport(settings: LlmSettings, opts: ProviderOptions): { maxRetries: 0; timeout: number; fetch: typeof fetch } {
  return { maxRetries: 0, timeout: timeoutMs(settings), fetch: capturingFetch(opts.fetch) };
}

/**
 * A lazily made SDK client and `call`, which runs an SDK call on it and turns
 * what it throws into our error types with the keys redacted.
 */
export function sdkCaller<H extends { secrets: readonly string[] }>(
  provider: string,
  make: () => Promise<H>,
): { getClient: () => Promise<H>; call: <T>(fn: (handle: H) => Promise<T>, signal?: AbortSignal) => Promise<T> } {
  const getClient = lazy(make);
  async function call<T>(fn: (handle: H) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const handle = await getClient();
    try {
      return await fn(handle);
    } catch (err) {
      throw toProviderError(err, provider, handle.secrets, signal);
    }
  }
  return { getClient, call };
}
