// The plan's walk down the LLM stages: each stage's calls (summarize/plan.ts,
// categorize/plan.ts, cluster/plan.ts), priced (plan/pricing.ts), and the
// plan's text lines.
import type { StageContext } from '../stage-context.ts';
import { planCategorize } from '../categorize/plan.ts';
import { planCluster } from '../cluster/plan.ts';
import { loadPipeline } from '../config.ts';
import type { LedgerRun } from '../task-list/ledger.ts';
import { formatUsd } from '../llm/pricing.ts';
import { planTotal, priced, stagePlanLine } from './pricing.ts';
import type { AnswererFor, StagePlan } from './pricing.ts';
import { planSummaries } from '../summarize/plan.ts';
import { plural } from '../util/words.ts';

/** Per LLM stage: answers stored, calls to pay and their dollars. Each stage is planned on what the one before it would give. */
export async function planCalls(ctx: StageContext, runs: LedgerRun[], answererFor: AnswererFor): Promise<StagePlan[]> {
  const sum = await planSummaries(ctx, runs, answererFor);
  const cat = await planCategorize(ctx, runs, sum, answererFor);
  const clu = await planCluster(ctx, cat.categories, answererFor);
  const cfg = loadPipeline(ctx.workspaceRoot);
  return [
    priced(ctx, cfg, 'summarize', { ...sum.plan, known: true }, sum.inputTokens, `${runs.length} runs${sum.unreadable ? `, ${sum.unreadable} unreadable (they fail, no call)` : ''}`, 1),
    priced(ctx, cfg, 'categorize', cat.plan, null, cat.note, cat.batchedShare),
    priced(ctx, cfg, 'cluster', clu.plan, null, clu.note, 0),
  ];
}

/** The total: calls to pay and stored LLM answers; with only the offline analyzer, that nothing is paid. */
function totalLine(stages: StagePlan[], total: ReturnType<typeof planTotal>): string {
  if (stages.every((s) => s.provider === 'offline')) return '  total       no call to pay: every stage uses the offline analyzer (its answers are computed, or read from the store).';
  return `  total       ${plural(total.calls, 'call', 'calls')} to pay${total.calls ? `, about ${formatUsd(total.cost_usd_low)} to ${formatUsd(total.cost_usd_high)}; repairs may add calls` : ''}; ` +
    `${plural(total.stored, 'LLM answer', 'LLM answers')} already stored.`;
}

/** The plan as text: which targets run and why, then the calls and the total. */
export function planLines(targets: { target: string; verdict: string; why: string[] }[], stages: StagePlan[]): string[] {
  const total = planTotal(stages);
  return [
    '  targets (each output records the inputs it was built from; compared with those of now):',
    ...targets.map((t) => `    ${t.target.padEnd(11)} ${t.verdict}${t.why.length ? `: ${t.why.join('; ')}` : ''}`),
    '  calls:',
    ...stages.map(stagePlanLine),
    totalLine(stages, total),
  ];
}
