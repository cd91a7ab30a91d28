// Ask, check, state the problems back, ask again, account: the one repair
// loop of every LLM step whose answers are checked beyond their schema
// (categorize's batches and assignments, cluster's groups). Generic over the
// answer and its check; the step supplies the request, the check and the
// wording of the follow-up.
import type { ZodType } from 'zod';
import type { Answer, Complete } from './answer.ts';
import { extractJson } from './client.ts';
import { InvalidAnswerError } from './errors.ts';
import type { ChatMessage, LlmRequest } from './types.ts';
import { account } from './usage.ts';
import type { Accounting } from './usage.ts';
import { plural } from '../util/words.ts';

/** Follow-up requests per request that state problems, when a step does not say (2); never negative. */
export function repairLimit(maxRepairs: number | undefined): number {
  return Math.max(0, Math.floor(maxRepairs ?? 2));
}

/** "N repair request(s)": how steps word the number of follow-ups. */
export function repairCount(repairs: number): string {
  return plural(repairs, 'repair request', 'repair requests');
}

/**
 * The follow-up message: each problem as a bullet, then the step's own
 * closing lines (what must be in the answer, how to reply).
 */
export function problemsMessage(problems: readonly string[], closing: readonly string[]): string {
  return ['Your answer has these problems:', ...problems.map((p) => `- ${p}`), '', ...closing].join('\n');
}

/** An error thrown by `complete` after the client gave up on a malformed answer. */
export function invalidAnswerOf(err: unknown): { lastAnswer: string; message: string; requestHash: string } | null {
  if (err instanceof InvalidAnswerError) return { lastAnswer: err.lastAnswer, message: err.message, requestHash: err.requestHash };
  if (err instanceof Error && err.name === 'InvalidAnswerError' && typeof (err as { lastAnswer?: unknown }).lastAnswer === 'string') {
    const e = err as unknown as { lastAnswer: string; requestHash?: unknown };
    return { lastAnswer: e.lastAnswer, message: err.message, requestHash: typeof e.requestHash === 'string' ? e.requestHash : '' };
  }
  return null;
}

/** Reads what can be read of a rejected answer with a lenient schema (no enums), or null. */
export function salvage<T>(text: string, lenient: ZodType<T>): T | null {
  const json = extractJson(text);
  if (!json.ok) return null;
  const r = lenient.safeParse(json.value);
  return r.success ? r.data : null;
}

/** One request and how its answer is checked. */
export interface RepairSpec<A, C> {
  /** Step name of the first request; follow-ups are `<step>-repair`. */
  step: string;
  messages: ChatMessage[];
  schema: { name: string; zod: ZodType<A> };
  /** The same shape without enums: what is read of an answer the client gave up on. */
  lenient: ZodType<A>;
  /** The problems of an answer (empty: clean) and its score (the best-scoring answer is kept). */
  check: (value: A) => { problems: string[]; score: number; check: C };
  /** The follow-up message that states the problems. */
  repairText: (problems: readonly string[]) => string;
}

export interface RepairOutcome<C> {
  /** The check of the best answer, or null when no answer could be read. */
  best: C | null;
  /** Why no answer could be read (best is null). */
  failure: string | null;
  /** Hash of the first request (its store key). */
  requestHash: string;
  /** True when the first request was answered by the store. */
  cached: boolean;
  /** Follow-up requests that stated problems. */
  repairs: number;
}

/** What a request with repairs did, as a step's record of its batches or calls lists it. */
export interface RepairRecord {
  /** Hash of the first request (its store key). */
  requestHash: string;
  /** True when the first request was answered by the store. */
  cached: boolean;
  /** Follow-up requests that stated problems. */
  repairs: number;
  /** Problems still present in the answer that was kept (empty when clean; why there is none when no answer could be read). */
  unresolved: string[];
}

/** Why an outcome has no answer: the failure, else 'no answer'. */
export function failureOf(out: RepairOutcome<unknown>): string {
  return out.failure ?? 'no answer';
}

export function repairRecord(out: RepairOutcome<{ problems: string[] }>): RepairRecord {
  return { requestHash: out.requestHash, cached: out.cached, repairs: out.repairs, unresolved: out.best === null ? [failureOf(out)] : out.best.problems };
}

/**
 * Sends `spec`'s request (or takes its answer from `first`, when the caller
 * sent it already, e.g. among many in parallel), checks the answer, and
 * states the problems back in a follow-up request, at most `maxRepairs`
 * times. The best answer (highest score; the later on a tie) is kept.
 * An answer the client gave up on is read leniently; any other error of
 * `complete` is thrown. Every answer is counted in `acc`.
 */
export async function askWithRepairs<A, C>(
  spec: RepairSpec<A, C>,
  complete: Complete,
  maxRepairs: number,
  acc: Accounting,
  first?: Promise<Answer<A>>,
): Promise<RepairOutcome<C>> {
  let messages: ChatMessage[] = spec.messages;
  let requestHash = '';
  let cached = false;
  let repairs = 0;
  let best: { check: C; score: number } | null = null;
  let failure: string | null = null;

  for (let round = 0; ; round++) {
    const req: LlmRequest<A> = { step: round === 0 ? spec.step : `${spec.step}-repair`, messages, schema: spec.schema };
    let value: A | null = null;
    try {
      const answer = round === 0 && first ? await first : await complete(req);
      account(acc, answer);
      if (round === 0) {
        requestHash = answer.requestHash;
        cached = answer.cached;
      }
      value = answer.value;
    } catch (err) {
      const invalid = invalidAnswerOf(err);
      if (!invalid) throw err;
      if (round === 0) requestHash = invalid.requestHash;
      const lenient = salvage<A>(invalid.lastAnswer, spec.lenient);
      if (lenient === null) {
        failure = `no valid answer: ${invalid.message}`;
        break;
      }
      value = lenient;
    }
    const checked = spec.check(value);
    if (best === null || checked.score >= best.score) best = { check: checked.check, score: checked.score };
    if (checked.problems.length === 0 || round >= maxRepairs) break;
    repairs += 1;
    // The conversation grows, so each follow-up is a new request (an identical one would replay the same stored answer).
    messages = [...messages, { role: 'assistant', content: JSON.stringify(value) }, { role: 'user', content: spec.repairText(checked.problems) }];
  }
  return { best: best?.check ?? null, failure, requestHash, cached, repairs };
}
