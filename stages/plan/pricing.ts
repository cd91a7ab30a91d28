// The plan's dollars: a stage's calls with tokens and prices, and how the
// plan prints them. Output tokens come from the median of the stage's stored
// answers (answers.jsonl), else a per-step default; the dollar range prices
// output at half and twice that estimate.
import { join } from 'node:path';
import type { CallPlan, StageAnswerer, StageContext } from '../stage-context.ts';
import { analyzerLabel } from '../analyzer.ts';
import { llmSettingSources } from '../config.ts';
import type { LlmStageName, PipelineFile } from '../config.ts';
import { batchSupported } from '../llm/types.ts';
import { ANSWERS_FILE, readCarriedAnswers } from '../llm/carried.ts';
import { BATCH_DISCOUNT, costUsd, formatUsd } from '../llm/pricing.ts';
import { defaultOutputTokens } from '../llm/tokens.ts';
import { plural } from '../util/words.ts';

/** Nothing to pay, nothing unknown. */
export const FREE: CallPlan = { reused: 0, toPay: 0, estInputTokens: 0, estCostUsd: 0, known: true };

/** A stage's answerer for planning: store lookups and walks, never a provider call. */
export type AnswererFor = (stage: LlmStageName) => Promise<StageAnswerer>;

export interface StagePlan {
  stage: LlmStageName;
  analyzer: string;
  provider: string;
  model: string;
  /** Where provider and model come from in pipeline.yaml. */
  sources: { provider: string; model: string };
  reused: number;
  toPay: number;
  input_tokens: number;
  input_tokens_method: string;
  output_tokens_per_call: number;
  output_tokens_source: string;
  cost_usd_low: number | null;
  cost_usd_high: number | null;
  /** False when later calls depend on answers not bought yet (the counts are estimates). */
  exact: boolean;
  /** Some or all calls priced at the provider's batch price (batch: true). */
  batch: boolean;
  note: string;
}

/**
 * A stage's calls with tokens and dollars: output from its stored answers
 * (median), input counted where a tokenizer exists. `batchable`: the share of
 * the stage's calls batch mode can send through a provider batch (summaries
 * all, categorize its parallel assignment, cluster none).
 */
export function priced(ctx: StageContext, cfg: PipelineFile, stage: LlmStageName, p: CallPlan, counted: { tokens: number; method: string } | null, note: string, batchable: number): StagePlan {
  const s = ctx.analysis[stage];
  const sources = llmSettingSources(cfg, ctx.analysis.name, stage);
  const stored = readCarriedAnswers(join(ctx.outputOf(stage), ANSWERS_FILE), () => {});
  const outs = [...stored.values()].map((r) => r.usage.output_tokens).filter((n) => n > 0).sort((x, y) => x - y);
  const median = outs.length ? outs[Math.floor(outs.length / 2)]! : defaultOutputTokens(stage);
  const out = Math.min(median, s.max_tokens);
  const input = counted ?? { tokens: p.estInputTokens, method: 'characters / 4' };
  // Batch mode buys that share of the calls at the provider's batch price.
  const batchedShare = s.batch && batchSupported(s.provider) ? batchable : 0;
  const price = (factor: number) => {
    if (p.toPay === 0) return 0;
    const full = costUsd(s.model, { input_tokens: input.tokens, output_tokens: Math.round(out * factor) * p.toPay });
    return full === null ? null : full * (1 - batchedShare * (1 - BATCH_DISCOUNT));
  };
  return {
    stage,
    analyzer: analyzerLabel(s),
    provider: s.provider,
    model: s.model,
    sources: { provider: sources.provider, model: sources.model },
    reused: p.reused,
    toPay: p.toPay,
    input_tokens: p.toPay === 0 ? 0 : input.tokens,
    input_tokens_method: input.method,
    output_tokens_per_call: out,
    output_tokens_source: outs.length ? `median of ${plural(outs.length, 'stored answer', 'stored answers')}` : 'default for the step',
    cost_usd_low: s.provider === 'offline' ? 0 : price(0.5),
    cost_usd_high: s.provider === 'offline' ? 0 : price(2),
    exact: p.known || p.toPay === 0,
    batch: batchedShare > 0,
    note,
  };
}

/** The whole chain: calls to pay, answers stored, dollars (null when a model has no price). */
export function planTotal(stages: StagePlan[]) {
  return {
    calls: stages.reduce((n, x) => n + x.toPay, 0),
    stored: stages.reduce((n, x) => n + x.reused, 0),
    cost_usd_low: sumOrNull(stages.map((x) => x.cost_usd_low)),
    cost_usd_high: sumOrNull(stages.map((x) => x.cost_usd_high)),
  };
}

function sumOrNull(xs: (number | null)[]): number | null {
  return xs.reduce<number | null>((n, x) => (n === null || x === null ? null : n + x), 0);
}

export function stagePlanLine(x: StagePlan): string {
  const who = x.provider === 'offline'
    ? 'offline analyzer: no LLM calls, no cost'
    : `${x.provider}:${x.model} (provider from ${x.sources.provider}, model from ${x.sources.model}): ${x.reused} stored, ${x.toPay} to pay` +
      (x.toPay
        ? ` (~${x.input_tokens} input tokens by ${x.input_tokens_method}; ~${x.output_tokens_per_call} output tokens per call, ${x.output_tokens_source}; ` +
          `${formatUsd(x.cost_usd_low)} to ${formatUsd(x.cost_usd_high)}${x.batch ? ', batch price where batched' : ''})`
        : '') +
      (x.exact ? '' : ' (estimated: later requests depend on answers not bought yet)');
  return `  ${x.stage.padEnd(11)} ${who}${x.note ? `; ${x.note}` : ''}`;
}
