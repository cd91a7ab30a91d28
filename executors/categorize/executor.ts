// nx run <analysis>:categorize — the taxonomy of benign-input vulnerability categories.
//
// offline provider: the lexical analyzer groups every run at once.
// LLM providers: iterative batches (create, then update) through the response
// store, with referential integrity repaired by re-asking; when only runs
// changed since the previous categorization with the same settings, only the
// new or changed runs are sent, as update batches (incremental mode).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzerLabel, OFFLINE_NOTICE } from '../../stages/analyzer.ts';
import { assignmentsOf, pairwiseAgreement, seededShuffle } from '../../stages/agreement.ts';
import { buildItems, checkCoverage, decorateCategories, stableIds } from '../../stages/categorize.ts';
import type { OutputCategory } from '../../stages/categorize.ts';
import { categorizeIteratively, categorizeSettingsKey, itemDigest, planIncremental } from '../../stages/categorize-llm.ts';
import type { BatchRecord, IncrementalState } from '../../stages/categorize-llm.ts';
import { stageSettings } from '../../stages/config.ts';
import type { Category, CategorizeItem } from '../../stages/formats.ts';
import { promptIds } from '../../stages/ledger.ts';
import type { FailedRun, Ledger, LedgerRun } from '../../stages/ledger.ts';
import { sha256 } from '../../stages/llm/store.ts';
import type { Usage } from '../../stages/llm/types.ts';
import { offlineCategorize } from '../../stages/offline/categorize.ts';
import type { SummaryFile } from '../../stages/summarize.ts';
import { createStageAnswerer, formatUsd } from '../lib/answerer.ts';
import type { LlmRunOptions, StageAnswerer } from '../lib/answerer.ts';
import { runExecutor, stageContext, writeRunLog } from '../lib/context.ts';
import type { BaseOptions, ExecutorContextLike, StageContext } from '../lib/context.ts';
import { buildOutputDir, readUpstream, writeJson } from '../lib/io.ts';
import { readSuccessfulEvaluation } from '../lib/run-data.ts';
import type { SummaryIndexEntry } from '../summarize/executor.ts';

export interface CategorizeOptions extends BaseOptions, LlmRunOptions {
  /** Also categorize N more times with shuffled batch order and report how much the partitions agree. */
  stability?: number;
}

/** The stable id of one category or cluster name (see stableIds). */
export function stableId(prefix: string, name: string): string {
  return stableIds(prefix, [name], sha256)[0] as string;
}

interface Outcome {
  categories: Category[];
  unassigned: { id: string; reason: string }[];
  usage: Usage;
  costUsd: number | null;
  mode: string;
  modeReason: string;
  batches: Omit<BatchRecord, 'cached'>[];
  /** With the `cached` flags: for the run log only (they differ between runs). */
  batchLog: BatchRecord[];
  resumedFrom: { path: string; categories: number; metadata: unknown } | null;
  stability: unknown;
}

interface PreviousFile {
  categorization: { categories: OutputCategory[] };
  statistics: { input_tokens?: number; output_tokens?: number; total_tokens?: number; cost?: string };
  metadata: { settings_key?: string; item_digests?: Record<string, string> };
}

