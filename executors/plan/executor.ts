// nx run <analysis>:plan — what the whole chain would pay for, before paying.
// Never cached and never runs a stage: selection is computed in memory
// (nothing written), and each LLM stage is walked through the response store
// (and the answers carried in its output) as far as stored answers reach.
// Estimates use characters / 4 for input tokens and max_tokens for output,
// so the dollars are an upper bound.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildItems } from '../../stages/categorize.ts';
import { categorizeIteratively } from '../../stages/categorize-llm.ts';
import { batchCount, choosePass, readResumeFile } from '../../stages/categorize-pass.ts';
import { clusterCategories, renderCategoriesForClustering } from '../../stages/cluster-llm.ts';
import type { Category, CategorizeItem } from '../../stages/formats.ts';
import { promptIds } from '../../stages/ledger.ts';
import type { LedgerRun } from '../../stages/ledger.ts';
import { costUsd } from '../../stages/llm/pricing.ts';
import { offlineCategorize } from '../../stages/offline/categorize.ts';
import { loadSummaryInput, renderSummaryPrompt, summaryFileFrom } from '../../stages/summarize.ts';
import type { SummaryFile } from '../../stages/summarize.ts';
import { lockPath, planFromLock, readTaxonomyLock } from '../../stages/taxonomy-lock.ts';
import { selectAnalysis } from '../../stages/task-list.ts';
import { analyzerLabel } from '../../stages/analyzer.ts';
import { createStageAnswerer, formatUsd } from '../lib/answerer.ts';
import type { CallPlan } from '../lib/answerer.ts';
import { runExecutor, stageContext } from '../lib/context.ts';
import type { BaseOptions, ExecutorContextLike, StageContext } from '../lib/context.ts';
import { readSuccessfulEvaluation } from '../lib/run-data.ts';

const FREE: CallPlan = { reused: 0, toPay: 0, estInputTokens: 0, estCostUsd: 0, known: true };

export default async function plan(options: BaseOptions, context: ExecutorContextLike) {
  return runExecutor('plan', async () => {
    const ctx = stageContext(options, context, { lock: false });
    const a = ctx.analysis;
    console.log(`plan for ${a.name}: no provider call, nothing written to out/ (stored answers are read, offline answers computed).`);

    const selection = await selectAnalysis({
      baseDir: a.data.root,
      resolve: ctx.resolvePath,
      agents: a.agents,
      domains: a.domains === 'all' ? ['all'] : a.domains,
      refinementModels: a.refinement_models === 'all' ? [null] : a.refinement_models,
      perturbationModel: a.data.perturbation_model,
      dataFilter: a.data.baseline_harm_filter,
      humanAnnotationFilter: a.data.human_annotation_filter,
    });
    const runs = selection.runs;
    console.log(`  task-list   ${runs.length} runs selected${selection.problems.length ? `, ${selection.problems.length} problem(s) in the tree` : ''}`);

    const sum = await planSummaries(ctx, runs);
    print('summarize', analyzerLabel(a.summarize), sum.plan, `${runs.length} runs${sum.unreadable ? `, ${sum.unreadable} unreadable (they fail, no call)` : ''}`);
    const cat = await planCategorize(ctx, runs, sum.files, sum.unreadable);
    print('categorize', analyzerLabel(a.categorize), cat.plan, cat.note);
    const clu = await planCluster(ctx, cat.categories);
    print('cluster', analyzerLabel(a.cluster), clu.plan, clu.note);

    const plans = [sum.plan, cat.plan, clu.plan];
    const calls = plans.reduce((n, p) => n + p.toPay, 0);
    const cost = plans.reduce<number | null>((n, p) => (n === null || p.estCostUsd === null ? null : n + p.estCostUsd), 0);
    console.log(
      `  total       ${calls} call(s) to pay${calls ? `, at most ~${formatUsd(cost)} (output priced at max_tokens; repairs may add calls)` : ''}; ` +
        `${plans.reduce((n, p) => n + p.reused, 0)} answer(s) already stored.`,
    );
    return true;
  });
}

function print(stage: string, label: string, p: CallPlan, note: string): void {
  const what = label.startsWith('offline')
    ? 'offline analyzer: no LLM calls, no cost'
    : `${p.reused} stored, ${p.toPay} to pay${p.toPay ? ` (~${p.estInputTokens} input tokens, at most ${formatUsd(p.estCostUsd)})` : ''}${p.known ? '' : ' (estimated: later requests depend on answers not bought yet)'}`;
  console.log(`  ${stage.padEnd(11)} ${what}${note ? `; ${note}` : ''}`);
}

