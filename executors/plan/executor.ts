// nx run <analysis>:plan — what the whole chain would pay for, before paying.
// Never cached and never runs a stage: selection is computed in memory
// (nothing written), and each LLM stage is walked through the response store
// (and the answers carried in its output) as far as stored answers reach.
// Input tokens are counted with the model's tokenizer where one exists
// offline (OpenAI models), else approximated; output tokens are the median of
// the answers this stage stored before (answers.jsonl), else a per-step
// default; the dollar range prices output at half and twice that estimate.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildItems } from '../../stages/categorize.ts';
import { categorizeWith, planAssignCalls, runSampleKey } from '../../stages/categorize-assign.ts';
import { batchCount, choosePass, readResumeFile } from '../../stages/categorize-pass.ts';
import { clusterCategories, estimateClusterCalls } from '../../stages/cluster-llm.ts';
import type { Category, CategorizeItem } from '../../stages/formats.ts';
import { promptIds } from '../../stages/ledger.ts';
import type { LedgerRun } from '../../stages/ledger.ts';
import { BATCH_DISCOUNT, costUsd } from '../../stages/llm/pricing.ts';
import { batchSupported } from '../../stages/llm/batch/backend.ts';
import { countInputTokens, defaultOutputTokens } from '../../stages/llm/tokens.ts';
import { ANSWERS_FILE, readCarriedAnswers } from '../../stages/llm/carried.ts';
import { llmSettingSources, loadPipeline } from '../../stages/config.ts';
import type { LlmStageName, PipelineFile } from '../../stages/config.ts';
import { offlineCategorize } from '../../stages/offline/categorize.ts';
import { loadSummaryInput, renderSummaryPrompt, summaryFileFrom } from '../../stages/summarize.ts';
import type { SummaryFile } from '../../stages/summarize.ts';
import { lockPath, planFromLock, readTaxonomyLock } from '../../stages/taxonomy-lock.ts';
import { selectAnalysis } from '../../stages/task-list.ts';
import { analyzerLabel } from '../../stages/analyzer.ts';
import { createStageAnswerer } from '../lib/answerer.ts';
import { formatUsd } from '../../stages/llm/pricing.ts';
import type { CallPlan } from '../lib/answerer.ts';
import { lastRunAgainstItsPlan, runExecutor, stageContext, writeRunLog } from '../lib/context.ts';
import { planTargets } from './targets.ts';
import type { BaseOptions, ExecutorContextLike, StageContext } from '../lib/context.ts';
import { readSuccessfulEvaluation } from '../../stages/run-data.ts';

const FREE: CallPlan = { reused: 0, toPay: 0, estInputTokens: 0, estCostUsd: 0, known: true };

export interface PlanOptions extends BaseOptions {
  /** Print the plan as JSON (for CI) instead of text. */
  json?: boolean;
}

