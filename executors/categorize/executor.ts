// nx run <analysis>:categorize — the taxonomy of benign-input vulnerability categories.
//
// A pure function of (summaries, settings, taxonomy lock): it never reads its
// own previous output. With a committed lock (analyses/<name>/taxonomy.lock.json),
// runs the lock holds with an unchanged summary keep their category with no
// call, and only new or changed runs are categorized against the locked
// taxonomy; without one the taxonomy is built from scratch.
// offline provider: the lexical analyzer groups every run at once (against a
// lock: new runs join the locked category most of their group holds).
// LLM providers: iterative batches (create, then update) through the response
// store, with referential integrity repaired by re-asking; with
// `strategy: induce_assign`, those batches only on a stratified sample, the
// other runs assigned in parallel and the misfits updated
// (stages/categorize-assign.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzerLabel, OFFLINE_NOTICE } from '../../stages/analyzer.ts';
import { assignmentsOf, pairwiseAgreement, seededShuffle } from '../../stages/agreement.ts';
import { buildItems, checkCoverage, decorateCategories, joinLockedByMajority } from '../../stages/categorize.ts';
import type { BatchRecord } from '../../stages/categorize-llm.ts';
import { categorizeWith, planAssignCalls, runSampleKey } from '../../stages/categorize-assign.ts';
import type { InduceAssignStats, SampleKey, SendAll } from '../../stages/categorize-assign.ts';
import { stageSettings } from '../../stages/config.ts';
import type { Category, CategorizeItem } from '../../stages/formats.ts';
import { promptIds } from '../../stages/ledger.ts';
import type { FailedRun, Ledger, LedgerRun } from '../../stages/ledger.ts';
import { sha256 } from '../../stages/llm/store.ts';
import type { LlmRequest, Usage } from '../../stages/llm/types.ts';
import { ZERO_USAGE } from '../../stages/llm/usage.ts';
import { offlineCategorize } from '../../stages/offline/categorize.ts';
import type { SummaryFile, SummaryIndexEntry } from '../../stages/summarize.ts';
import { lockPath, planFromLock, readTaxonomyLock, summaryDigest } from '../../stages/taxonomy-lock.ts';
import { lockedStableIds, stableIds } from '../../stages/util/ids.ts';
import { batchCount, choosePass, lockReason, readResumeFile } from '../../stages/categorize-pass.ts';
import type { LockBase } from '../../stages/categorize-pass.ts';
import { createStageAnswerer, formatUsd } from '../lib/answerer.ts';
import type { LlmRunOptions, StageAnswerer } from '../lib/answerer.ts';
import { progressPrinter, runExecutor, stageContext, writeRunLog } from '../lib/context.ts';
import type { BaseOptions, ExecutorContextLike, StageContext } from '../lib/context.ts';
import { buildOutputDir, readUpstream, writeJson } from '../lib/io.ts';
import { readSuccessfulEvaluation } from '../lib/run-data.ts';

export interface CategorizeOptions extends BaseOptions, LlmRunOptions {
  /** Also categorize N more times with shuffled batch order and report how much the partitions agree. */
  stability?: number;
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
  /** induce_assign: what each phase did (null: sequential, offline). */
  induceAssign: InduceAssignStats | null;
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
    const runIdOf = (itemId: string) => built.runOf.get(itemId)?.run_id ?? itemId;
    const prompts = {
      create: readFileSync(ctx.resolvePath(settings.prompts.create), 'utf8'),
      update: readFileSync(ctx.resolvePath(settings.prompts.update), 'utf8'),
      // Read only by the strategy that uses it (only then is it an input of the target).
      assign: settings.strategy === 'induce_assign' ? readFileSync(ctx.resolvePath(settings.prompts.assign), 'utf8') : '',
    };
    const lockFile = lockPath(a.name);
    const lock = readTaxonomyLock(join(ctx.workspaceRoot, lockFile), lockFile);
    const base: LockBase | null = lock ? { file: lockFile, lock, plan: planFromLock(lock, built.items, runIdOf) } : null;
    const answerer = await createStageAnswerer(ctx, settings, options);
    const label = analyzerLabel(settings);

    console.log(`categorize: ${built.items.length} summarized runs with ${label}`);
    if (settings.provider === 'offline') console.log(`  ${OFFLINE_NOTICE}`);

