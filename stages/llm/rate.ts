// Adaptive pacing of one client's provider calls under a rate limit.
//
// Until a provider answers 429, the gate does nothing: calls start as soon as
// the stage's concurrency allows. The first 429 turns pacing on:
//   - the rejected call waits the delay the server gave (withRetry's sleep:
//     Retry-After, else the backoff), and holds its place at the head of the
//     queue meanwhile: no new call starts until it has started again, so none
//     can take the slot the server promised it;
//   - calls then start at most one per `interval`, first the server's delay
//     (a token bucket refills one request per interval: Retry-After is the time
//     to the next one), then adjusted: while no rejected call waits, each
//     success shortens the interval, by more the longer the run of successes
//     (streak/128, at most 1/8: probing for more, faster when the first
//     estimate was too cautious), and a 429 of a call that started under the
//     current pace, or of a retried call, lengthens it by a quarter
//     (rejections of calls that were in flight together are one event);
//   - the concurrency limit halves on such a 429 and grows back by one per
//     `limit` successes, up to the stage's concurrency (AIMD), for servers
//     that limit calls in flight rather than calls per minute.
// Once the interval falls below a millisecond, pacing is off again.
//
// One gate per client (per stage): the stage's calls share its budget.
import { AbortedError, ProviderError } from './errors.ts';

export interface RateGateOptions {
  /** Most calls in flight (the stage's concurrency). */
  concurrency: number;
  /** Longest pause the gate honours (withRetry's maxRetryAfterMs). */
  maxPauseMs?: number;
  /** Clock and timer, for tests. */
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => { cancel(): void };
}

export interface RateStats {
  /** Calls started through the gate. */
  started: number;
  /** Answers 429. */
  rejected: number;
  /** 429s of a call whose previous attempt was a 429 too. */
  rejectedTwice: number;
  /** Current pacing interval in ms (0: not pacing). */
  intervalMs: number;
  /** Current concurrency limit. */
  limit: number;
}

/** One logical request: its attempts through the gate, and withRetry's sleep between them. */
export interface RateLane {
  /** Runs one attempt when the gate admits it. */
  run<T>(attempt: () => Promise<T>): Promise<T>;
  /** Gives the lane's place back (call it when the request ends, however it ends). */
  close(): void;
}

/** A 429, as the gate reads it. */
export function isRateLimited(err: unknown): err is ProviderError {
  return err instanceof ProviderError && err.status === 429;
}

/** Successes in a row (paced, no 429) shorten the interval by streak / STREAK_SCALE, at most MAX_SPEED_UP, each. */
const STREAK_SCALE = 128;
const MAX_SPEED_UP = 1 / 8;
const SLOW_DOWN = 1.25;
const MIN_INTERVAL_MS = 1;
const DEFAULT_PAUSE_MS = 1000;

interface Waiter {
  lane: LaneState;
  admit: () => void;
  signal?: AbortSignal;
  onAbort?: () => void;
}

interface LaneState {
  /** The last attempt was answered 429: the next one goes first. */
  limited: boolean;
  /** Admitted but not yet started (while holding the head of the queue). */
  closed: boolean;
}

export class RateGate {
  private readonly concurrency: number;
  private readonly maxPauseMs: number;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => { cancel(): void };
  private limit: number;
  private intervalMs = 0;
  private nextStart = 0;
  private inFlight = 0;
  /** Start time of the last pace change: a 429 of a call started before it is part of the same event. */
  private paceChangedAt = -Infinity;
  /** Paced successes since the last slow-down. */
  private streak = 0;
  /** Lanes rejected with 429 whose next attempt has not asked yet: the head of the queue is theirs. */
  private owed = 0;
  private readonly queue: Waiter[] = [];
  private timer: { cancel(): void } | null = null;
  private readonly counts = { started: 0, rejected: 0, rejectedTwice: 0 };

  constructor(o: RateGateOptions) {
    this.concurrency = Math.max(1, Math.floor(o.concurrency));
    this.limit = this.concurrency;
    this.maxPauseMs = o.maxPauseMs ?? 120_000;
    this.now = o.now ?? Date.now;
    this.setTimer =
      o.setTimer ??
      ((fn, ms) => {
        const t = setTimeout(fn, ms);
        return { cancel: () => clearTimeout(t) };
      });
  }

