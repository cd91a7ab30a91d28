import { describe, expect, it } from 'vitest';
import { AbortedError, ProviderError, isRetryableStatus } from '../stages/llm/errors.ts';
import { backoffDelay, parseRetryAfter, sleep, withRetry } from '../stages/llm/retry.ts';

const http = (status: number, retryAfterMs: number | null = null) =>
  new ProviderError({ provider: 'p', message: `HTTP ${status}`, status, kind: 'http', retryable: isRetryableStatus(status), retryAfterMs });

describe('isRetryableStatus', () => {
  it('retries 408, 409, 429 and 5xx only', () => {
    expect([408, 409, 429, 500, 502, 503, 504, 529].every(isRetryableStatus)).toBe(true);
    expect([400, 401, 403, 404, 413, 422].some(isRetryableStatus)).toBe(false);
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('reads retry-after-ms, seconds and HTTP dates', () => {
    expect(parseRetryAfter(new Headers({ 'retry-after-ms': '1500', 'retry-after': '9' }), now)).toBe(1500);
    expect(parseRetryAfter(new Headers({ 'retry-after': '3' }), now)).toBe(3000);
    expect(parseRetryAfter(new Headers({ 'retry-after': '0.5' }), now)).toBe(500);
    expect(parseRetryAfter({ 'Retry-After': 'Thu, 01 Jan 2026 00:00:10 GMT' }, now)).toBe(10_000);
    expect(parseRetryAfter({ 'retry-after': 'Wed, 31 Dec 2025 23:59:00 GMT' }, now)).toBe(0);
  });
  it('ignores absent or unreadable values', () => {
    expect(parseRetryAfter(undefined, now)).toBeNull();
    expect(parseRetryAfter(new Headers(), now)).toBeNull();
    expect(parseRetryAfter({ 'retry-after': 'soon' }, now)).toBeNull();
    expect(parseRetryAfter({ 'retry-after': '-4' }, now)).toBeNull();
  });
});

describe('backoffDelay', () => {
  it('is full jitter under an exponential, capped ceiling', () => {
    const policy = { maxRetries: 9, baseDelayMs: 100, maxDelayMs: 1000 };
    expect(backoffDelay(1, policy, () => 0.999)).toBe(99);
    expect(backoffDelay(3, policy, () => 0.5)).toBe(200);
    expect(backoffDelay(10, policy, () => 0.5)).toBe(500);
    expect(backoffDelay(4, policy, () => 0)).toBe(0);
  });
});

describe('withRetry', () => {
  it('retries retryable errors, honouring Retry-After, and counts attempts', async () => {
    const delays: number[] = [];
    const errors = [http(429, 2000), http(503)];
    const out = await withRetry(
      async () => {
        const e = errors.shift();
        if (e) throw e;
        return 'ok';
      },
      { maxRetries: 3, baseDelayMs: 100 },
      { sleep: async (ms) => void delays.push(ms), random: () => 0.5 },
    );
    expect(out).toEqual({ value: 'ok', attempts: 3 });
    expect(delays).toEqual([2000, 100]);
  });

  it('clamps a very long Retry-After', async () => {
    const delays: number[] = [];
    const errors = [http(429, 3_600_000)];
    await withRetry(async () => {
      const e = errors.shift();
      if (e) throw e;
      return 1;
    }, { maxRetries: 1, maxRetryAfterMs: 60_000 }, { sleep: async (ms) => void delays.push(ms) });
    expect(delays).toEqual([60_000]);
  });

  it('throws at once on non-retryable errors and other exceptions', async () => {
    let calls = 0;
    await expect(withRetry(async () => { calls++; throw http(400); }, { maxRetries: 5 }, { sleep: async () => {} })).rejects.toMatchObject({ status: 400, attempts: 1 });
    await expect(withRetry(async () => { calls++; throw new TypeError('bug'); }, { maxRetries: 5 }, { sleep: async () => {} })).rejects.toBeInstanceOf(TypeError);
    expect(calls).toBe(2);
  });

  it('gives up after maxRetries with the last error and the attempt count', async () => {
    let calls = 0;
    const err = await withRetry(async () => { calls++; throw http(500); }, { maxRetries: 2 }, { sleep: async () => {} }).catch((e: unknown) => e);
    expect(calls).toBe(3);
    expect(err).toMatchObject({ status: 500, attempts: 3 });
  });

  it('an abort ends the wait and prevents further attempts', async () => {
    const controller = new AbortController();
    let calls = 0;
    const p = withRetry(async () => { calls++; throw http(429, 60_000); }, { maxRetries: 5 }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expect(p).rejects.toBeInstanceOf(AbortedError);
    expect(calls).toBe(1);
    await expect(sleep(10, AbortSignal.abort())).rejects.toBeInstanceOf(AbortedError);
  });
});