export default async function plan(options: PlanOptions, context: ExecutorContextLike) {
  return runExecutor('plan', async () => {
    const ctx = stageContext(options, context, { lock: false });
    const a = ctx.analysis;
    if (!options.json) console.log(`plan for ${a.name}: no provider call, no stage run; it writes only its log (stored answers are read, offline answers computed).`);

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
    if (!options.json) console.log(`  task-list   ${runs.length} runs selected${selection.problems.length ? `, ${selection.problems.length} problem(s) in the tree` : ''}`);

    const targets = planTargets(ctx, runs);
    const sum = await planSummaries(ctx, runs);
    const cat = await planCategorize(ctx, runs, sum.files, sum.unreadable);
    const clu = await planCluster(ctx, cat.categories);
    const cfg = loadPipeline(ctx.workspaceRoot);
    const stages = [
      priced(ctx, cfg, 'summarize', { ...sum.plan, known: true }, sum.inputTokens, `${runs.length} runs${sum.unreadable ? `, ${sum.unreadable} unreadable (they fail, no call)` : ''}`, 1),
      priced(ctx, cfg, 'categorize', cat.plan, null, cat.note, cat.batchedShare),
      priced(ctx, cfg, 'cluster', clu.plan, null, clu.note, 0),
    ];
    const total = {
      calls: stages.reduce((n, x) => n + x.toPay, 0),
      stored: stages.reduce((n, x) => n + x.reused, 0),
      cost_usd_low: sumOrNull(stages.map((x) => x.cost_usd_low)),
      cost_usd_high: sumOrNull(stages.map((x) => x.cost_usd_high)),
    };
    const lastRun = lastRunAgainstItsPlan(ctx);
    // A log, never an output: the next run of each stage compares what it paid with this (writeRunLog).
    writeRunLog(ctx, 'plan', { analysis: a.name, runs: runs.length, targets, stages, total });
    if (options.json) {
      console.log(JSON.stringify({ analysis: a.name, runs: runs.length, problems: selection.problems.length, targets, stages, total, last_run: lastRun }, null, 2));
      return true;
    }
    console.log('  targets (each output records the inputs it was built from; compared with those of now):');
    for (const t of targets) console.log(`    ${t.target.padEnd(11)} ${t.verdict}${t.why.length ? `: ${t.why.join('; ')}` : ''}`);
    console.log('  calls:');
    for (const x of stages) print(x);
    console.log(
      `  total       ${total.calls} call(s) to pay${total.calls ? `, about ${formatUsd(total.cost_usd_low)} to ${formatUsd(total.cost_usd_high)}; repairs may add calls` : ''}; ` +
        `${total.stored} answer(s) already stored.`,
    );
    return true;
  });
}


interface StagePlan {
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

/** A stage's calls with tokens and dollars: output from its stored answers (median), input counted where a tokenizer exists. */
/** `batchable`: the share of the stage's calls batch mode can send through a provider batch (summaries all, categorize its parallel assignment, cluster none). */
function priced(ctx: StageContext, cfg: PipelineFile, stage: LlmStageName, p: CallPlan, counted: { tokens: number; method: string } | null, note: string, batchable: number): StagePlan {
  const s = ctx.analysis[stage];
  const sources = llmSettingSources(cfg, ctx.analysis.name, stage);
  const stored = readCarriedAnswers(join(ctx.outputOf(stage), ANSWERS_FILE), () => {});
  const outs = [...stored.values()].map((r) => r.usage.output_tokens).filter((n) => n > 0).sort((x, y) => x - y);
  const median = outs.length ? outs[Math.floor(outs.length / 2)]! : defaultOutputTokens(stage);
  const out = Math.min(median, s.max_tokens);
  const input = counted ?? { tokens: p.estInputTokens, method: 'characters / 4' };
  // Batch mode buys the stage's independent calls at the provider's batch price.
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
    output_tokens_source: outs.length ? `median of ${outs.length} stored answer(s)` : 'default for the step',
    cost_usd_low: s.provider === 'offline' ? 0 : price(0.5),
    cost_usd_high: s.provider === 'offline' ? 0 : price(2),
    exact: p.known || p.toPay === 0,
    batch: batchedShare > 0,
    note,
  };
}

function sumOrNull(xs: (number | null)[]): number | null {
  return xs.reduce<number | null>((n, x) => (n === null || x === null ? null : n + x), 0);
}

