// Adaptive pacing of one client's provider calls under a rate limit.
//
// A 429 means one of two things, and the gate must tell them apart:
//   - a real limit: the provider allows so many calls per window and rejects
//     the rest. Going slower helps; going on at full speed hammers it;
//   - a fault that has nothing to do with our pace (a busy shard, a flaky
//     proxy): a share of calls is rejected whatever the pace. Going slower
//     only loses time; every slow-down compounds.
// The experiment that separates them: a call that honoured the server's word
// (it waited its own Retry-After and took the slot kept for it, or it started
// after the pace was set from a Retry-After, at least that far from the call
// before it) is not rejected under a real limit whose Retry-After is honest.
// Such a "safe" call rejected anyway is a 429 the pace cannot explain.
//
// Two modes:
//   free   (intervalMs 0): calls start as soon as the stage's concurrency
//          allows. A rejected call waits its Retry-After (withRetry's sleep)
//          and is then first in the queue: Retry-After is a delay of that call,
//          not a slow-down of the others.
//   paced  calls start at most one per `intervalMs`, and a rejected call holds
//          the head of the queue while it waits: no fresh call starts until it
//          has started again, so none can take the slot the server promised it.
//
// Free -> paced on a 429 when nothing says it is noise (no unexplained 429 in
// recent memory: the first 429 of a run is taken seriously), or when the
// rejected share of the last WINDOW outcomes is at least LIMIT_SHARE (a real
// limit at full speed rejects most calls; independent faults of 30% do so in
// a window of 30 with a probability below 1 in 1,000). The interval starts at
// the server's Retry-After when it is at most ENTRY_CAP_MS (a spacing). A
// longer one is a pause (a window's end), not the spacing of the calls after
// it: then the calls the server allowed in the span before it, plus the pause,
// spread evenly (at most ENTRY_CAP_MS). The concurrency limit halves (AIMD, for
// servers that limit calls in flight).
//
// While paced:
//   - a 429 of an unsafe call (started before the pace was set, or probing
//     faster than the Retry-After) is a new event unless its call started
//     before the last pace change (calls in flight together are one event):
//     the interval grows by a quarter, and the limit halves;
//   - a 429 of a safe call while the recent rejected share is below
//     LIMIT_SHARE is unexplained: the gate counts it and goes back to free, and
//     the concurrency limit is restored. With a high share it is a dishonest
//     Retry-After: the interval becomes at least that Retry-After;
//   - no slow-down takes the interval past BOUND_FACTOR times the Retry-After
//     of the 429 that caused it: the pace follows the server's word instead of
//     compounding (the old x1.25 per 429 without a bound reached hours);
//   - each success while no rejected call waits (or while the pace is slower
//     than the server's Retry-After) shortens the interval by more
//     the longer the run of successes (streak / STREAK_SCALE, at most
//     MAX_SPEED_UP per success): a few probes cost a rejection each under a
//     steady limit, and a lifted limit is found within seconds (from a 1 s
//     pace, free again after about 20 successes);
//   - the interval never exceeds MAX_INTERVAL_MS nor the longest pause the
//     client honours; below MIN_INTERVAL_MS pacing is off (free again).
// The memory of unexplained 429s decays by NOISE_DECAY per safe call that
// succeeds, so a real limit that follows a noisy spell is taken seriously
// again after a dozen or so honoured slots.
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
  /** 429s the pace cannot explain (of calls that honoured the server's Retry-After). */
  unexplained: number;
  /** Current pacing interval in ms (0: not pacing). */
  intervalMs: number;
  /** Longest pacing interval so far, in ms. */
  maxIntervalMs: number;
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
const STREAK_SCALE = 48;
const MAX_SPEED_UP = 1 / 2;
const SLOW_DOWN = 1.25;
const MIN_INTERVAL_MS = 1;
/** The first interval is the server's Retry-After, at most this. */
const ENTRY_CAP_MS = 1000;
/** A slow-down never takes the interval past this many times the server's latest Retry-After. */
const BOUND_FACTOR = 2;
/** The interval never exceeds this (one call a minute). */
const MAX_INTERVAL_MS = 60_000;
const DEFAULT_PAUSE_MS = 1000;
/** Successes remembered for the first interval after a long Retry-After. */
const SUCCESSES_KEPT = 1000;
/** Outcomes remembered for the rejected share, at least (3 x concurrency if more). */
const WINDOW = 30;
/** A rejected share at least this high is a real limit, whatever else was seen. */
const LIMIT_SHARE = 0.6;
/** The memory of unexplained 429s, multiplied by this per safe call that succeeds; below NOISE_FORGOTTEN it is gone. */
const NOISE_DECAY = 0.95;
const NOISE_FORGOTTEN = 0.5;

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

