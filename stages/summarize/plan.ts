// The plan of step 2: one request per run, each looked up in the store; the
// summaries the store (or the offline analyzer) already knows and every run's
// evaluation, for the categorize plan.
import { readFileSync } from 'node:fs';
import type { StageContext } from '../stage-context.ts';
import { analyzerLabel } from '../analyzer.ts';
import type { LedgerRun } from '../task-list/ledger.ts';
import { countInputTokens } from '../llm/tokens.ts';
import { FREE } from '../plan/pricing.ts';
import type { AnswererFor } from '../plan/pricing.ts';
import { loadRun, runEvaluationOf } from './run-data.ts';
import type { RunEvaluation } from './run-data.ts';
import { renderSummaryPrompt, summaryFileFrom } from './summary.ts';
import type { SummaryFile } from './summary.ts';

export async function planSummaries(ctx: StageContext, runs: LedgerRun[], answererFor: AnswererFor) {
  const s = ctx.analysis.summarize;
  const answerer = await answererFor('summarize');
  const template = readFileSync(ctx.resolvePath(s.prompt), 'utf8');
  const label = analyzerLabel(s);
  const files = new Map<string, SummaryFile>();
  const plan = { ...FREE };
  let unreadable = 0;
  const inputTokens = { tokens: 0, method: 'characters / 4' };
  const evaluations = new Map<string, RunEvaluation>();
  for (const run of runs) {
    const loaded = loadRun(ctx.dataRoot, run);
    evaluations.set(run.run_id, runEvaluationOf(loaded.evaluation));
    let input;
    try {
      input = loaded.input();
    } catch {
      unreadable += 1;
      continue;
    }
    const messages = [{ role: 'user' as const, content: renderSummaryPrompt(template, input) }];
    const probe = answerer.probe({ step: 'summarize', messages });
    if (probe && !probe.cached) {
      const counted = await countInputTokens(s.provider, s.model, messages, null);
      inputTokens.tokens += counted.tokens;
      inputTokens.method = counted.method;
      plan.toPay += 1;
      plan.estInputTokens += probe.estInputTokens;
      plan.estCostUsd = plan.estCostUsd === null || probe.estCostUsd === null ? null : plan.estCostUsd + probe.estCostUsd;
      continue;
    }
    // Stored (or offline, which costs nothing): the summary is known.
    const answer = await answerer.summarize(input, template);
    if (probe) plan.reused += 1;
    files.set(run.run_id, summaryFileFrom(run, input, answer, s, label));
  }
  plan.known = plan.toPay === 0;
  return { plan, files, evaluations, unreadable, inputTokens: plan.toPay > 0 ? inputTokens : null };
}
