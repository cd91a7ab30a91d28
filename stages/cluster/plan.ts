// The plan of step 4: one call, or chunks and merge rounds when the
// categories do not fit one prompt; walked through the store when the
// taxonomy is known.
import { readFileSync } from 'node:fs';
import type { StageContext } from '../stage-context.ts';
import { clusterCategories, estimateClusterCalls } from './llm.ts';
import type { Category } from '../formats.ts';
import { costUsd } from '../llm/pricing.ts';
import { FREE } from '../plan/pricing.ts';
import { plural } from '../util/words.ts';
import type { AnswererFor } from '../plan/pricing.ts';

export async function planCluster(ctx: StageContext, categories: Category[] | null, answererFor: AnswererFor) {
  const s = ctx.analysis.cluster;
  if (s.provider === 'offline') return { plan: FREE, note: '' };
  const template = readFileSync(ctx.resolvePath(s.prompt), 'utf8');
  if (categories === null) {
    const est = costUsd(s.model, { input_tokens: Math.ceil(template.length / 4), output_tokens: s.max_tokens });
    return { plan: { reused: 0, toPay: 1, estInputTokens: Math.ceil(template.length / 4), estCostUsd: est, known: false }, note: 'estimated as one call: none if the taxonomy has a single category, more if it does not fit one prompt' };
  }
  const calls = estimateClusterCalls(categories, template, s.max_prompt_chars);
  if (calls === 0) return { plan: FREE, note: `${plural(categories.length, 'category', 'categories')}: no call (a single category is its own cluster)` };
  const answerer = await answererFor('cluster');
  const walked = await answerer.walkPlan(
    (complete) => clusterCategories(categories, { template, complete, maxPromptChars: s.max_prompt_chars }),
    (answered) => Math.max(1, calls - answered),
  );
  return { plan: walked.plan, note: `${plural(categories.length, 'category', 'categories')}, ${calls === 1 ? 'one call' : `about ${calls} calls (chunks and a merge round)`}` };
}