/** What the gate knew when an attempt started. */
interface Start {
  at: number;
  /** A retry of a rejected call (it waited its Retry-After and had the head of the queue). */
  wasLimited: boolean;
  /** Paced, after the last pace change, at least the server's Retry-After from the call before. */
  honoured: boolean;
}

export class RateGate {
  private readonly concurrency: number;
  private readonly maxPauseMs: number;
  private readonly now: () => number;
  private readonly setTimer: (fn: () => void, ms: number) => { cancel(): void };
  private limit: number;
  private intervalMs = 0;
  private maxSeenIntervalMs = 0;
  /** The server's Retry-After that set the pace: starts at least this far apart honour it. */
  private serverSpacingMs = 0;
  private nextStart = 0;
  private lastStart = -Infinity;
  private inFlight = 0;
  /** Start time of the last pace change: a 429 of a call started before it is part of the same event. */
  private paceChangedAt = -Infinity;
  /** Paced successes since the last slow-down. */
  private streak = 0;
  /** Lanes rejected with 429 whose next attempt has not asked yet: while paced, the head of the queue is theirs. */
  private owed = 0;
  /** Decaying count of unexplained 429s (see the top of the file). */
  private noise = 0;
  /** Start times of the last successes (SUCCESSES_KEPT at most), oldest first. */
  private readonly successStarts: number[] = [];
  /** The last outcomes, true for a 429 (a ring). */
  private readonly outcomes: boolean[] = [];
  private outcomeAt = 0;
  private readonly windowSize: number;
  private readonly queue: Waiter[] = [];
  private timer: { cancel(): void } | null = null;
  private readonly counts = { started: 0, rejected: 0, rejectedTwice: 0, unexplained: 0 };

  constructor(o: RateGateOptions) {
    this.concurrency = Math.max(1, Math.floor(o.concurrency));
    this.limit = this.concurrency;
    this.windowSize = Math.max(WINDOW, 3 * this.concurrency);
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
    return { ...this.counts, intervalMs: this.intervalMs, maxIntervalMs: this.maxSeenIntervalMs, limit: this.limit };
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
    const start = await this.acquire(lane, signal);
    if (start.wasLimited) {
      lane.limited = false;
      this.owed--;
    }
    try {
      const value = await attempt();
      this.onSuccess(start);
      return value;
    } catch (err) {
      if (isRateLimited(err)) this.onRateLimited(lane, err, start);
      throw err;
    } finally {
      this.inFlight--;
      this.pump();
    }
  }

