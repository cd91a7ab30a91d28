// USD per 1M input / output tokens. A model that is not in the table has an
// unknown cost (null), never zero: a wrong "free" hides real spending.
import type { Usage } from './types.ts';

export interface Price {
  input: number;
  output: number;
}

/**
 * Keys are bare model names (lower case, no date, no Bedrock prefix/suffix).
 * The first block is the reference's table (seed-formats.md §6); the second
 * holds older models at their published list prices.
 */
const PRICES: Record<string, Price> = {
  'gpt-5': { input: 1.25, output: 10 },
  'gpt-5-mini': { input: 0.25, output: 2 },
  'gpt-5-nano': { input: 0.05, output: 0.4 },
  'gpt-5-pro': { input: 15, output: 120 },
  'o4-mini': { input: 1, output: 4 },
  'claude-opus-4-6': { input: 5, output: 25 },
  'claude-opus-4-5': { input: 5, output: 25 },
  'claude-sonnet-4-5': { input: 3, output: 15 },
  'claude-haiku-4-5': { input: 1, output: 5 },
  'claude-opus-4-1': { input: 15, output: 75 },
  'claude-sonnet-4': { input: 3, output: 15 },

  'gpt-4o': { input: 2.5, output: 10 },
  'gpt-4o-mini': { input: 0.15, output: 0.6 },
  'gpt-4-turbo': { input: 10, output: 30 },
  'gpt-4': { input: 30, output: 60 },
  o1: { input: 15, output: 60 },
  'claude-opus-4': { input: 15, output: 75 },
  'claude-3-7-sonnet': { input: 3, output: 15 },
  'claude-3-5-sonnet': { input: 3, output: 15 },
  'claude-3-5-haiku': { input: 0.8, output: 4 },
  'claude-3-opus': { input: 15, output: 75 },
  'claude-3-haiku': { input: 0.25, output: 1.25 },
};

/**
 * Reduces a provider's model id to the table's key: lower case, without a
 * Bedrock region/vendor prefix (`us.anthropic.`), a Bedrock version suffix
 * (`-v1:0`, `-v1`) or a release date (`-20250929`, `-2025-08-07`).
 */
export function normalizeModelId(model: string): string {
  let id = model.trim().toLowerCase();
  id = id.replace(/^(?:(?:us|eu|apac|global|us-gov|jp|au)\.)?anthropic\./, '');
  id = id.replace(/-v\d+(?::\d+)?$/, '');
  id = id.replace(/-(?:\d{8}|\d{4}-\d{2}-\d{2})$/, '');
  return id;
}

/** Price of a model, or null when it is not in the table. */
export function priceOf(model: string): Price | null {
  const key = normalizeModelId(model);
  return Object.hasOwn(PRICES, key) ? PRICES[key]! : null;
}

/** Cost of one call in USD, or null when the model's price is unknown. */
export function costUsd(model: string, usage: Pick<Usage, 'input_tokens' | 'output_tokens'>): number | null {
  const price = priceOf(model);
  if (!price) return null;
  return (usage.input_tokens * price.input + usage.output_tokens * price.output) / 1_000_000;
}

/**
 * What the providers' batch APIs charge relative to the prices above: OpenAI's
 * Batch API and Anthropic's Message Batches both bill half, for input and
 * output alike (stages/llm/batch/).
 */
export const BATCH_DISCOUNT = 0.5;

/** Cost of one answer bought through a provider's batch API, or null when the model's price is unknown. */
export function batchCostUsd(model: string, usage: Pick<Usage, 'input_tokens' | 'output_tokens'>): number | null {
  const full = costUsd(model, usage);
  return full === null ? null : full * BATCH_DISCOUNT;
}

/** A dollar amount for the console; unknown when the model has no price. */
export function formatUsd(x: number | null): string {
  if (x === null) return 'unknown $ (model not in the price table)';
  return `$${x.toFixed(x < 1 ? 4 : 2)}`;
}