export default async function categorize(options: CategorizeOptions, context: ExecutorContextLike) {
  return runExecutor('categorize', async () => {
    const ctx = stageContext(options, context);
    const a = ctx.analysis;
    const settings = a.categorize;
    const ledger = readUpstream<Ledger>(ctx.outputOf('task-list'), 'runs.json', 'task-list');
    const sumDir = ctx.outputOf('summarize');
    const sumIndex = readUpstream<{ runs: SummaryIndexEntry[] }>(sumDir, 'index.json', 'summarize');
    const entryOf = new Map(sumIndex.runs.map((e) => [e.run_id, e]));
    const idOf = promptIds(ledger.runs);

    const built = buildItems(ledger.runs, idOf, (run: LedgerRun) => {
      const entry = entryOf.get(run.run_id);
      if (!entry) return { error: 'no summary: the run is missing from the summarize index' };
      if (entry.status !== 'done' || !entry.file) return { error: `no summary: ${entry.reason ?? 'summarize failed'}` };
      const file = JSON.parse(readFileSync(join(sumDir, entry.file), 'utf8')) as SummaryFile;
      const ev = readSuccessfulEvaluation(join(ctx.dataRoot, run.refinement_summary_path));
      return { file, severity: ev.severity, harmful: ev.harmful, strategy: ev.strategy ?? '' };
    });
    const prompts = {
      create: readFileSync(ctx.resolvePath(settings.prompts.create), 'utf8'),
      update: readFileSync(ctx.resolvePath(settings.prompts.update), 'utf8'),
    };
    const settingsKey = categorizeSettingsKey({ settings: stageSettings(a, 'categorize'), create: sha256(prompts.create), update: sha256(prompts.update) });
    const itemDigests = Object.fromEntries(built.items.map((i) => [i.id, itemDigest(i)]));
    const outFile = join(ctx.outputOf('categorize'), 'categorization.json');
    const answerer = await createStageAnswerer(ctx, settings, options);
    const label = analyzerLabel(settings);

    if (options.dryRun) {
      if (settings.provider === 'offline') {
        console.log(`dry run: the offline provider makes no LLM calls (${built.items.length} runs, no cost).`);
        return true;
      }
      const pass = choosePass(ctx, built.items, readPrevious(outFile), settingsKey, itemDigests);
      const batches = batchCount(pass.items.length, pass.start ? 0 : settings.initial_batch_size, settings.iterative_batch_size);
      console.log(`dry run: mode ${pass.mode} (${pass.reason}); ${pass.items.length} runs in ${batches} batch(es).`);
      if (pass.items.length > 0) {
        console.log(await answerer.planWalk(
          (complete) => categorizeIteratively(pass.items, {
            initialBatchSize: settings.initial_batch_size, iterativeBatchSize: settings.iterative_batch_size, templates: prompts, complete,
            ...(pass.start ? { start: pass.start } : {}),
          }),
          (answered) => Math.max(1, batches - answered),
        ));
      }
      return true;
    }
    console.log(`categorize: ${built.items.length} summarized runs with ${label}`);
    if (settings.provider === 'offline') console.log(`  ${OFFLINE_NOTICE}`);

    const outcome = settings.provider === 'offline'
      ? offlineOutcome(answerer, built.items)
      : await llmOutcome(ctx, answerer, built.items, prompts, readPrevious(outFile), settingsKey, itemDigests, options.stability ?? 0);

    const coverage = checkCoverage(outcome.categories, built.items.map((i) => i.id));
    const reasonOf = new Map(outcome.unassigned.map((u) => [u.id, u.reason]));
    const unassigned: FailedRun[] = [
      ...built.missing,
      ...coverage.unassigned.map((id) => ({
        run_id: built.runOf.get(id)?.run_id ?? id,
        stage: 'categorize',
        reason: reasonOf.get(id) ?? 'not assigned to any category',
      })),
    ].sort((x, y) => (x.run_id < y.run_id ? -1 : 1));
    const ids = stableIds('cat', outcome.categories.map((c) => c.category_name), sha256);
    const idByName = new Map(outcome.categories.map((c, i) => [c.category_name, ids[i] as string]));
    const decorated = decorateCategories(outcome.categories, built.items, built.runOf, (c) => idByName.get(c.category_name) as string);
    const totalExamples = decorated.reduce((n, c) => n + c.examples.length, 0);
    const verified = decorated.reduce((n, c) => n + c.examples.filter((e) => e.trigger_phrase_verified).length, 0);

    await buildOutputDir(ctx.outputOf('categorize'), async (dir) => {
      writeJson(join(dir, 'categorization.json'), {
        categorization: { categories: decorated },
        statistics: {
          total_tasks: ledger.runs.length,
          total_categories: decorated.length,
          total_examples: totalExamples,
          input_tokens: outcome.usage.input_tokens,
          output_tokens: outcome.usage.output_tokens,
          total_tokens: outcome.usage.total_tokens,
          cost: (outcome.costUsd ?? 0).toFixed(8),
          cost_known: outcome.costUsd !== null,
          categorized_runs: coverage.assigned.size,
          unassigned_runs: unassigned.length,
          verified_trigger_phrases: verified,
        },
        metadata: {
          task_list_path: Object.values(ledger.task_list_files).join(', '),
          perturbation_model: a.data.perturbation_model,
          refinement_models_included: [...new Set(ledger.runs.map((r) => r.refinement_model))].sort(),
          agent: a.agents.join(','),
          api_type: settings.provider,
          model_name: settings.provider === 'offline' ? 'offline-analyzer' : settings.model,
          max_tokens: settings.max_tokens,
          temperature: settings.temperature,
          initial_categorization_batch_size: settings.initial_batch_size,
          iterative_categorization_batch_size: settings.iterative_batch_size,
          resume_categorization_path: settings.resume_categorization_path,
          resumed_from_categories: outcome.resumedFrom?.categories ?? null,
          resumed_from_metadata: outcome.resumedFrom?.metadata ?? null,
          generated_at: null,
          analyzer: label,
          ...(settings.provider === 'offline' ? { notice: OFFLINE_NOTICE } : {}),
          mode: outcome.mode,
          mode_reason: outcome.modeReason,
          agents: a.agents,
          prompts: {
            create: { file: settings.prompts.create, sha256: sha256(prompts.create) },
            update: { file: settings.prompts.update, sha256: sha256(prompts.update) },
          },
          settings_key: settingsKey,
          item_digests: itemDigests,
          batches: outcome.batches,
          ...(outcome.stability ? { stability: outcome.stability } : {}),
        },
        unassigned,
      });
    });
    const t = answerer.totals();
    const log = writeRunLog(ctx, 'categorize', {
      analysis: a.name, analyzer: label, mode: outcome.mode, computed: t.computed, reused: t.reused,
      paid_usage: t.paid, paid_cost_usd: t.paidCostUsd, batches: outcome.batchLog, unassigned,
    });
    console.log(
      `categorize: ${coverage.assigned.size}/${ledger.runs.length} runs in ${decorated.length} categories` +
        `${unassigned.length ? `, ${unassigned.length} unassigned (listed in the output)` : ''}; mode ${outcome.mode}; ` +
        `${t.reused} answers reused from the response store, ${t.computed} computed; spent ${formatUsd(t.paidCostUsd)}. Log: ${log}`,
    );
    return true;
  });
}

