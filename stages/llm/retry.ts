// The one place that retries LLM calls (every SDK client gets maxRetries: 0).
// Exponential backoff with full jitter, a server's Retry-After wins, an abort
// stops the wait at once, and every attempt is counted.
import { AbortedError, ProviderError } from './errors.ts';

export interface RetryPolicy {
  /** Attempts after the first one. */
  maxRetries: number;
  /** First backoff ceiling; doubles per retry. */
  baseDelayMs?: number;
  /** Ceiling of the computed backoff. */
  maxDelayMs?: number;
  /** Longest Retry-After we honour; longer requests are clamped to this. */
  maxRetryAfterMs?: number;
}

export interface RetryHooks {
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** In [0, 1); Math.random by default. */
  random?: () => number;
  signal?: AbortSignal;
  onRetry?: (info: { attempt: number; delayMs: number; error: ProviderError }) => void;
}

export const DEFAULT_BASE_DELAY_MS = 1000;
export const DEFAULT_MAX_DELAY_MS = 30_000;
export const DEFAULT_MAX_RETRY_AFTER_MS = 120_000;

/** Header access shared by fetch Headers and plain records. */
export type HeaderSource = { get(name: string): string | null } | Record<string, string | string[] | undefined>;

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const rec = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(rec).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : rec[key];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The delay a response asks for, in ms: `retry-after-ms` (milliseconds), else
 * `retry-after` as seconds or as an HTTP date. Null when absent or unreadable.
 */
export function parseRetryAfter(headers: HeaderSource | null | undefined, now: number = Date.now()): number | null {
  if (!headers) return null;
  const ms = header(headers, 'retry-after-ms');
  if (ms !== undefined && ms.trim() !== '') {
    const n = Number(ms);
    if (Number.isFinite(n) && n >= 0) return n;
  }
  const ra = header(headers, 'retry-after');
  if (ra === undefined || ra.trim() === '') return null;
  const seconds = Number(ra);
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : null;
  const date = Date.parse(ra);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - now);
}

/** Full jitter: uniform in [0, min(maxDelay, base * 2^(retry-1))). `retry` starts at 1. */
export function backoffDelay(retry: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const base = policy.baseDelayMs ?? DEFAULT_BASE_DELAY_MS;
  const cap = policy.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
  const ceiling = Math.min(cap, base * 2 ** Math.max(0, retry - 1));
  return Math.floor(random() * ceiling);
}

/** Waits `ms`, rejecting with AbortedError as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new AbortedError());
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryOutcome<T> {
  value: T;
  /** Attempts made, including the successful one. */
  attempts: number;
}

/**
 * Runs `fn` until it succeeds, fails with something not retryable, or the
 * retries are used up. The error thrown last carries `attempts` when it is a
 * ProviderError. Only ProviderErrors with `retryable` are retried.
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  policy: RetryPolicy,
  hooks: RetryHooks = {},
): Promise<RetryOutcome<T>> {
  const doSleep = hooks.sleep ?? sleep;
  const random = hooks.random ?? Math.random;
  const maxRetryAfter = policy.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
  for (let attempt = 1; ; attempt++) {
    if (hooks.signal?.aborted) throw new AbortedError();
    try {
      return { value: await fn(attempt), attempts: attempt };
    } catch (err) {
      if (err instanceof ProviderError) err.attempts = attempt;
      if (hooks.signal?.aborted) throw new AbortedError();
      if (!(err instanceof ProviderError) || !err.retryable || attempt > policy.maxRetries) throw err;
      const delayMs =
        err.retryAfterMs !== null ? Math.min(err.retryAfterMs, maxRetryAfter) : backoffDelay(attempt, policy, random);
      hooks.onRetry?.({ attempt, delayMs, error: err });
      await doSleep(delayMs, hooks.signal);
    }
  }
}