  stats(): RateStats {
    return { ...this.counts, intervalMs: this.intervalMs, limit: this.limit };
  }

  lane(signal?: AbortSignal): RateLane {
    const state: LaneState = { limited: false, closed: false };
    return {
      run: (attempt) => this.runAttempt(state, attempt, signal),
      close: () => {
        if (state.closed) return;
        state.closed = true;
        if (state.limited) {
          // It will not ask again: its place goes to the next call.
          state.limited = false;
          this.owed--;
          this.pump();
        }
      },
    };
  }

  private async runAttempt<T>(lane: LaneState, attempt: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    await this.acquire(lane, signal);
    const startedAt = this.now();
    const wasLimited = lane.limited;
    if (wasLimited) {
      lane.limited = false;
      this.owed--;
    }
    try {
      const value = await attempt();
      this.onSuccess();
      return value;
    } catch (err) {
      if (isRateLimited(err)) this.onRateLimited(lane, err, startedAt, wasLimited);
      throw err;
    } finally {
      this.inFlight--;
      this.pump();
    }
  }

  private acquire(lane: LaneState, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(new AbortedError());
    return new Promise((resolve, reject) => {
      const w: Waiter = { lane, admit: resolve, signal };
      if (signal) {
        w.onAbort = () => {
          const i = this.queue.indexOf(w);
          if (i >= 0) this.queue.splice(i, 1);
          reject(new AbortedError());
          this.pump();
        };
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      // A lane rejected with 429 goes before every fresh call.
      if (lane.limited) {
        const firstFresh = this.queue.findIndex((q) => !q.lane.limited);
        this.queue.splice(firstFresh < 0 ? this.queue.length : firstFresh, 0, w);
      } else this.queue.push(w);
      this.pump();
    });
  }

  /** Admits what may start now, and sets a timer for what may start later. */
  private pump(): void {
    this.timer?.cancel();
    this.timer = null;
    while (this.queue.length > 0) {
      const head = this.queue[0] as Waiter;
      // A place owed to a rejected lane that has not asked again yet: fresh calls wait for it.
      if (this.owed > 0 && !head.lane.limited) return;
      if (this.inFlight >= Math.floor(this.limit)) return;
      const now = this.now();
      if (now < this.nextStart) {
        this.timer = this.setTimer(() => {
          this.timer = null;
          this.pump();
        }, this.nextStart - now);
        return;
      }
      this.queue.shift();
      if (head.signal && head.onAbort) head.signal.removeEventListener('abort', head.onAbort);
      this.inFlight++;
      this.counts.started++;
      if (this.intervalMs > 0) this.nextStart = Math.max(this.nextStart, now) + this.intervalMs;
      head.admit();
    }
  }

  private onSuccess(): void {
    // Probe for more only when no rejected call is waiting: the backlog goes out at the pace that worked.
    if (this.intervalMs > 0 && this.owed === 0) {
      this.streak++;
      this.intervalMs /= 1 + Math.min(MAX_SPEED_UP, this.streak / STREAK_SCALE);
      if (this.intervalMs < MIN_INTERVAL_MS) this.intervalMs = 0;
    }
    if (this.limit < this.concurrency) this.limit = Math.min(this.concurrency, this.limit + 1 / this.limit);
  }

  private onRateLimited(lane: LaneState, err: ProviderError, startedAt: number, wasLimited: boolean): void {
    this.counts.rejected++;
    if (wasLimited) this.counts.rejectedTwice++;
    // The rejected call itself waits this long (withRetry); the pace starts from it.
    const pause = Math.min(this.maxPauseMs, err.retryAfterMs ?? DEFAULT_PAUSE_MS);
    const now = this.now();
    if (startedAt >= this.paceChangedAt || wasLimited) {
      this.streak = 0;
      // A new event (not one of the calls that were in flight together): slow down.
      this.intervalMs = this.intervalMs === 0 ? Math.max(MIN_INTERVAL_MS, pause) : this.intervalMs * SLOW_DOWN;
      this.limit = Math.max(1, this.limit / 2);
      this.paceChangedAt = now;
    }
    if (!lane.closed) {
      lane.limited = true;
      this.owed++;
    }
  }
}
