// What one LLM client has spent and holds against its caps: each call's
// expected cost is reserved against the stage's max_cost_usd and the
// invocation's budget before it is sent (or the call is refused), released
// when it returns, and the answer's real cost recorded. Both caps are enforced
// on actual spend plus what calls in flight are expected to cost, so a cap can
// be exceeded by at most the calls in flight (at worst `concurrency` calls at
// max_tokens).
import type { InvocationBudget } from './budget.ts';
import { BudgetExceededError } from './errors.ts';
import { costUsd } from './pricing.ts';
import { defaultOutputTokens } from './tokens.ts';
import type { ChatMessage, LlmSettings, Usage } from './types.ts';
import { addUsage } from './usage.ts';

/** The totals a spend ledger keeps up to date. */
export interface SpendTotals {
  usage: Usage;
  spentUsd: number;
  unknownCostAnswers: number;
}

export interface SpendLedger {
  /** Holds a call's expected cost, or throws BudgetExceededError; returns what to release. */
  reserve(step: string, messages: ChatMessage[], schema: Record<string, unknown> | null): number;
  release(held: number): void;
  /** Records an answer's usage; its cost (null: the model has no known price). */
  record(usage: Usage): number | null;
}

export function createSpendLedger(
  settings: LlmSettings,
  budget: InvocationBudget | null,
  totals: SpendTotals,
  estimateInputTokens: (messages: ChatMessage[], schema: Record<string, unknown> | null) => number,
): SpendLedger {
  /** Upper-bound cost of calls in flight, held against the caps until they return. */
  let reservedUsd = 0;
  /** Output tokens of answers received in this run: the expected size of the next one. */
  const outputs: number[] = [];
  const worstUsd = (messages: ChatMessage[], schema: Record<string, unknown> | null) =>
    costUsd(settings.model, { input_tokens: estimateInputTokens(messages, schema), output_tokens: settings.max_tokens });
  /** A call's expected cost: its input, and output at the median of this run's answers (else the step's default). */
  const expectedUsd = (step: string, messages: ChatMessage[], schema: Record<string, unknown> | null) => {
    const sorted = [...outputs].sort((a, b) => a - b);
    const out = sorted.length ? sorted[Math.floor(sorted.length / 2)]! : defaultOutputTokens(step);
    return costUsd(settings.model, { input_tokens: estimateInputTokens(messages, schema), output_tokens: Math.min(out, settings.max_tokens) });
  };
  return {
    reserve(step, messages, schema) {
      const stageLimit = settings.max_cost_usd ?? null;
      if (stageLimit === null && budget === null) return 0;
      const est = expectedUsd(step, messages, schema);
      const committed = totals.spentUsd + reservedUsd;
      if (stageLimit !== null && (est === null || committed + est > stageLimit)) {
        throw new BudgetExceededError(stageLimit, committed, est, settings.model, 'stage', worstUsd(messages, schema));
      }
      if (budget !== null) {
        const all = committed + budget.spentByOthers();
        if (est === null || all + est > budget.limitUsd) throw new BudgetExceededError(budget.limitUsd, all, est, settings.model, 'invocation', worstUsd(messages, schema));
      }
      reservedUsd += est ?? 0;
      return est ?? 0;
    },
    release(held) {
      reservedUsd -= held;
    },
    record(usage) {
      const callCost = costUsd(settings.model, usage);
      outputs.push(usage.output_tokens);
      totals.usage = addUsage(totals.usage, usage);
      if (callCost === null) totals.unknownCostAnswers += 1;
      else totals.spentUsd += callCost;
      budget?.record(totals.spentUsd);
      return callCost;
    },
  };
}