  private acquire(lane: LaneState, signal?: AbortSignal): Promise<Start> {
    if (signal?.aborted) return Promise.reject(new AbortedError());
    return new Promise((resolve, reject) => {
      const w: Waiter = { lane, admit: () => resolve(this.startOf(lane)), signal };
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

  /** Called at admission, before lastStart moves: what this start honoured. */
  private startOf(lane: LaneState): Start {
    return { at: this.now(), wasLimited: lane.limited, honoured: this.admittedHonouring };
  }

  /** Set by pump for the waiter it admits (admit runs synchronously). */
  private admittedHonouring = false;

  /** Admits what may start now, and sets a timer for what may start later. */
  private pump(): void {
    this.timer?.cancel();
    this.timer = null;
    while (this.queue.length > 0) {
      const head = this.queue[0] as Waiter;
      // While paced, a place owed to a rejected lane that has not asked again yet: fresh calls wait for it.
      if (this.intervalMs > 0 && this.owed > 0 && !head.lane.limited) return;
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
      this.admittedHonouring = this.intervalMs > 0 && now > this.paceChangedAt && now - this.lastStart >= this.serverSpacingMs;
      this.lastStart = now;
      if (this.intervalMs > 0) this.nextStart = Math.max(this.nextStart, now) + this.intervalMs;
      head.admit();
    }
  }

  private record(rejected: boolean): number {
    if (this.outcomes.length < this.windowSize) this.outcomes.push(rejected);
    else {
      this.outcomes[this.outcomeAt] = rejected;
      this.outcomeAt = (this.outcomeAt + 1) % this.windowSize;
    }
    return this.outcomes.filter(Boolean).length / this.outcomes.length;
  }

  private setInterval(ms: number): void {
    const cap = Math.min(MAX_INTERVAL_MS, this.maxPauseMs);
    this.intervalMs = Math.min(cap, ms);
    if (this.intervalMs < MIN_INTERVAL_MS) this.intervalMs = 0;
    this.maxSeenIntervalMs = Math.max(this.maxSeenIntervalMs, this.intervalMs);
  }

  /** Pacing off: calls start as the concurrency allows. */
  private free(): void {
    this.setInterval(0);
    this.streak = 0;
    this.limit = this.concurrency;
    this.nextStart = 0;
  }

  private onSuccess(start: Start): void {
    this.record(false);
    this.successStarts.push(start.at);
    if (this.successStarts.length > SUCCESSES_KEPT) this.successStarts.shift();
    if (start.wasLimited || start.honoured) {
      this.noise *= NOISE_DECAY;
      if (this.noise < NOISE_FORGOTTEN) this.noise = 0;
    }
    // Probe for more only when no rejected call is waiting: the backlog goes out at the pace that worked,
    // or the server's Retry-After when the pace is slower than that.
    if (this.intervalMs > 0 && (this.owed === 0 || this.intervalMs > this.serverSpacingMs)) {
      this.streak++;
      const faster = this.intervalMs / (1 + Math.min(MAX_SPEED_UP, this.streak / STREAK_SCALE));
      this.setInterval(this.owed === 0 ? faster : Math.max(faster, this.serverSpacingMs));
      if (this.intervalMs === 0) this.free();
    }
    if (this.limit < this.concurrency) this.limit = Math.min(this.concurrency, this.limit + 1 / this.limit);
  }

  private onRateLimited(lane: LaneState, err: ProviderError, start: Start): void {
    this.counts.rejected++;
    if (start.wasLimited) this.counts.rejectedTwice++;
    const share = this.record(true);
    // The rejected call itself waits this long (withRetry); a pace starts from it.
    const pause = Math.min(this.maxPauseMs, err.retryAfterMs ?? DEFAULT_PAUSE_MS);
    const now = this.now();
    const limitLike = share >= LIMIT_SHARE;
    const safe = start.wasLimited || start.honoured;
    if (safe && !limitLike) {
      // It did what the server asked and was rejected anyway, among mostly successes: not our pace.
      this.counts.unexplained++;
      this.noise += 1;
      if (this.intervalMs > 0) this.free();
    } else if (this.intervalMs === 0) {
      if (this.noise === 0 || limitLike) this.pace(now, this.entryInterval(now, pause), pause);
    } else if (safe) {
      // Honoured, and rejected with most others: the server's Retry-After was short of its real spacing.
      this.pace(now, Math.min(BOUND_FACTOR * pause, Math.max(this.intervalMs * SLOW_DOWN, pause)), pause);
    } else if (start.at >= this.paceChangedAt) {
      // A new event (not one of the calls that were in flight together): slow down.
      this.pace(now, Math.max(this.intervalMs, Math.min(BOUND_FACTOR * pause, this.intervalMs * SLOW_DOWN)), pause);
    }
    if (!lane.closed) {
      lane.limited = true;
      this.owed++;
    }
  }

  /**
   * The first interval: the server's Retry-After when it is short (a spacing). A long one is a pause (a
   * window's end): then the calls the server allowed over the span before it plus the pause, spread evenly.
   */
  private entryInterval(now: number, pause: number): number {
    if (pause <= ENTRY_CAP_MS) return Math.max(MIN_INTERVAL_MS, pause);
    const recent = this.successStarts.filter((t) => t >= now - pause);
    if (recent.length === 0) return ENTRY_CAP_MS;
    const span = now - (recent[0] as number);
    return Math.min(ENTRY_CAP_MS, Math.max(MIN_INTERVAL_MS, (span + pause) / recent.length));
  }

  private pace(now: number, intervalMs: number, serverSpacingMs: number): void {
    this.streak = 0;
    this.setInterval(intervalMs);
    this.serverSpacingMs = serverSpacingMs;
    this.limit = Math.max(1, this.limit / 2);
    this.paceChangedAt = now;
  }
}
