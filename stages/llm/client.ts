// The LLM client every stage uses: store lookup, then (on a miss) a provider
// call under the stage's concurrency limit, with retries, budget check,
// validation of structured answers (re-asking with the errors), accounting,
// and an immediate atomic store write of each valid answer.
import pLimit from 'p-limit';
import { z } from 'zod';
import type { ZodType } from 'zod';
import { endpointIdentity } from './endpoint.ts';
import type { EndpointIdentity } from './endpoint.ts';
import { createEnvLookup } from './env.ts';
import { AbortedError, InvalidAnswerError, ProviderError, formatIssues } from './errors.ts';
import type { AnswerIssue } from './errors.ts';
import { costUsd } from './pricing.ts';
import { createProvider } from './providers/index.ts';
import type { InvocationBudget } from './budget.ts';
import { RateGate } from './rate.ts';
import { createSpendLedger } from './spend.ts';
import { withRetry } from './retry.ts';
import type { RetryPolicy } from './retry.ts';
import { requestHash } from './store.ts';
import type { ResponseStore, StoredAnswer } from './store.ts';
import type { ChatMessage, LlmRequest, LlmResult, LlmSettings, Provider, ProviderName, Usage } from './types.ts';
import { addCost, addUsage, ZERO_USAGE } from './usage.ts';

export type LlmEvent =
  | { type: 'cached'; step: string; requestHash: string }
  | { type: 'retry'; step: string; requestHash: string; attempt: number; delayMs: number; reason: string }
  | { type: 'reask'; step: string; requestHash: string; round: number; issues: AnswerIssue[] }
  | { type: 'done'; step: string; requestHash: string; attempts: number; usage: Usage; costUsd: number | null }
  | { type: 'failed'; step: string; requestHash: string; attempts: number; error: Error }
  | { type: 'warning'; step: string; requestHash: string; message: string };

export interface LlmClientOptions {
  /** Where answers are kept; null: neither read nor write (--no-store). */
  store: ResponseStore | null;
  /**
   * Ask again even on a store hit, and overwrite the stored answer
   * (META_ANALYSIS_REFRESH). Answers bought by this client are still reused:
   * a refresh pays once per distinct request.
   */
  refresh?: boolean;
  /** Environment to read keys from (default process.env), before `<workspaceRoot>/.env`. */
  env?: NodeJS.ProcessEnv;
  workspaceRoot?: string;
  /** Aborting stops new calls and aborts those in flight; nothing partial is stored. */
  signal?: AbortSignal;
  /** Replaces global fetch in the SDK clients (tests). */
  fetch?: typeof fetch;
  /** Re-asks after an invalid structured answer (default 2). */
  maxValidationRetries?: number;
  onEvent?: (e: LlmEvent) => void;
  /** Use this provider instead of the one named in settings (tests, custom backends). */
  provider?: Provider;
  /** The invocation's budget (budget.max_cost_usd in pipeline.yaml), shared by every stage of one nx run. */
  budget?: InvocationBudget | null;
  /** Retry tuning and test hooks. */
  retry?: { baseDelayMs?: number; maxDelayMs?: number; maxRetryAfterMs?: number; sleep?: (ms: number, signal?: AbortSignal) => Promise<void>; random?: () => number };
}

export interface LlmPlan {
  requestHash: string;
  /** True when the store would answer (under refresh: only answers bought by this client). */
  cached: boolean;
  /** Estimate: characters / 4. */
  estInputTokens: number;
  /** Upper-bound estimate (output at max_tokens); 0 when cached, null when the model has no price. */
  estCostUsd: number | null;
}

export interface LlmTotals {
  /** complete() calls that ended (answered or failed). */
  requests: number;
  cached: number;
  /** Answered by the provider in this run. */
  paid: number;
  failed: number;
  /** HTTP attempts, retries and re-asks included. */
  attempts: number;
  reasks: number;
  /** Tokens of every provider answer received in this run (invalid ones included: they were paid). */
  usage: Usage;
  /** Known cost of this run's provider answers, USD. */
  spentUsd: number;
  /** Provider answers whose model has no price (their cost is not in spentUsd). */
  unknownCostAnswers: number;
  /** HTTP attempts abandoned after they were sent (timed out at timeout_s, or aborted): the provider may still bill them. */
  abandoned: number;
  /** Their worst-case cost (prompt + max_tokens at the model's price), included in spentUsd; null when the model has no price. */
  abandonedUsd: number | null;
}