function offlineOutcome(answerer: StageAnswerer, items: CategorizeItem[]): Outcome {
  const answer = answerer.offline('categorize', { items }, () => offlineCategorize(items));
  return {
    categories: answer.value.categories,
    unassigned: [],
    usage: answer.usage,
    costUsd: answer.costUsd,
    mode: 'offline-global',
    modeReason: 'the offline analyzer groups all runs at once',
    batches: [],
    batchLog: [],
    resumedFrom: null,
    stability: null,
  };
}

/** The previous categorization of this analysis, with the tokens and cost it was built with. */
interface PreviousCategorization extends IncrementalState {
  totals: { usage: Usage; costUsd: number | null };
}

function readPrevious(file: string): PreviousCategorization | null {
  if (!existsSync(file)) return null;
  try {
    const prev = JSON.parse(readFileSync(file, 'utf8')) as PreviousFile;
    if (!prev.metadata?.settings_key || !prev.metadata.item_digests) return null;
    const st = prev.statistics;
    return {
      categories: prev.categorization.categories.map(plainCategory),
      itemDigests: prev.metadata.item_digests,
      settingsKey: prev.metadata.settings_key,
      totals: {
        usage: { input_tokens: st.input_tokens ?? 0, output_tokens: st.output_tokens ?? 0, total_tokens: st.total_tokens ?? 0 },
        costUsd: st.cost === undefined ? null : Number(st.cost),
      },
    };
  } catch {
    return null;
  }
}

/** A category as the model sees it (reference fields only). */
function plainCategory(c: { category_name: string; definition: string; examples?: { id: string; trigger_phrase: string | null; justification: string | null }[] }): Category {
  return {
    category_name: c.category_name,
    definition: c.definition,
    examples: (c.examples ?? []).map((e) => ({ id: e.id, trigger_phrase: e.trigger_phrase ?? null, justification: e.justification ?? null })),
  };
}

function readResumeFile(ctx: StageContext, path: string): { categories: Category[]; metadata: unknown } {
  const abs = ctx.resolvePath(path);
  let json: { categorization?: { categories?: unknown }; metadata?: unknown };
  try {
    json = JSON.parse(readFileSync(abs, 'utf8'));
  } catch (err) {
    throw new Error(`resume_categorization_path ${path}: cannot read as JSON: ${(err as Error).message}`);
  }
  if (!json.categorization || !Array.isArray(json.categorization.categories)) {
    throw new Error(`resume_categorization_path ${path}: field "categorization.categories": expected a list of categories`);
  }
  return { categories: (json.categorization.categories as Category[]).map(plainCategory), metadata: json.metadata ?? null };
}

const NO_USAGE: Usage = { input_tokens: 0, output_tokens: 0, total_tokens: 0 };

/** What one LLM categorization pass sends, and what it builds on. */
interface Pass {
  mode: string;
  reason: string;
  items: CategorizeItem[];
  /** Taxonomy the items are added to as update batches (none: the first batch creates one). */
  start?: { categories: Category[] };
  resumedFrom: Outcome['resumedFrom'];
  /** Tokens and cost already spent on the taxonomy the pass starts from. */
  carried: { usage: Usage; costUsd: number | null };
}

