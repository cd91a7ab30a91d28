// The rate gate (stages/llm/rate.ts) against a simulated provider with a
// token-bucket rate limit, on a virtual clock: no real waiting, exact times.
import pLimit from 'p-limit';
import { describe, expect, it } from 'vitest';
import { AbortedError, ProviderError } from '../stages/llm/errors.ts';
import { RateGate } from '../stages/llm/rate.ts';
import { withRetry } from '../stages/llm/retry.ts';
import { mulberry32 } from '../stages/agreement.ts';

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

/** What the driver needs of a simulated provider: one attempt of request `id`, and every attempt's outcome by request. */
interface SimProvider {
  attemptsOf: Map<number, string[]>;
  request(id: number): Promise<string>;
}

function rateLimited(clock: ReturnType<typeof virtualClock>, retryAfterMs: number): Promise<never> {
  return clock.sleep(20).then(() => {
    throw new ProviderError({ provider: 'fake', message: 'HTTP 429', status: 429, kind: 'http', retryable: true, retryAfterMs });
  });
}

function attempts(map: Map<number, string[]>, id: number): string[] {
  const list = map.get(id) ?? [];
  map.set(id, list);
  return list;
}

/**
 * A provider allowing `perMinute` requests a minute (a bucket of that many, refilled continuously), answering after `latencyMs`;
 * with `liftAt`, the limit is gone from that time (ms) on.
 */
function limitedProvider(clock: ReturnType<typeof virtualClock>, perMinute: number, latencyMs: number, liftAt = Infinity) {
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
      const list = attempts(attemptsOf, id);
      if (t >= liftAt || tokens >= 1) {
        if (t < liftAt) tokens -= 1;
        list.push('ok');
        return clock.sleep(latencyMs).then(() => `answer ${id}`);
      }
      list.push('429');
      // Retry-After in whole seconds, as most servers send it.
      return rateLimited(clock, Math.ceil((1 - tokens) / ratePerMs / 1000) * 1000);
    },
  };
}

/** A provider without a limit that answers each attempt 429 with probability `share` (seeded), whatever the pace. */
function faultyProvider(clock: ReturnType<typeof virtualClock>, share: number, retryAfterMs: number, latencyMs: number, seed: number) {
  const random = mulberry32(seed);
  const attemptsOf = new Map<number, string[]>();
  const timesOf = new Map<number, { at: number; outcome: string }[]>();
  return {
    attemptsOf,
    timesOf,
    request(id: number): Promise<string> {
      const list = attempts(attemptsOf, id);
      const times = timesOf.get(id) ?? [];
      timesOf.set(id, times);
      const outcome = random() < share ? '429' : 'ok';
      times.push({ at: clock.now(), outcome });
      if (outcome === '429') {
        list.push('429');
        return rateLimited(clock, retryAfterMs);
      }
      list.push('ok');
      return clock.sleep(latencyMs).then(() => `answer ${id}`);
    },
  };
}

/** A provider allowing `perWindow` requests in each fixed window of `windowMs`; Retry-After: the window's end, in whole seconds. */
function windowProvider(clock: ReturnType<typeof virtualClock>, perWindow: number, windowMs: number, latencyMs: number) {
  const used = new Map<number, number>();
  const attemptsOf = new Map<number, string[]>();
  return {
    attemptsOf,
    used,
    request(id: number): Promise<string> {
      const t = clock.now();
      const w = Math.floor(t / windowMs);
      const list = attempts(attemptsOf, id);
      if ((used.get(w) ?? 0) < perWindow) {
        used.set(w, (used.get(w) ?? 0) + 1);
        list.push('ok');
        return clock.sleep(latencyMs).then(() => `answer ${id}`);
      }
      list.push('429');
      return rateLimited(clock, Math.ceil(((w + 1) * windowMs - t) / 1000) * 1000);
    },
  };
}

async function driveWith<P extends SimProvider>(n: number, concurrency: number, makeServer: (clock: ReturnType<typeof virtualClock>) => P, maxRetries = 10) {
  const clock = virtualClock();
  const server = makeServer(clock);
  const gate = new RateGate({ concurrency, now: clock.now, setTimer: clock.setTimer });
  const limit = pLimit(concurrency);
  const call = (id: number) =>
    limit(async () => {
      const lane = gate.lane();
      try {
        return (await withRetry(() => lane.run(() => server.request(id)), { maxRetries }, { sleep: clock.sleep, random: () => 0.5 })).value;
      } finally {
        lane.close();
      }
    });
  const all = Promise.all(Array.from({ length: n }, (_, i) => call(i)));
  await clock.run(all);
  const answers = await all;
  return { answers, seconds: clock.now() / 1000, server, stats: gate.stats() };
}

