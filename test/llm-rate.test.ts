// The rate gate (stages/llm/rate.ts) against a simulated provider with a
// token-bucket rate limit, on a virtual clock: no real waiting, exact times.
import pLimit from 'p-limit';
import { describe, expect, it } from 'vitest';
import { AbortedError, ProviderError } from '../stages/llm/errors.ts';
import { RateGate } from '../stages/llm/rate.ts';
import { withRetry } from '../stages/llm/retry.ts';

/** A discrete-event clock: timers fire in time order, and the test awaits until nothing is left. */
function virtualClock() {
  let now = 0;
  let seq = 0;
  const timers: { at: number; seq: number; fn: () => void; live: boolean }[] = [];
  const setTimer = (fn: () => void, ms: number) => {
    const t = { at: now + Math.max(0, ms), seq: seq++, fn, live: true };
    timers.push(t);
    return { cancel: () => void (t.live = false) };
  };
  const settle = () => new Promise<void>((r) => setImmediate(r));
  return {
    now: () => now,
    setTimer,
    sleep: (ms: number) => new Promise<void>((r) => setTimer(r, ms)),
    async run(until: Promise<unknown>) {
      let done = false;
      void until.finally(() => (done = true));
      for (let guard = 0; guard < 1_000_000; guard++) {
        await settle();
        if (done) return;
        const live = timers.filter((t) => t.live).sort((a, b) => a.at - b.at || a.seq - b.seq);
        const next = live[0];
        if (!next) {
          await settle();
          if (done) return;
          throw new Error('virtual clock: nothing scheduled and not done');
        }
        next.live = false;
        timers.splice(timers.indexOf(next), 1);
        now = Math.max(now, next.at);
        next.fn();
      }
      throw new Error('virtual clock: too many steps');
    },
  };
}

/** A provider allowing `perMinute` requests a minute (a bucket of that many, refilled continuously), answering after `latencyMs`. */
function limitedProvider(clock: ReturnType<typeof virtualClock>, perMinute: number, latencyMs: number) {
  const ratePerMs = perMinute / 60_000;
  let tokens = perMinute;
  let last = 0;
  const attemptsOf = new Map<number, string[]>();
  return {
    attemptsOf,
    request(id: number): Promise<string> {
      const t = clock.now();
      tokens = Math.min(perMinute, tokens + (t - last) * ratePerMs);
      last = t;
      const list = attemptsOf.get(id) ?? [];
      attemptsOf.set(id, list);
      if (tokens >= 1) {
        tokens -= 1;
        list.push('ok');
        return clock.sleep(latencyMs).then(() => `answer ${id}`);
      }
      list.push('429');
      // Retry-After in whole seconds, as most servers send it.
      const retryAfterMs = Math.ceil((1 - tokens) / ratePerMs / 1000) * 1000;
      return clock.sleep(20).then(() => {
        throw new ProviderError({ provider: 'fake', message: 'HTTP 429', status: 429, kind: 'http', retryable: true, retryAfterMs });
      });
    },
  };
}

async function drive(n: number, concurrency: number, perMinute: number, latencyMs: number) {
  const clock = virtualClock();
  const server = limitedProvider(clock, perMinute, latencyMs);
  const gate = new RateGate({ concurrency, now: clock.now, setTimer: clock.setTimer });
  const limit = pLimit(concurrency);
  const call = (id: number) =>
    limit(async () => {
      const lane = gate.lane();
      try {
        return (await withRetry(() => lane.run(() => server.request(id)), { maxRetries: 10 }, { sleep: clock.sleep, random: () => 0.5 })).value;
      } finally {
        lane.close();
      }
    });
  const all = Promise.all(Array.from({ length: n }, (_, i) => call(i)));
  await clock.run(all);
  const answers = await all;
  return { answers, seconds: clock.now() / 1000, server, stats: gate.stats() };
}

const twiceInARow = (attempts: Map<number, string[]>) =>
  [...attempts.values()].filter((a) => a.some((x, i) => x === '429' && a[i - 1] === '429')).length;

describe('RateGate', () => {
  it('adds nothing without a rate limit: N x L / C', async () => {
    const r = await drive(1000, 10, 1_000_000, 200);
    expect(r.answers).toHaveLength(1000);
    expect(r.seconds).toBeCloseTo(20, 5);
    expect(r.stats).toMatchObject({ rejected: 0, intervalMs: 0, limit: 10 });
  });

  it('under 60 requests a minute: within 10% of the bound, no request rejected twice in a row', async () => {
    const n = 300;
    const r = await drive(n, 10, 60, 200);
    expect(r.answers).toHaveLength(n);
    // The bucket starts full (60), then one request a second.
    const bound = n - 60 + 0.2;
    expect(r.seconds).toBeGreaterThanOrEqual(bound - 0.01);
    expect(r.seconds).toBeLessThanOrEqual(1.1 * bound);
    expect(twiceInARow(r.server.attemptsOf)).toBe(0);
    expect(r.stats.rejectedTwice).toBe(0);
    expect(r.stats.rejected).toBeGreaterThan(0);
  });

  it('adapts to a faster limit than the first Retry-After suggests, and to slow answers', async () => {
    // 600 a minute: Retry-After (whole seconds) says 1 s, the real spacing is 0.1 s.
    const fast = await drive(1500, 10, 600, 200);
    expect(fast.seconds).toBeLessThanOrEqual(1.1 * ((1500 - 600) / 10 + 0.2));
    expect(twiceInARow(fast.server.attemptsOf)).toBe(0);
    // Answers slower than the pace: several calls in flight at once.
    const slow = await drive(200, 10, 60, 3000);
    expect(slow.seconds).toBeLessThanOrEqual(1.1 * (200 - 60 + 3));
    expect(twiceInARow(slow.server.attemptsOf)).toBe(0);
  });

  it('gives the place of a rejected call that will not try again to the next call', async () => {
    const clock = virtualClock();
    const gate = new RateGate({ concurrency: 2, now: clock.now, setTimer: clock.setTimer });
    const rejected = gate.lane();
    const limited = new ProviderError({ provider: 'p', message: '429', status: 429, kind: 'http', retryable: true, retryAfterMs: 500 });
    await expect(rejected.run(() => Promise.reject(limited))).rejects.toBe(limited);
    const other = gate.lane();
    let ran = false;
    const p = other.run(async () => void (ran = true));
    await new Promise((r) => setImmediate(r));
    expect(ran).toBe(false); // the rejected call holds the head of the queue
    rejected.close();
    await clock.run(p);
    expect(ran).toBe(true);
  });

  it('stops waiting when the signal aborts', async () => {
    const clock = virtualClock();
    const gate = new RateGate({ concurrency: 1, now: clock.now, setTimer: clock.setTimer });
    const first = gate.lane();
    const block = first.run(() => clock.sleep(10_000));
    const ac = new AbortController();
    const second = gate.lane(ac.signal).run(async () => 'never');
    ac.abort();
    await expect(second).rejects.toBeInstanceOf(AbortedError);
    await clock.run(block);
  });
});