/** Summaries: one request per run, each looked up in the store. */
async function planSummaries(ctx: StageContext, runs: LedgerRun[]) {
  const s = ctx.analysis.summarize;
  const answerer = await createStageAnswerer(ctx, s, {}, 'summarize');
  const template = readFileSync(ctx.resolvePath(s.prompt), 'utf8');
  const label = analyzerLabel(s);
  const files = new Map<string, SummaryFile>();
  const plan = { ...FREE };
  let unreadable = 0;
  for (const run of runs) {
    let input;
    try {
      input = loadSummaryInput(ctx.dataRoot, run);
    } catch {
      unreadable += 1;
      continue;
    }
    const probe = answerer.probe({ step: 'summarize', messages: [{ role: 'user', content: renderSummaryPrompt(template, input) }] });
    if (probe && !probe.cached) {
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
  return { plan, files, unreadable };
}

/** Categorization: the pass the stage would choose; walked through the store when every summary is known. */
async function planCategorize(ctx: StageContext, runs: LedgerRun[], files: Map<string, SummaryFile>, unreadable: number) {
  const a = ctx.analysis;
  const s = a.categorize;
  const idOf = promptIds(runs);
  const built = buildItems(runs, idOf, (run) => {
    const file = files.get(run.run_id);
    if (!file) return { error: 'summary not known yet' };
    const ev = readSuccessfulEvaluation(join(ctx.dataRoot, run.refinement_summary_path));
    return { file, severity: ev.severity, harmful: ev.harmful, strategy: ev.strategy ?? '' };
  });
  const unknown = built.missing.length - unreadable;
  const lockFile = lockPath(a.name);
  const lock = readTaxonomyLock(join(ctx.workspaceRoot, lockFile), lockFile);
  const runIdOf = (id: string) => built.runOf.get(id)?.run_id ?? id;
  const base = lock ? { file: lockFile, lock, plan: planFromLock(lock, built.items, runIdOf) } : null;
  const resume = s.resume_categorization_path;
  const pass = choosePass(built.items, base, resume ? () => readResumeFile(ctx.resolvePath(resume), resume) : null);
  const note = `mode ${pass.mode} (${pass.reason})`;
  const answerer = await createStageAnswerer(ctx, s, {}, 'categorize');

  if (s.provider === 'offline') {
    const categories = unknown === 0 ? answerer.offline('categorize', { items: built.items }, () => offlineCategorize(built.items)).value.categories : null;
    return { plan: FREE, categories, note };
  }
  const templates = { create: readFileSync(ctx.resolvePath(s.prompts.create), 'utf8'), update: readFileSync(ctx.resolvePath(s.prompts.update), 'utf8') };
  const toSend = pass.items.length + unknown;
  const batches = batchCount(toSend, pass.start ? 0 : s.initial_batch_size, s.iterative_batch_size);
  const withCount = `${note}; ${toSend} run(s) in ${batches} batch(es)`;
  if (unknown === 0) {
    if (pass.items.length === 0) return { plan: { ...FREE }, categories: pass.start?.categories ?? [], note: withCount };
    const walked = await answerer.walkPlan(
      (complete) => categorizeIteratively(pass.items, {
        initialBatchSize: s.initial_batch_size, iterativeBatchSize: s.iterative_batch_size, templates, complete,
        ...(pass.start ? { start: pass.start } : {}),
      }),
      (answered) => Math.max(1, batches - answered),
    );
    return { plan: walked.plan, categories: walked.result?.categories ?? null, note: withCount };
  }
  // Some summaries are still to buy: their batches cannot be looked up; estimate them from the batch size.
  const perRun = built.items.length > 0 ? avgChars(built.items) : 2000;
  const perCall = Math.ceil((templates.update.length + perRun * s.iterative_batch_size) / 4);
  const est = costUsd(s.model, { input_tokens: perCall, output_tokens: s.max_tokens });
  return {
    plan: { reused: 0, toPay: batches, estInputTokens: perCall * batches, estCostUsd: est === null ? null : est * batches, known: false },
    categories: null,
    note: `${withCount}; ${unknown} summary(ies) not bought yet`,
  };
}

function avgChars(items: readonly CategorizeItem[]): number {
  return Math.ceil(items.reduce((n, i) => n + i.original_instruction.length + i.perturbed_instruction.length + i.summary.length + 200, 0) / items.length);
}

/** Clustering: one call, or chunks and merge rounds when the categories do not fit one prompt. */
async function planCluster(ctx: StageContext, categories: Category[] | null) {
  const s = ctx.analysis.cluster;
  if (s.provider === 'offline') return { plan: FREE, note: '' };
  const template = readFileSync(ctx.resolvePath(s.prompt), 'utf8');
  if (categories === null) {
    const est = costUsd(s.model, { input_tokens: Math.ceil(template.length / 4), output_tokens: s.max_tokens });
    return { plan: { reused: 0, toPay: 1, estInputTokens: Math.ceil(template.length / 4), estCostUsd: est, known: false }, note: 'at least one call; its size depends on the taxonomy' };
  }
  const chars = renderCategoriesForClustering(categories).length + template.length;
  const calls = chars <= s.max_prompt_chars ? 1 : Math.ceil(chars / s.max_prompt_chars) + 1;
  const answerer = await createStageAnswerer(ctx, s, {}, 'cluster');
  const walked = await answerer.walkPlan(
    (complete) => clusterCategories(categories, { template, complete, maxPromptChars: s.max_prompt_chars }),
    (answered) => Math.max(1, calls - answered),
  );
  return { plan: walked.plan, note: `${categories.length} categories, ${calls === 1 ? 'one call' : `about ${calls} calls (chunks and a merge round)`}` };
}