export interface LlmClient {
  readonly settings: LlmSettings;
  complete<T>(req: LlmRequest<T>): Promise<LlmResult<T>>;
  plan(req: LlmRequest): LlmPlan;
  totals(): LlmTotals;
}

/** What is hashed: never keys, timeouts or timestamps. */
export interface CanonicalRequest {
  provider: ProviderName;
  model: string;
  temperature: number;
  max_tokens: number;
  messages: ChatMessage[];
  schema: Record<string, unknown> | null;
  /**
   * Which server answers (base URL, Azure API version, Bedrock region; see
   * endpoint.ts). Absent for the provider's default endpoint, so those keys
   * are the ones stored before endpoints were hashed.
   */
  endpoint?: EndpointIdentity;
}

const schemaCache = new WeakMap<ZodType, Record<string, unknown>>();

/** JSON Schema of a zod schema (memoized per schema object). */
export function schemaJson(zod: ZodType): Record<string, unknown> {
  let json = schemaCache.get(zod);
  if (!json) {
    json = z.toJSONSchema(zod, { unrepresentable: 'any' }) as Record<string, unknown>;
    schemaCache.set(zod, json);
  }
  return json;
}

/** The canonical request; `endpoint` is `endpointIdentity(settings, env)` (null: the default endpoint). */
export function canonicalRequest(settings: LlmSettings, req: LlmRequest, endpoint: EndpointIdentity | null): CanonicalRequest {
  return {
    provider: settings.provider,
    model: settings.model,
    temperature: settings.temperature,
    max_tokens: settings.max_tokens,
    messages: req.messages.map((m) => ({ role: m.role, content: m.content })),
    schema: req.schema ? schemaJson(req.schema.zod) : null,
    ...(endpoint ? { endpoint: { ...endpoint } } : {}),
  };
}

/** The canonical request and its hash (the store key, and a batch line's custom_id). */
export function requestKey(settings: LlmSettings, req: LlmRequest, endpoint: EndpointIdentity | null): { canonical: CanonicalRequest; hash: string } {
  const canonical = canonicalRequest(settings, req, endpoint);
  return { canonical, hash: requestHash(canonical) };
}

/**
 * The store's answer to a request, validated like a fresh one: `hit` when it
 * passes the request's schema (or there is none), `stale` with the issues when
 * a stored answer no longer passes, undefined when nothing is stored.
 */
export function lookupStored<T>(
  store: ResponseStore,
  hash: string,
  canonical: CanonicalRequest,
  req: LlmRequest<T>,
): { kind: 'hit'; answer: StoredAnswer; value: T | undefined } | { kind: 'stale'; issues: AnswerIssue[] } | undefined {
  const answer = store.get(hash, canonical);
  if (!answer) return undefined;
  if (!req.schema) return { kind: 'hit', answer, value: undefined };
  const check = validateAnswer(answer.text, undefined, req.schema.zod);
  return check.ok ? { kind: 'hit', answer, value: check.value } : { kind: 'stale', issues: check.issues };
}

/** What a provider is asked for one request at `settings` (the batch engine sends the same). */
export function providerRequest(settings: LlmSettings, messages: ChatMessage[], schema: LlmRequest['schema']): Parameters<Provider['complete']>[0] {
  return { model: settings.model, temperature: settings.temperature, max_tokens: settings.max_tokens, messages, schema };
}

/** Input tokens of a request, estimated as characters / 4 (schema included). */
export function estimateInputTokens(messages: ChatMessage[], schema: Record<string, unknown> | null): number {
  let chars = 0;
  for (const m of messages) chars += m.content.length;
  if (schema) chars += JSON.stringify(schema).length;
  return Math.ceil(chars / 4);
}

/**
 * The JSON value in an answer: the whole text, else the text inside a Markdown
 * fence, else from the first `{` to the last `}`.
 */
export function extractJson(text: string): { ok: true; value: unknown } | { ok: false; message: string } {
  const attempts: string[] = [text.trim()];
  const fence = /```(?:json)?\s*([\s\S]*?)```/i.exec(text);
  if (fence) attempts.push(fence[1]!.trim());
  const first = text.indexOf('{');
  const last = text.lastIndexOf('}');
  if (first >= 0 && last > first) attempts.push(text.slice(first, last + 1));
  let error = 'the answer contains no JSON object';
  for (const candidate of attempts) {
    if (candidate === '') continue;
    try {
      return { ok: true, value: JSON.parse(candidate) as unknown };
    } catch (err) {
      error = `the answer is not valid JSON (${(err as Error).message})`;
    }
  }
  return { ok: false, message: error };
}