/** resume_categorization_path, else incremental growth of the previous categorization, else from scratch. */
function choosePass(
  ctx: StageContext,
  items: CategorizeItem[],
  previous: PreviousCategorization | null,
  settingsKey: string,
  itemDigests: Record<string, string>,
): Pass {
  const path = ctx.analysis.categorize.resume_categorization_path;
  if (path) {
    const resume = readResumeFile(ctx, path);
    return {
      mode: 'resume',
      reason: `every run sent as update batches against ${path}`,
      items,
      start: { categories: resume.categories },
      resumedFrom: { path, categories: resume.categories.length, metadata: resume.metadata },
      carried: { usage: NO_USAGE, costUsd: 0 },
    };
  }
  const plan = planIncremental(previous, { items, itemDigests, settingsKey });
  if (plan.mode === 'from-scratch' || !previous) {
    return { mode: plan.mode, reason: plan.reason, items, resumedFrom: null, carried: { usage: NO_USAGE, costUsd: 0 } };
  }
  return { mode: plan.mode, reason: plan.reason, items: plan.toAdd, start: { categories: plan.keep }, resumedFrom: null, carried: previous.totals };
}

async function llmOutcome(
  ctx: StageContext,
  answerer: StageAnswerer,
  items: CategorizeItem[],
  templates: { create: string; update: string },
  previous: PreviousCategorization | null,
  settingsKey: string,
  itemDigests: Record<string, string>,
  stabilityRuns: number,
): Promise<Outcome> {
  const s = ctx.analysis.categorize;
  const complete = answerer.complete.bind(answerer);
  const onBatch = (b: BatchRecord) =>
    console.log(`  batch ${b.index + 1} (${b.kind}, ${b.ids.length} runs): ${b.cached ? 'from the store' : 'answered'}${b.repairs ? `, ${b.repairs} repair(s)` : ''}${b.unresolved.length ? `; unresolved: ${b.unresolved.join('; ')}` : ''}`);
  const base = { initialBatchSize: s.initial_batch_size, iterativeBatchSize: s.iterative_batch_size, templates, complete, onBatch };
  const strip = (bs: BatchRecord[]) => bs.map(({ cached: _cached, ...rest }) => rest);

  const pass = choosePass(ctx, items, previous, settingsKey, itemDigests);
  console.log(`  mode: ${pass.mode} (${pass.reason})`);
  const result = pass.items.length > 0 || !pass.start
    ? await categorizeIteratively(pass.items, { ...base, ...(pass.start ? { start: pass.start } : {}) })
    : { categories: pass.start.categories, unassigned: [], batches: [], usage: NO_USAGE, costUsd: 0, paidCalls: 0, cachedCalls: 0 };
  const carried = pass.carried;
  let stability: unknown = null;
  if (stabilityRuns > 0) {
    const partitions = [assignmentsOf(result.categories)];
    for (let k = 1; k <= stabilityRuns; k++) {
      const shuffled = seededShuffle(items, `stability-${k}`);
      const again = await categorizeIteratively(shuffled, base);
      partitions.push(assignmentsOf(again.categories));
    }
    const agreement = pairwiseAgreement(partitions);
    stability = { runs: stabilityRuns + 1, seeds: Array.from({ length: stabilityRuns }, (_, i) => `stability-${i + 1}`), adjusted_rand_index: agreement };
    console.log(`  stability over ${stabilityRuns + 1} batch orders: mean ARI ${agreement.mean?.toFixed(3) ?? "n/a"} (min ${agreement.min?.toFixed(3) ?? "n/a"})`);
  }
  const add = (x: number | null, y: number | null) => (x === null || y === null ? null : x + y);
  return {
    categories: result.categories,
    unassigned: result.unassigned,
    usage: {
      input_tokens: carried.usage.input_tokens + result.usage.input_tokens,
      output_tokens: carried.usage.output_tokens + result.usage.output_tokens,
      total_tokens: carried.usage.total_tokens + result.usage.total_tokens,
    },
    costUsd: add(carried.costUsd, result.costUsd),
    mode: pass.mode,
    modeReason: pass.reason,
    batches: strip(result.batches),
    batchLog: result.batches,
    resumedFrom: pass.resumedFrom,
    stability,
  };
}

/** Batches of a categorization pass: the first of `first` runs (0 when resuming), then `rest` at a time. */
function batchCount(n: number, first: number, rest: number): number {
  if (n === 0) return 0;
  const head = Math.min(first, n);
  return (head > 0 ? 1 : 0) + Math.ceil((n - head) / rest);
}
