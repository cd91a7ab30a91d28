// The plan of step 3: the pass the stage would choose (categorize/pass.ts),
// walked through the store when every summary is known; else estimated from
// the batch sizes.
import type { StageContext } from '../stage-context.ts';
import { buildItems } from './items.ts';
import { categorizeWith, planAssignCalls, runSampleKey } from './assign.ts';
import { offlineMode, resumeOf } from './outcome.ts';
import type { Templates } from './outcome.ts';
import { batchCount, choosePass, withRuns } from './pass.ts';
import { evaluatedSummary, lockBase, templatesOf } from './stage.ts';
import type { CategorizeItem } from '../formats.ts';
import { promptIds } from '../task-list/ledger.ts';
import type { LedgerRun } from '../task-list/ledger.ts';
import { costUsd } from '../llm/pricing.ts';
import { offlineCategorize } from '../offline/categorize.ts';
import { FREE } from '../plan/pricing.ts';
import type { AnswererFor } from '../plan/pricing.ts';
import type { RunEvaluation } from '../summarize/run-data.ts';
import type { SummaryFile } from '../summarize/format.ts';
import { plural } from '../util/words.ts';
import type { CallPlan } from '../stage-context.ts';
import type { Category } from '../formats.ts';
import { planHeldout } from './heldout-check.ts';

/** What the summarize plan knows: the summaries the store holds, every run's evaluation, the unreadable runs. */
export interface KnownSummaries {
  files: Map<string, SummaryFile>;
  evaluations: Map<string, RunEvaluation>;
  unreadable: number;
}

export async function planCategorize(ctx: StageContext, runs: LedgerRun[], known: KnownSummaries, answererFor: AnswererFor) {
  const s = ctx.analysis.categorize;
  const { files, evaluations, unreadable } = known;
  const built = buildItems(runs, promptIds(runs), (run) => {
    const file = files.get(run.run_id);
    return file ? evaluatedSummary(file, evaluations.get(run.run_id) as RunEvaluation) : { error: 'summary not known yet' };
  });
  const unknown = built.missing.length - unreadable;
  const base = lockBase({ ctx }, built);
  const answerer = await answererFor('categorize');

  if (s.provider === 'offline') {
    // The offline analyzer's own mode (what offlineOutcome runs), not an LLM pass.
    const mode = offlineMode(base);
    const categories = unknown === 0 ? answerer.offline('categorize', { items: built.items }, () => offlineCategorize(built.items)).value.categories : null;
    return { plan: FREE, categories, note: `mode ${mode.mode} (${mode.reason})${s.heldout.enabled ? '; held-out check by the nearest-category rule' : ''}`, batchedShare: 0 };
  }
  const pass = choosePass(built.items, base, resumeOf({ ctx }), s);
  const note = `mode ${pass.mode} (${pass.reason})`;
  const assign = s.strategy === 'induce_assign';
  const templates = templatesOf({ ctx });
  const toSend = pass.items.length + unknown;
  const sizes = { initialBatchSize: s.initial_batch_size, iterativeBatchSize: s.iterative_batch_size, induceSampleSize: s.induce_sample_size, assignBatchSize: s.assign_batch_size };
  const counted = assign
    ? planAssignCalls(toSend, { ...sizes, start: pass.start !== undefined })
    : { sequentialCalls: batchCount(toSend, pass.start ? 0 : s.initial_batch_size, s.iterative_batch_size), parallelCalls: 0 };
  const calls = counted.sequentialCalls + counted.parallelCalls;
  // Batch mode buys the parallel assignment at batch price; the sequential calls are normal calls.
  const batchedShare = s.batch && calls > 0 ? counted.parallelCalls / calls : 0;
  const withCount = `${note}; ${plural(toSend, 'run', 'runs')} in ${assign ? `${counted.sequentialCalls} sequential and ${plural(counted.parallelCalls, 'parallel call', 'parallel calls')} (strategy induce_assign; runs no category fits add calls)` : plural(calls, 'batch', 'batches')}`;
  // The held-out check after the taxonomy: its requests looked up when the taxonomy is known, else estimated.
  const withHeldout = (categorized: { plan: CallPlan; categories: Category[] | null }, text: string) => {
    const h = planHeldout(s, answerer, { categories: categorized.categories, items: built.items, runIdOf: (id) => built.runOf.get(id)?.run_id ?? id }, templates.assign, {
      population: built.items.length + unknown,
      charsPerRun: built.items.length > 0 ? avgChars(built.items) : 2000,
    });
    // The check's calls are normal calls: the batched share is of the taxonomy's calls only.
    const share = calls + h.plan.toPay > 0 ? (batchedShare * calls) / (calls + h.plan.toPay) : 0;
    return { plan: addPlans(categorized.plan, h.plan), categories: categorized.categories, note: `${text}; ${h.note}`, batchedShare: share };
  };
  if (unknown === 0) {
    if (pass.items.length === 0) return withHeldout({ plan: { ...FREE }, categories: withRuns(pass.start?.categories ?? []) }, withCount);
    const walked = await answerer.walkPlan(
      (complete) => categorizeWith(s.strategy, pass.items, {
        ...sizes, templates, complete, sampleKey: runSampleKey(built.runOf),
        ...(pass.start ? { start: pass.start } : {}),
      }),
      (answered) => Math.max(1, calls - answered),
    );
    return withHeldout({ plan: walked.plan, categories: walked.result ? withRuns(walked.result.categories) : null }, withCount);
  }
  return withHeldout(estimated(s, built.items, templates, counted, calls), `${withCount}; ${plural(unknown, 'summary', 'summaries')} not bought yet`);
}

/** Two parts of a stage's calls as one: counts and estimates added; exact only when both are. */
function addPlans(a: CallPlan, b: CallPlan): CallPlan {
  return {
    reused: a.reused + b.reused,
    toPay: a.toPay + b.toPay,
    estInputTokens: a.estInputTokens + b.estInputTokens,
    estCostUsd: a.estCostUsd === null || b.estCostUsd === null ? null : a.estCostUsd + b.estCostUsd,
    known: a.known && b.known,
  };
}

/** Some summaries are still to buy: their batches cannot be looked up; estimate them from the batch sizes. */
function estimated(
  s: StageContext['analysis']['categorize'],
  items: readonly CategorizeItem[],
  templates: Templates,
  counted: { sequentialCalls: number; parallelCalls: number },
  calls: number,
) {
  const perRun = items.length > 0 ? avgChars(items) : 2000;
  const perSequential = Math.ceil((templates.update.length + perRun * s.iterative_batch_size) / 4);
  const perParallel = Math.ceil((templates.assign.length + perRun * s.assign_batch_size) / 4);
  const inputTokens = perSequential * counted.sequentialCalls + perParallel * counted.parallelCalls;
  const est = costUsd(s.model, { input_tokens: inputTokens, output_tokens: s.max_tokens * calls });
  return { plan: { reused: 0, toPay: calls, estInputTokens: inputTokens, estCostUsd: est, known: false }, categories: null };
}

function avgChars(items: readonly CategorizeItem[]): number {
  return Math.ceil(items.reduce((n, i) => n + i.original_instruction.length + i.perturbed_instruction.length + i.summary.length + 200, 0) / items.length);
}
