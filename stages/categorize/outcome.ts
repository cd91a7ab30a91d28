// Step 3: the categorizer's outcome, offline or with an LLM. Offline, the
// lexical analyzer groups every run at once (against a lock: new runs join
// the locked category most of their group holds). With an LLM, iterative
// batches (create, then update) through the response store, with referential
// integrity repaired by re-asking; with `strategy: induce_assign`, those
// batches only on a stratified sample, the other runs assigned in parallel
// and the misfits updated (categorize/assign.ts). `--stability N` categorizes
// N more times in other orders and reports how much the partitions agree.
import type { LlmTools } from '../stage-context.ts';
import { assignmentsOf, pairwiseAgreement, seededShuffle } from '../agreement.ts';
import { joinLockedByMajority } from './items.ts';
import type { BatchRecord } from './llm.ts';
import { categorizeWith, planAssignCalls } from './assign.ts';
import type { InduceAssignStats, SampleKey, SendAll } from './assign.ts';
import { batchCount, choosePass, lockBuilderNotice, lockReason, readResumeFile, withRuns } from './pass.ts';
import { lockBuilder } from './taxonomy-lock.ts';
import type { LockBase } from './pass.ts';
import type { Category, CategorizeItem } from '../formats.ts';
import type { LlmRequest, Usage } from '../llm/types.ts';
import { ZERO_USAGE } from '../llm/usage.ts';
import { offlineCategorize } from '../offline/categorize.ts';
import { collectGarbage } from '../util/memory.ts';
import { plural } from '../util/words.ts';

export interface CategorizeRunOptions {
  /** Also categorize N more times with shuffled batch order and report how much the partitions agree. */
  stability?: number;
}

export interface Templates {
  create: string;
  update: string;
  assign: string;
}