    const outcome = settings.provider === 'offline'
      ? offlineOutcome(answerer, built.items, base)
      : await llmOutcome(ctx, answerer, built.items, prompts, base, options.stability ?? 0, runSampleKey(built.runOf));

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
    // Locked categories keep the id the lock gives them; new ones get one derived from their name.
    const ids = lockedStableIds(outcome.categories.map((c) => c.category_name), base?.plan.lockedIds ?? new Map(), (name) => stableIds('cat', [name], sha256)[0] as string);
    const idByName = new Map(outcome.categories.map((c, i) => [c.category_name, ids[i] as string]));
    const decorated = decorateCategories(outcome.categories, built.items, built.runOf, (c) => idByName.get(c.category_name) as string);
    const totalExamples = decorated.reduce((n, c) => n + c.examples.length, 0);
    const verified = decorated.reduce((n, c) => n + c.examples.filter((e) => e.trigger_phrase_verified).length, 0);
    const inducing = settings.strategy === 'induce_assign' && settings.provider !== 'offline';
    const promptDigests = {
      create: { file: settings.prompts.create, sha256: sha256(prompts.create) },
      update: { file: settings.prompts.update, sha256: sha256(prompts.update) },
      // The sequential strategy does not use it: left out, so its output is what it was.
      ...(settings.strategy === 'induce_assign' ? { assign: { file: settings.prompts.assign, sha256: sha256(prompts.assign) } } : {}),
    };

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
          ...(inducing
            ? {
                strategy: {
                  name: settings.strategy,
                  induce_sample_size: settings.induce_sample_size,
                  assign_batch_size: settings.assign_batch_size,
                  ...(outcome.induceAssign ?? {}),
                },
              }
            : {}),
          resume_categorization_path: settings.resume_categorization_path,
          resumed_from_categories: outcome.resumedFrom?.categories ?? null,
          resumed_from_metadata: outcome.resumedFrom?.metadata ?? null,
          generated_at: null,
          analyzer: label,
          ...(settings.provider === 'offline' ? { notice: OFFLINE_NOTICE } : {}),
          mode: outcome.mode,
          mode_reason: outcome.modeReason,
          agents: a.agents,
          prompts: promptDigests,
          taxonomy_lock: base ? lockSummary(base) : null,
          // What `lock-taxonomy` records: the settings this taxonomy was built with, and per run the digest of what the categorizer saw.
          built_with: { ...stageSettings(a, 'categorize'), analyzer: label, prompts: promptDigests },
          summary_digests: Object.fromEntries(built.items.map((i) => [runIdOf(i.id), summaryDigest(i)]).sort((x, y) => ((x[0] as string) < (y[0] as string) ? -1 : 1))),
          batches: outcome.batches,
          ...(outcome.stability ? { stability: outcome.stability } : {}),
        },
        unassigned,
      });
      answerer.writeAnswers(dir);
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
    if (base && (base.plan.added.length > 0 || base.plan.changed.length > 0)) {
      console.log(`categorize: ${base.plan.added.length + base.plan.changed.length} run(s) are not in ${base.file} yet; review the output, then record it with \`npx nx run ${a.name}:lock-taxonomy\`.`);
    }
    return true;
  });
}

function lockSummary(base: LockBase) {
  return {
    file: base.file,
    categories: base.lock.categories.length,
    runs_kept: base.plan.kept.length,
    runs_added: base.plan.added,
    runs_changed: base.plan.changed,
    runs_removed: base.plan.removed,
  };
}

function offlineOutcome(answerer: StageAnswerer, items: CategorizeItem[], base: LockBase | null): Outcome {
  const answer = answerer.offline('categorize', { items }, () => offlineCategorize(items));
  const common = { unassigned: [], usage: answer.usage, costUsd: answer.costUsd, batches: [], batchLog: [], resumedFrom: null, stability: null, induceAssign: null };
  if (!base || base.plan.keep.length === 0) {
    return { ...common, categories: answer.value.categories, mode: 'offline-global', modeReason: 'the offline analyzer groups all runs at once' };
  }
  return {
    ...common,
    categories: joinLockedByMajority(base.plan.keep, base.plan.toAdd.map((i) => i.id), answer.value.categories),
    mode: 'offline-locked',
    modeReason: `${lockReason(base)}; new and changed runs join the locked category most of their offline group holds, else a new category`,
  };
}