function issuePath(path: readonly PropertyKey[]): string {
  return path.map((p) => String(p)).join('.');
}

/** Validates a structured answer: the SDK's parsed value when it passes zod, else the JSON found in the text. */
export function validateAnswer<T>(
  text: string,
  parsed: unknown,
  zod: ZodType<T>,
): { ok: true; value: T } | { ok: false; issues: AnswerIssue[] } {
  if (parsed !== undefined && parsed !== null) {
    const r = zod.safeParse(parsed);
    if (r.success) return { ok: true, value: r.data };
  }
  const json = extractJson(text);
  if (!json.ok) return { ok: false, issues: [{ path: '', message: json.message }] };
  const r = zod.safeParse(json.value);
  if (r.success) return { ok: true, value: r.data };
  return { ok: false, issues: r.error.issues.map((i) => ({ path: issuePath(i.path), message: i.message })) };
}

const MAX_ISSUES_FED_BACK = 5;

/** The user message that asks again after an invalid answer. */
export function reaskMessage(issues: AnswerIssue[]): string {
  const shown = issues.slice(0, MAX_ISSUES_FED_BACK).map((i) => `- ${i.path || '(whole answer)'}: ${i.message}`);
  if (issues.length > MAX_ISSUES_FED_BACK) shown.push(`- ... and ${issues.length - MAX_ISSUES_FED_BACK} more`);
  return [
    'Your previous answer does not match the required JSON format. Problems found:',
    ...shown,
    'Reply again with the complete, corrected JSON object only.',
  ].join('\n');
}