function print(x: StagePlan): void {
  const who = x.provider === 'offline'
    ? 'offline analyzer: no LLM calls, no cost'
    : `${x.provider}:${x.model} (provider from ${x.sources.provider}, model from ${x.sources.model}): ${x.reused} stored, ${x.toPay} to pay` +
      (x.toPay
        ? ` (~${x.input_tokens} input tokens by ${x.input_tokens_method}; ~${x.output_tokens_per_call} output tokens per call, ${x.output_tokens_source}; ` +
          `${formatUsd(x.cost_usd_low)} to ${formatUsd(x.cost_usd_high)}${x.batch ? ', batch price where batched' : ''})`
        : '') +
      (x.exact ? '' : ' (estimated: later requests depend on answers not bought yet)');
  console.log(`  ${x.stage.padEnd(11)} ${who}${x.note ? `; ${x.note}` : ''}`);
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
  const inputTokens = { tokens: 0, method: 'characters / 4' };
  for (const run of runs) {
    let input;
    try {
      input = loadSummaryInput(ctx.dataRoot, run);
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
  return { plan, files, unreadable, inputTokens: plan.toPay > 0 ? inputTokens : null };
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
    return { plan: FREE, categories, note, batchedShare: 0 };
  }
  const assign = s.strategy === 'induce_assign';
  const templates = {
    create: readFileSync(ctx.resolvePath(s.prompts.create), 'utf8'),
    update: readFileSync(ctx.resolvePath(s.prompts.update), 'utf8'),
    // Read only by the strategy that uses it (it is a named input only then).
    assign: assign ? readFileSync(ctx.resolvePath(s.prompts.assign), 'utf8') : '',
  };
  const toSend = pass.items.length + unknown;
  const sizes = { initialBatchSize: s.initial_batch_size, iterativeBatchSize: s.iterative_batch_size, induceSampleSize: s.induce_sample_size, assignBatchSize: s.assign_batch_size };
  const counted = assign
    ? planAssignCalls(toSend, { ...sizes, start: pass.start !== undefined })
    : { sequentialCalls: batchCount(toSend, pass.start ? 0 : s.initial_batch_size, s.iterative_batch_size), parallelCalls: 0 };
  const calls = counted.sequentialCalls + counted.parallelCalls;
  // Batch mode buys the parallel assignment at batch price; the sequential calls are normal calls.
  const batchedShare = s.batch && calls > 0 ? counted.parallelCalls / calls : 0;
  const withCount = `${note}; ${toSend} run(s) in ${assign ? `${counted.sequentialCalls} sequential and ${counted.parallelCalls} parallel call(s) (strategy induce_assign; runs no category fits add calls)` : `${calls} batch(es)`}`;
  if (unknown === 0) {
    if (pass.items.length === 0) return { plan: { ...FREE }, categories: pass.start?.categories ?? [], note: withCount, batchedShare };
    const walked = await answerer.walkPlan(
      (complete) => categorizeWith(s.strategy, pass.items, {
        ...sizes, templates, complete, sampleKey: runSampleKey(built.runOf),
        ...(pass.start ? { start: pass.start } : {}),
      }),
      (answered) => Math.max(1, calls - answered),
    );
    return { plan: walked.plan, categories: walked.result?.categories ?? null, note: withCount, batchedShare };
  }
  // Some summaries are still to buy: their batches cannot be looked up; estimate them from the batch sizes.
  const perRun = built.items.length > 0 ? avgChars(built.items) : 2000;
  const perSequential = Math.ceil((templates.update.length + perRun * s.iterative_batch_size) / 4);
  const perParallel = Math.ceil((templates.assign.length + perRun * s.assign_batch_size) / 4);
  const inputTokens = perSequential * counted.sequentialCalls + perParallel * counted.parallelCalls;
  const est = costUsd(s.model, { input_tokens: inputTokens, output_tokens: s.max_tokens * calls });
  return {
    plan: { reused: 0, toPay: calls, estInputTokens: inputTokens, estCostUsd: est, known: false },
    categories: null,
    note: `${withCount}; ${unknown} summary(ies) not bought yet`,
    batchedShare,
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
  const calls = estimateClusterCalls(categories, template, s.max_prompt_chars);
  const answerer = await createStageAnswerer(ctx, s, {}, 'cluster');
  const walked = await answerer.walkPlan(
    (complete) => clusterCategories(categories, { template, complete, maxPromptChars: s.max_prompt_chars }),
    (answered) => Math.max(1, calls - answered),
  );
  return { plan: walked.plan, note: `${categories.length} categories, ${calls === 1 ? 'one call' : `about ${calls} calls (chunks and a merge round)`}` };
}
