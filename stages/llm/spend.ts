// What one LLM client has spent and holds against its caps: each call's
// expected cost is reserved against the stage's max_cost_usd and the
// invocation's budget before it is sent (or the call is refused), released
// when it returns, and the answer's real cost recorded. Both caps are enforced
// on actual spend plus what calls in flight are expected to cost, so a cap can
// be exceeded by at most the calls in flight (at worst `concurrency` calls at
// max_tokens).
//
// An attempt abandoned after it was sent (timed out at timeout_s, or aborted)
// gives no usage, but the provider may still complete and bill it: it is
// charged at its worst case, the prompt's tokens and max_tokens of output at
// the model's price, in spentUsd (so the caps see it) and in abandonedUsd.
// Every attempt, retries included, is reserved and checked against the caps.
import type { InvocationBudget } from './budget.ts';
import { AbortedError, BudgetExceededError, ProviderError } from './errors.ts';
import { costUsd } from './pricing.ts';
import { defaultOutputTokens } from './tokens.ts';
import type { ChatMessage, LlmSettings, Usage } from './types.ts';
import { addCost, addUsage } from './usage.ts';

/** The totals a spend ledger keeps up to date. */
export interface SpendTotals {
  usage: Usage;
  /** Known cost of the answers, and of the abandoned attempts at their worst case. */
  spentUsd: number;
  unknownCostAnswers: number;
  /** Attempts abandoned after they were sent (timed out or aborted). */
  abandoned: number;
  /** Their worst-case cost (included in spentUsd); null when the model has no price. */
  abandonedUsd: number | null;
}

export interface SpendLedger {
  /** Holds a call's expected cost, or throws BudgetExceededError; returns what to release. */
  reserve(step: string, messages: ChatMessage[], schema: Record<string, unknown> | null): number;
  release(held: number): void;
  /** Records an answer's usage; its cost (null: the model has no known price). */
  record(usage: Usage): number | null;
  /**
   * One HTTP attempt under a reservation (BudgetExceededError before it when
   * the caps do not allow it). `send` is called once the attempt may go out:
   * if what it starts then times out or is aborted, the attempt is charged at
   * its worst case.
   */
  attempt<T>(
    step: string,
    messages: ChatMessage[],
    schema: Record<string, unknown> | null,
    signal: AbortSignal | undefined,
    run: (send: <R>(start: () => Promise<R>) => Promise<R>) => Promise<T>,
  ): Promise<T>;
}

/** An attempt that ended without an answer the provider may still produce and bill. */
function isAbandoned(err: unknown): boolean {
  return err instanceof AbortedError || (err instanceof ProviderError && err.kind === 'timeout');
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
  const ledger: SpendLedger = {
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
    async attempt(step, messages, schema, signal, run) {
      const held = ledger.reserve(step, messages, schema);
      let sent = false;
      const send = <R,>(start: () => Promise<R>): Promise<R> => {
        // An SDK refuses to send once the signal has fired: nothing went out.
        sent = !signal?.aborted;
        return start();
      };
      try {
        return await run(send);
      } catch (err) {
        if (sent && isAbandoned(err)) {
          const worst = worstUsd(messages, schema);
          totals.abandoned += 1;
          totals.abandonedUsd = addCost(totals.abandonedUsd, worst);
          if (worst !== null) totals.spentUsd += worst;
          budget?.record(totals.spentUsd);
        }
        throw err;
      } finally {
        ledger.release(held);
      }
    },
  };
  return ledger;
}