export interface Outcome {
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

type Tools = LlmTools<CategorizeRunOptions>;

/** The offline analyzer's mode against a lock (shared with the plan, so both say what runs). */
export function offlineMode(base: LockBase | null): { mode: 'offline-global' | 'offline-locked'; reason: string } {
  if (!base) return { mode: 'offline-global', reason: 'the offline analyzer groups all runs at once; no taxonomy lock' };
  if (base.plan.keep.length === 0) {
    return {
      mode: 'offline-global',
      reason: `the offline analyzer groups all runs at once: no run of ${base.file} (built by ${lockBuilder(base.lock)}) has the summary it was locked with, so no locked category has a run to join`,
    };
  }
  return {
    mode: 'offline-locked',
    reason: `${lockReason(base, OFFLINE)}; new and changed runs join the locked category most of their offline group holds, else a new category`,
  };
}

const OFFLINE = { provider: 'offline', model: '' };

export function offlineOutcome(t: Tools, items: CategorizeItem[], base: LockBase | null): Outcome {
  const answer = t.answerer.offline('categorize', { items }, () => {
    const categories = offlineCategorize(items);
    // The analyzer's working data (every run's analysis and vector) is dropped: collected before the answer is written out.
    collectGarbage();
    return categories;
  });
  const common = { unassigned: [], usage: answer.usage, costUsd: answer.costUsd, batches: [], batchLog: [], resumedFrom: null, stability: null, induceAssign: null };
  const { mode, reason } = offlineMode(base);
  const categories = mode === 'offline-locked' && base ? joinLockedByMajority(base.plan.keep, base.plan.toAdd.map((i) => i.id), answer.value.categories) : answer.value.categories;
  return { ...common, categories, mode, modeReason: reason };
}

export async function llmOutcome(t: Tools, items: CategorizeItem[], templates: Templates, base: LockBase | null, sampleKey: SampleKey): Promise<Outcome> {
  const s = t.ctx.analysis.categorize;
  const pass = choosePass(items, base, resumeOf(t), s);
  const notice = lockBuilderNotice(base, s, t.label);
  if (notice) console.log(`categorize: ${notice}`);
  console.log(`  mode: ${pass.mode} (${pass.reason})${s.strategy === 'sequential' ? '' : `; strategy ${s.strategy}`}`);
  const common = strategyOptions(t, templates, sampleKey);
  const result = pass.items.length > 0 || !pass.start
    ? await categorizeWith(s.strategy, pass.items, { ...common, onBatch: batchProgress(t, pass), ...(pass.start ? { start: pass.start } : {}) })
    : { categories: pass.start.categories, unassigned: [], batches: [], usage: ZERO_USAGE, costUsd: 0, paidCalls: 0, cachedCalls: 0, stats: null };
  if (result.stats) printInduceAssign(result.stats);
  const stabilityRuns = t.options.stability ?? 0;
  const stability = stabilityRuns > 0 ? await stabilityOf(t, items, result, common, stabilityRuns) : null;
  return {
    categories: withRuns(result.categories),
    unassigned: result.unassigned,
    usage: result.usage,
    costUsd: result.costUsd,
    mode: pass.mode,
    modeReason: pass.reason,
    batches: result.batches.map(({ cached: _cached, ...rest }) => rest),
    batchLog: result.batches,
    resumedFrom: pass.resumedFrom,
    stability,
    induceAssign: result.stats,
  };
}

/** What every categorizeWith call of this run shares: batch sizes, templates, the answerer and batch mode. */
function strategyOptions(t: Tools, templates: Templates, sampleKey: SampleKey) {
  const s = t.ctx.analysis.categorize;
  // batch: true sends the parallel assignment requests through the provider's batch API first; each is then a store hit.
  const sendAll: SendAll | undefined = s.batch
    ? (requests, send) => {
        const bought = t.answerer.prefetchBatch(requests as readonly LlmRequest[] as LlmRequest[]);
        return requests.map((r) => bought.then(() => send(r)));
      }
    : undefined;
  return {
    ...(sendAll ? { sendAll } : {}),
    initialBatchSize: s.initial_batch_size,
    iterativeBatchSize: s.iterative_batch_size,
    induceSampleSize: s.induce_sample_size,
    assignBatchSize: s.assign_batch_size,
    sampleKey,
    templates,
    complete: t.answerer.complete.bind(t.answerer),
  };
}

/**
 * Progress over the pass' batches (a repair round adds calls, not batches;
 * misfits add some); problems are printed as they happen.
 */
function batchProgress(t: Tools, pass: ReturnType<typeof choosePass>): (b: BatchRecord) => void {
  const s = t.ctx.analysis.categorize;
  const planned = s.strategy === 'induce_assign'
    ? planAssignCalls(pass.items.length, { initialBatchSize: s.initial_batch_size, iterativeBatchSize: s.iterative_batch_size, induceSampleSize: s.induce_sample_size, assignBatchSize: s.assign_batch_size, start: pass.start !== undefined }).totalCalls
    : batchCount(pass.items.length, pass.start ? 0 : s.initial_batch_size, s.iterative_batch_size);
  let shown = 0;
  // Batches done against those planned; the counters count calls (a repair is a call, not a batch).
  const show = t.progress(planned, 'batches');
  return (b) => {
    if (b.unresolved.length) console.warn(`  batch ${b.index + 1} (${b.kind}, ${b.ids.length} runs): unresolved after ${plural(b.repairs, 'repair', 'repairs')}: ${b.unresolved.join('; ')}`);
    shown = Math.min(planned, shown + 1);
    show(shown, `calls: ${t.answerer.progressLine(0)}`);
  };
}

function printInduceAssign(st: InduceAssignStats): void {
  console.log(
    `  induce_assign: ${plural(st.sample_runs, 'run', 'runs')} induced, ${st.assigned_runs} assigned in parallel (${st.placed_in_parallel} placed, ${st.none_fits} none fits, ${st.unanswered} unanswered), ` +
      `${st.updated_runs} updated in ${plural(st.misfit_waves, 'misfit wave', 'misfit waves')}; ${plural(st.sequential_rounds, 'sequential round', 'sequential rounds')}`,
  );
}

/** The partition again in `runs` other batch orders, and how much the partitions agree (adjusted Rand index). */
async function stabilityOf(t: Tools, items: CategorizeItem[], first: { categories: Category[] }, common: ReturnType<typeof strategyOptions>, runs: number) {
  const strategy = t.ctx.analysis.categorize.strategy;
  const partitions = [assignmentsOf(first.categories)];
  for (let k = 1; k <= runs; k++) {
    // Another batch order; with induce_assign also another sample (the seed orders each stratum).
    const shuffled = seededShuffle(items, `stability-${k}`);
    const again = await categorizeWith(strategy, shuffled, { ...common, seed: `stability-${k}` });
    partitions.push(assignmentsOf(again.categories));
  }
  const agreement = pairwiseAgreement(partitions);
  console.log(`  stability over ${runs + 1} batch orders: mean ARI ${agreement.mean?.toFixed(3) ?? "n/a"} (min ${agreement.min?.toFixed(3) ?? "n/a"})`);
  return { runs: runs + 1, seeds: Array.from({ length: runs }, (_, i) => `stability-${i + 1}`), adjusted_rand_index: agreement };
}

/** The explicit resume file of pipeline.yaml, read when a pass needs it. */
export function resumeOf(t: Pick<Tools, 'ctx'>) {
  const path = t.ctx.analysis.categorize.resume_categorization_path;
  return path ? () => readResumeFile(t.ctx.resolvePath(path), path) : null;
}
