// The glue between a stage and whoever answers it: the offline analyzer or
// the LLM client, both behind the response store, with the counters the
// progress line and the run log print.
import { addUsage, answerOf, offlineAnswer, ZERO_USAGE } from '../../stages/analyzer.ts';
import type { Answer } from '../../stages/analyzer.ts';
import type { SummaryInput } from '../../stages/formats.ts';
import type { LedgerRun } from '../../stages/ledger.ts';
import { openStore } from '../../stages/llm/store.ts';
import type { ResponseStore } from '../../stages/llm/store.ts';
import type { LlmRequest, LlmSettings, Usage } from '../../stages/llm/types.ts';
import type { LlmClient, LlmEvent } from '../../stages/llm/client.ts';
import { offlineSummarize } from '../../stages/offline/summarize.ts';
import { renderSummaryPrompt } from '../../stages/summarize.ts';
import type { StageContext } from './context.ts';

export interface LlmRunOptions {
  /** Print the planned calls (store hits, paid calls, estimated tokens and cost) and make none. */
  dryRun?: boolean;
  /** false (`--no-cache`): neither read nor write the response store. */
  cache?: boolean;
  /** Ask again even when the store has an answer, and overwrite it. */
  refresh?: boolean;
}

export function formatUsd(x: number | null): string {
  if (x === null) return 'unknown $ (model not in the price table)';
  return `$${x.toFixed(x < 1 ? 4 : 2)}`;
}

/**
 * Ctrl-C: the first stops scheduling and aborts calls in flight (answers
 * already stored stay stored); the second exits at once.
 */
function interruptSignal(): AbortSignal {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    console.error('\ninterrupted: no new calls; answers received so far are in the response store. Press Ctrl-C again to quit now.');
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  process.once('SIGTERM', onSigint);
  return controller.signal;
}