async function llmOutcome(
  ctx: StageContext,
  answerer: StageAnswerer,
  items: CategorizeItem[],
  templates: { create: string; update: string; assign: string },
  base: LockBase | null,
  stabilityRuns: number,
  sampleKey: SampleKey,
): Promise<Outcome> {
  const s = ctx.analysis.categorize;
  const complete = answerer.complete.bind(answerer);
  const pass = choosePass(items, base, resumeOf(ctx));
  console.log(`  mode: ${pass.mode} (${pass.reason})${s.strategy === 'sequential' ? '' : `; strategy ${s.strategy}`}`);
  // Progress over the pass' batches (a repair round adds calls, not batches; misfits add some); problems are printed as they happen.
  const planned = s.strategy === 'induce_assign'
    ? planAssignCalls(pass.items.length, { initialBatchSize: s.initial_batch_size, iterativeBatchSize: s.iterative_batch_size, induceSampleSize: s.induce_sample_size, assignBatchSize: s.assign_batch_size, start: pass.start !== undefined }).totalCalls
    : batchCount(pass.items.length, pass.start ? 0 : s.initial_batch_size, s.iterative_batch_size);
  let shown = 0;
  const show = progressPrinter('categorize', planned);
  const onBatch = (b: BatchRecord) => {
    if (b.unresolved.length) console.warn(`  batch ${b.index + 1} (${b.kind}, ${b.ids.length} runs): unresolved after ${b.repairs} repair(s): ${b.unresolved.join('; ')}`);
    shown = Math.min(planned, shown + 1);
    show(shown, answerer.progressLine(0));
  };
  // batch: true sends the parallel assignment requests through the provider's batch API first; each is then a store hit.
  const sendAll: SendAll | undefined = s.batch
    ? (requests, send) => {
        const bought = answerer.prefetchBatch(requests as readonly LlmRequest[] as LlmRequest[]);
        return requests.map((r) => bought.then(() => send(r)));
      }
    : undefined;
  const common = {
    ...(sendAll ? { sendAll } : {}),
    initialBatchSize: s.initial_batch_size,
    iterativeBatchSize: s.iterative_batch_size,
    induceSampleSize: s.induce_sample_size,
    assignBatchSize: s.assign_batch_size,
    sampleKey,
    templates,
    complete,
  };
  const strip = (bs: BatchRecord[]) => bs.map(({ cached: _cached, ...rest }) => rest);

  const result = pass.items.length > 0 || !pass.start
    ? await categorizeWith(s.strategy, pass.items, { ...common, onBatch, ...(pass.start ? { start: pass.start } : {}) })
    : { categories: pass.start.categories, unassigned: [], batches: [], usage: ZERO_USAGE, costUsd: 0, paidCalls: 0, cachedCalls: 0, stats: null };
  if (result.stats) {
    const st = result.stats;
    console.log(
      `  induce_assign: ${st.sample_runs} run(s) induced, ${st.assigned_runs} assigned in parallel (${st.placed_in_parallel} placed, ${st.none_fits} none fits, ${st.unanswered} unanswered), ` +
        `${st.updated_runs} updated in ${st.misfit_waves} misfit wave(s); ${st.sequential_rounds} sequential round(s)`,
    );
  }
  let stability: unknown = null;
  if (stabilityRuns > 0) {
    const partitions = [assignmentsOf(result.categories)];
    for (let k = 1; k <= stabilityRuns; k++) {
      // Another batch order; with induce_assign also another sample (the seed orders each stratum).
      const shuffled = seededShuffle(items, `stability-${k}`);
      const again = await categorizeWith(s.strategy, shuffled, { ...common, seed: `stability-${k}` });
      partitions.push(assignmentsOf(again.categories));
    }
    const agreement = pairwiseAgreement(partitions);
    stability = { runs: stabilityRuns + 1, seeds: Array.from({ length: stabilityRuns }, (_, i) => `stability-${i + 1}`), adjusted_rand_index: agreement };
    console.log(`  stability over ${stabilityRuns + 1} batch orders: mean ARI ${agreement.mean?.toFixed(3) ?? "n/a"} (min ${agreement.min?.toFixed(3) ?? "n/a"})`);
  }
  return {
    categories: result.categories,
    unassigned: result.unassigned,
    usage: result.usage,
    costUsd: result.costUsd,
    mode: pass.mode,
    modeReason: pass.reason,
    batches: strip(result.batches),
    batchLog: result.batches,
    resumedFrom: pass.resumedFrom,
    stability,
    induceAssign: result.stats,
  };
}

/** The explicit resume file of pipeline.yaml, read when a pass needs it. */
function resumeOf(ctx: StageContext) {
  const path = ctx.analysis.categorize.resume_categorization_path;
  return path ? () => readResumeFile(ctx.resolvePath(path), path) : null;
}
