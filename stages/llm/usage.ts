// Token usage and dollars: the arithmetic every LLM step and counter shares.
// A null cost means some answer's model has no price; a sum with it stays null.
import type { Usage } from './types.ts';

/** No tokens (an offline answer, an empty sum). Copy it (`{ ...ZERO_USAGE }`) before changing a field. */
export const ZERO_USAGE: Usage = { input_tokens: 0, output_tokens: 0, total_tokens: 0 };

export function addUsage(a: Usage, b: Usage): Usage {
  return {
    input_tokens: a.input_tokens + b.input_tokens,
    output_tokens: a.output_tokens + b.output_tokens,
    total_tokens: a.total_tokens + b.total_tokens,
  };
}

/** USD sum; null (unknown) when either side is. */
export function addCost(a: number | null, b: number | null): number | null {
  return a === null || b === null ? null : a + b;
}

/** Tokens and cost of every answer a result was built from (stored ones included). */
export interface Accounting {
  usage: Usage;
  /** USD; null when some answer's model has no price. */
  costUsd: number | null;
  /** Answers bought in this run. */
  paidCalls: number;
  /** Answers read from the store. */
  cachedCalls: number;
}

export function newAccounting(): Accounting {
  return { usage: { ...ZERO_USAGE }, costUsd: 0, paidCalls: 0, cachedCalls: 0 };
}

/** Counts one answer: its tokens and cost, as bought or as read from the store. */
export function account(acc: Accounting, a: { usage: Usage; costUsd: number | null; cached: boolean }): void {
  acc.usage = addUsage(acc.usage, a.usage);
  acc.costUsd = addCost(acc.costUsd, a.costUsd);
  if (a.cached) acc.cachedCalls += 1;
  else acc.paidCalls += 1;
}

/** Adds `from` into `into`. */
export function mergeAccounting(into: Accounting, from: Accounting): void {
  into.usage = addUsage(into.usage, from.usage);
  into.costUsd = addCost(into.costUsd, from.costUsd);
  into.paidCalls += from.paidCalls;
  into.cachedCalls += from.cachedCalls;
}