const drive = (n: number, concurrency: number, perMinute: number, latencyMs: number) =>
  driveWith(n, concurrency, (clock) => limitedProvider(clock, perMinute, latencyMs));

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

  it('under independent 429s (30%, Retry-After 0.2 s): within 1.5x of the fault-free time over the success share', async () => {
    const n = 300;
    const latencyMs = 200;
    const faultFree = (n * latencyMs) / 10 / 1000;
    for (let seed = 1; seed <= 10; seed++) {
      const r = await driveWith(n, 10, (clock) => faultyProvider(clock, 0.3, 200, latencyMs, seed));
      expect(r.answers).toHaveLength(n);
      expect(r.seconds).toBeLessThanOrEqual((1.5 * faultFree) / 0.7);
      // Rejections about a third of the successes: the 429s came at the rate the server chose, not more.
      expect(r.stats.rejected).toBeGreaterThan(0.3 * n);
      expect(r.stats.rejected).toBeLessThan(0.6 * n);
      // Pacing stayed bounded by the server's Retry-After, and is off at the end.
      expect(r.stats.maxIntervalMs).toBeLessThanOrEqual(500);
      expect(r.stats.intervalMs).toBe(0);
      expect(r.stats.unexplained).toBeGreaterThan(0);
      // Retry-After is still honoured, by the rejected call: its next attempt starts 200 ms after the 429 at the earliest.
      for (const times of r.server.timesOf.values()) {
        for (let i = 1; i < times.length; i++) if (times[i - 1]!.outcome === '429') expect(times[i]!.at - times[i - 1]!.at).toBeGreaterThanOrEqual(20 + 200);
      }
    }
  });

  it('recovers within seconds when a limit is lifted', async () => {
    const n = 300;
    const liftAt = 20_000;
    const r = await driveWith(n, 10, (clock) => limitedProvider(clock, 60, 200, liftAt));
    // Done by the lift: the bucket's 60 and one a second since; the rest at full speed (C = 10, 200 ms).
    const okBefore = [...r.server.attemptsOf.values()].flat().filter((x) => x === 'ok').length;
    const ideal = liftAt / 1000 + ((n - (60 + 20)) * 0.2) / 10;
    expect(okBefore).toBe(n);
    expect(r.answers).toHaveLength(n);
    expect(r.seconds).toBeLessThanOrEqual(ideal + 5);
    expect(r.stats.intervalMs).toBe(0);
    expect(twiceInARow(r.server.attemptsOf)).toBe(0);
  });

  it('respects a fixed-window limit (50 per 10 s): few rejections, none twice in a row, near the bound', async () => {
    const n = 300;
    const r = await driveWith(n, 10, (clock) => windowProvider(clock, 50, 10_000, 200));
    // Six windows of 50: the last one opens at 50 s.
    const bound = 50 + 0.2;
    expect([...r.server.used.values()]).toEqual([50, 50, 50, 50, 50, 50]);
    expect(r.answers).toHaveLength(n);
    expect(r.seconds).toBeGreaterThanOrEqual(bound - 0.01);
    expect(r.seconds).toBeLessThanOrEqual(1.25 * bound);
    expect(twiceInARow(r.server.attemptsOf)).toBe(0);
    expect(r.stats.rejected).toBeLessThanOrEqual(0.2 * n);
  });

  it('honours Retry-After: the rejected call waits it, and no fresh call takes its slot meanwhile', async () => {
    const starts: { id: number; at: number; outcome: string }[] = [];
    const r = await driveWith(20, 4, (clock) => {
      const attemptsOf = new Map<number, string[]>();
      return {
        attemptsOf,
        request(id: number): Promise<string> {
          const outcome = id === 5 && !attemptsOf.has(id) ? '429' : 'ok';
          attempts(attemptsOf, id).push(outcome);
          starts.push({ id, at: clock.now(), outcome });
          return outcome === '429' ? rateLimited(clock, 1500) : clock.sleep(200).then(() => `answer ${id}`);
        },
      };
    });
    expect(r.answers).toHaveLength(20);
    const first = starts.find((s) => s.id === 5 && s.outcome === '429')!;
    const retry = starts.find((s) => s.id === 5 && s.outcome === 'ok')!;
    expect(retry.at - first.at).toBeGreaterThanOrEqual(20 + 1500);
    // Nothing fresh started between the 429 and the retry: the slot was the rejected call's.
    expect(starts.filter((s) => s.at > first.at + 20 && s.at < retry.at)).toEqual([]);
  });

  it('keeps the interval bounded through 30 s of 429s for everything, and recovers after', async () => {
    const n = 200;
    const endAt = 30_000;
    const r = await driveWith(
      n,
      10,
      (clock) => {
        const attemptsOf = new Map<number, string[]>();
        return {
          attemptsOf,
          request(id: number): Promise<string> {
            const ok = clock.now() >= endAt;
            attempts(attemptsOf, id).push(ok ? 'ok' : '429');
            return ok ? clock.sleep(200).then(() => `answer ${id}`) : rateLimited(clock, 2000);
          },
        };
      },
      40,
    );
    expect(r.answers).toHaveLength(n);
    // At most twice the server's Retry-After.
    expect(r.stats.maxIntervalMs).toBeLessThanOrEqual(4000);
    // During the outage: about one attempt per Retry-After, not ten.
    const rejected = [...r.server.attemptsOf.values()].flat().filter((x) => x === '429').length;
    expect(rejected).toBeLessThanOrEqual(((endAt / 2000) * 10) / 2);
    // After: the ten calls rejected last go out at the server's 2 s first (20 s), then the pace speeds up (measured: 42.7 s).
    expect(r.seconds).toBeLessThanOrEqual(endAt / 1000 + 45);
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