function logEvent(e: LlmEvent): void {
  if (e.type === 'retry') console.warn(`  ${e.step}: retry ${e.attempt} in ${(e.delayMs / 1000).toFixed(1)}s (${e.reason})`);
  else if (e.type === 'reask') console.warn(`  ${e.step}: answer did not validate, asking again (round ${e.round}): ${e.issues.slice(0, 3).map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  else if (e.type === 'warning') console.warn(`  ${e.step}: ${e.message}`);
}

export interface StageAnswerer {
  readonly settings: LlmSettings;
  readonly store: ResponseStore | null;
  summarize(input: SummaryInput, template: string): Promise<Answer<string>>;
  offline<T>(step: string, input: unknown, compute: () => T): Answer<T>;
  complete<T>(req: LlmRequest<T>): Promise<Answer<T>>;
  planSummaries(runs: LedgerRun[], load: (run: LedgerRun) => SummaryInput, template: string): string;
  /**
   * Dry run of a sequential stage: runs `walk` with a `complete` that serves
   * stored answers and stops at the first request the store cannot answer
   * (later requests depend on that answer). No call is made.
   */
  planWalk(walk: (complete: StageAnswerer['complete']) => Promise<unknown>, remainingCalls: (firstMissIndex: number) => number): Promise<string>;
  totals(): {
    computed: number;
    reused: number;
    /** Usage and cost of calls paid in this run. */
    paid: Usage;
    paidCostUsd: number | null;
    /** Usage and cost of every answer used, wherever it came from (deterministic). */
    answers: Usage;
    answersCostUsd: number | null;
  };
  progressLine(failed: number): string;
}

export async function createStageAnswerer(ctx: StageContext, settings: LlmSettings, opts: LlmRunOptions): Promise<StageAnswerer> {
  const store = opts.cache === false ? null : openStore(ctx.storeDir, (m) => console.warn(m));
  let client: LlmClient | null = null;
  if (settings.provider !== 'offline') {
    // Loaded only when needed: the offline path never imports an SDK.
    const mod = await import('../../stages/llm/client.ts');
    client = mod.createLlmClient(settings, {
      store,
      refresh: opts.refresh === true,
      workspaceRoot: ctx.workspaceRoot,
      signal: interruptSignal(),
      onEvent: logEvent,
    });
  }
  let computed = 0;
  let reused = 0;
  let paid: Usage = ZERO_USAGE;
  let paidCost: number | null = 0;
  let answers: Usage = ZERO_USAGE;
  let answersCost: number | null = 0;
  const addCost = (a: number | null, b: number | null) => (a === null || b === null ? null : a + b);

  function record<T>(ans: Answer<T>): Answer<T> {
    if (ans.cached) reused += 1;
    else {
      computed += 1;
      paid = addUsage(paid, ans.usage);
      paidCost = addCost(paidCost, ans.costUsd);
    }
    answers = addUsage(answers, ans.usage);
    answersCost = addCost(answersCost, ans.costUsd);
    return ans;
  }

  async function complete<T>(req: LlmRequest<T>): Promise<Answer<T>> {
    if (!client) throw new Error(`${req.step}: the offline provider does not answer prompts`);
    return record(answerOf(await client.complete(req), req.schema !== undefined));
  }

  return {
    settings,
    store,
    async summarize(input, template) {
      if (settings.provider === 'offline') {
        return record(offlineAnswer(store, 'summarize', input, () => offlineSummarize(input)));
      }
      return complete<string>({ step: 'summarize', messages: [{ role: 'user', content: renderSummaryPrompt(template, input) }] });
    },
    offline(step, input, compute) {
      return record(offlineAnswer(store, step, input, compute));
    },
    complete,
    planSummaries(runs, load, template) {
      if (!client) return `dry run: the offline provider makes no LLM calls (${runs.length} runs, no cost).`;
      let hits = 0;
      let misses = 0;
      let tokens = 0;
      let cost: number | null = 0;
      const unreadable: string[] = [];
      for (const run of runs) {
        let input: SummaryInput;
        try {
          input = load(run);
        } catch (err) {
          unreadable.push(`${run.run_id}: ${(err as Error).message}`);
          continue;
        }
        const p = client.plan({ step: 'summarize', messages: [{ role: 'user', content: renderSummaryPrompt(template, input) }] });
        if (p.cached) hits += 1;
        else {
          misses += 1;
          tokens += p.estInputTokens;
          cost = addCost(cost, p.estCostUsd);
        }
      }
      return [
        `dry run: ${runs.length} runs -> ${hits} answers in the response store (free), ${misses} calls to pay.`,
        `  estimated input tokens of paid calls: ~${tokens}; estimated cost (output at max_tokens, an upper bound): ${formatUsd(cost)}`,
        ...unreadable.map((u) => `  unreadable: ${u}`),
      ].join('\n');
    },
    async planWalk(walk, remainingCalls) {
      if (!client) return 'dry run: the offline provider makes no LLM calls (no cost).';
      const c = client;
      let hits = 0;
      let miss: { estInputTokens: number; estCostUsd: number | null } | null = null;
      const stop = new Error('dry-run: first answer not in the store');
      const planOnly = async <T,>(req: LlmRequest<T>): Promise<Answer<T>> => {
        const p = c.plan(req as LlmRequest);
        if (!p.cached) {
          miss = p;
          throw stop;
        }
        hits += 1;
        return complete(req);
      };
      try {
        await walk(planOnly as StageAnswerer['complete']);
      } catch (err) {
        if (err !== stop) throw err;
      }
      if (!miss) return `dry run: all ${hits} answers are in the response store: nothing to pay.`;
      const m = miss as { estInputTokens: number; estCostUsd: number | null };
      const rest = remainingCalls(hits);
      const cost = m.estCostUsd === null ? null : m.estCostUsd * rest;
      return [
        `dry run: ${hits} answers in the response store (free), then about ${rest} call(s) to pay` +
          ' (later requests contain earlier answers, so they cannot be looked up before those are bought).',
        `  estimated input tokens: ~${m.estInputTokens * rest} (first paid call: ~${m.estInputTokens}); ` +
          `estimated cost (output at max_tokens, an upper bound): ${formatUsd(cost)}; repairs may add calls.`,
      ].join('\n');
    },
    totals: () => ({ computed, reused, paid, paidCostUsd: paidCost, answers, answersCostUsd: answersCost }),
    progressLine: (failed) =>
      `reused ${reused}, computed ${computed}, failed ${failed}${settings.provider === 'offline' ? '' : `, spent ${formatUsd(paidCost)}`}`,
  };
}