export function createLlmClient(settings: LlmSettings, opts: LlmClientOptions): LlmClient {
  const store = opts.store;
  const signal = opts.signal;
  const maxReasks = opts.maxValidationRetries ?? 2;
  const limit = pLimit(Math.max(1, Math.floor(settings.concurrency)));
  // Paces this client's calls once the provider answers 429 (stages/llm/rate.ts).
  const gate = new RateGate({ concurrency: settings.concurrency, maxPauseMs: opts.retry?.maxRetryAfterMs });
  const policy: RetryPolicy = {
    maxRetries: settings.max_retries,
    baseDelayMs: opts.retry?.baseDelayMs,
    maxDelayMs: opts.retry?.maxDelayMs,
    maxRetryAfterMs: opts.retry?.maxRetryAfterMs,
  };

  // One lookup for the provider and the endpoint identity, so the hash names the server the calls go to.
  const env = createEnvLookup({ env: opts.env, workspaceRoot: opts.workspaceRoot });
  const endpoint = endpointIdentity(settings, env);
  let provider: Provider | undefined = opts.provider;
  const getProvider = (): Provider => {
    provider ??= createProvider(settings, { env, fetch: opts.fetch });
    return provider;
  };

  const totals: LlmTotals = {
    requests: 0,
    cached: 0,
    paid: 0,
    failed: 0,
    attempts: 0,
    reasks: 0,
    usage: { ...ZERO_USAGE },
    spentUsd: 0,
    unknownCostAnswers: 0,
    abandoned: 0,
    abandonedUsd: 0,
  };
  /** Hashes answered by the provider through this client: fresh even under refresh. */
  const boughtHere = new Set<string>();
  const mayRead = (hash: string) => !!store && (!opts.refresh || boughtHere.has(hash));

  const emit = (e: LlmEvent) => {
    try {
      opts.onEvent?.(e);
    } catch {
      // a broken progress printer must not break the calls
    }
  };
  const checkAborted = () => {
    if (signal?.aborted) throw new AbortedError();
  };

  const spend = createSpendLedger(settings, opts.budget ?? null, totals, estimateInputTokens);

  /**
   * One ask of the provider, with retries under the rate gate; its attempts
   * counted in `attempts`, each reserved against the caps (spend.attempt).
   */
  async function askOnce(p: Provider, step: string, hash: string, messages: ChatMessage[], schema: LlmRequest['schema']): Promise<{ answer: Awaited<ReturnType<Provider['complete']>>; attempts: number }> {
    const lane = gate.lane(signal);
    const json = schema ? schemaJson(schema.zod) : null;
    const once = () => spend.attempt(step, messages, json, signal, (send) => lane.run(() => send(() => p.complete(providerRequest(settings, messages, schema), signal))));
    try {
      const outcome = await withRetry(once, policy, {
        signal,
        sleep: opts.retry?.sleep,
        random: opts.retry?.random,
        onRetry: ({ attempt, delayMs, error }) => emit({ type: 'retry', step, requestHash: hash, attempt, delayMs, reason: error.message }),
      });
      const answer = outcome.value as Awaited<ReturnType<Provider['complete']>> & { extraRequests?: number };
      return { answer, attempts: outcome.attempts + (answer.extraRequests ?? 0) };
    } finally {
      lane.close();
    }
  }

  async function callProvider<T>(req: LlmRequest<T>, canonical: CanonicalRequest, hash: string): Promise<LlmResult<T>> {
    let attempts = 0;
    try {
      checkAborted();
      const p = getProvider();
      let messages = req.messages;
      let used: Usage = { ...ZERO_USAGE };
      let cost: number | null = 0;
      for (let round = 0; ; round++) {
        let answer: Awaited<ReturnType<Provider['complete']>>;
        try {
          const asked = await askOnce(p, req.step, hash, messages, req.schema);
          answer = asked.answer;
          attempts += asked.attempts;
        } catch (err) {
          if (err instanceof ProviderError) {
            attempts += err.attempts;
            err.attempts = attempts;
          }
          throw err;
        }
        const callCost = spend.record(answer.usage);
        used = addUsage(used, answer.usage);
        cost = addCost(cost, callCost);

        let value: T | undefined;
        if (req.schema) {
          const check = validateAnswer(answer.text, answer.parsed, req.schema.zod);
          if (!check.ok) {
            if (round >= maxReasks) {
              throw new InvalidAnswerError({ step: req.step, requestHash: hash, issues: check.issues, lastAnswer: answer.text, attempts, asks: round + 1 });
            }
            totals.reasks += 1;
            emit({ type: 'reask', step: req.step, requestHash: hash, round: round + 1, issues: check.issues });
            messages = [...messages, { role: 'assistant', content: answer.text }, { role: 'user', content: reaskMessage(check.issues) }];
            continue;
          }
          value = check.value;
        }

        // Stored under the hash of the original request, even when a re-ask produced it; on disk before it is used.
        await store?.save(hash, { request: canonical, text: answer.text, usage: used, cost_usd: cost });
        boughtHere.add(hash);
        totals.paid += 1;
        totals.attempts += attempts;
        emit({ type: 'done', step: req.step, requestHash: hash, attempts, usage: used, costUsd: cost });
        return { text: answer.text, value, usage: used, costUsd: cost, cached: false, requestHash: hash, attempts };
      }
    } catch (err) {
      totals.failed += 1;
      totals.attempts += attempts;
      const error = err instanceof Error ? err : new Error(String(err));
      emit({ type: 'failed', step: req.step, requestHash: hash, attempts, error });
      throw error;
    }
  }

  return {
    settings,

    async complete<T>(req: LlmRequest<T>): Promise<LlmResult<T>> {
      checkAborted();
      const { canonical, hash } = requestKey(settings, req, endpoint);
      try {
        const stored = store && mayRead(hash) ? lookupStored(store, hash, canonical, req) : undefined;
        if (stored?.kind === 'hit') {
          const hit = stored.answer;
          totals.cached += 1;
          emit({ type: 'cached', step: req.step, requestHash: hash });
          return { text: hit.text, value: stored.value, usage: hit.usage, costUsd: hit.cost_usd, cached: true, requestHash: hash, attempts: 0 };
        }
        if (stored?.kind === 'stale') {
          emit({
            type: 'warning',
            step: req.step,
            requestHash: hash,
            message: `stored answer ${hash.slice(0, 12)} no longer passes validation (${formatIssues(stored.issues, 2)}); asking again`,
          });
        }
        return await limit(() => callProvider(req, canonical, hash));
      } finally {
        totals.requests += 1;
      }
    },

    plan(req) {
      const { canonical, hash } = requestKey(settings, req, endpoint);
      const cached = !!store && mayRead(hash) && store.get(hash, canonical) !== undefined;
      const estInputTokens = estimateInputTokens(canonical.messages, canonical.schema);
      const estCostUsd = cached ? 0 : costUsd(settings.model, { input_tokens: estInputTokens, output_tokens: settings.max_tokens });
      return { requestHash: hash, cached, estInputTokens, estCostUsd };
    },

    totals: () => ({ ...totals, usage: { ...totals.usage } }),
  };
}
