// Step 3 with a language model, second strategy: induce the taxonomy on a
// sample, then assign the other runs in parallel. Pure orchestration, like
// categorize/llm.ts: every answer comes from an injected `complete`.
//
// Flow (`categorizeInduceAssign`):
//   1. Induce: a bounded, stratified, deterministic sample of the runs (by
//      domain, agent and refinement model; within a stratum by a hash of the
//      run id) goes through the sequential create/update flow
//      (`categorizeIteratively`). With a start taxonomy (the lock, a resume
//      file) there is nothing to induce.
//   2. Assign: every other run is assigned against the frozen taxonomy, a
//      batch of `assignBatchSize` runs per request. All requests are built
//      first (`buildAssignRequests`, a plain array a provider batch API can
//      send as it is), then sent by an injectable `sendAll` (default: each
//      through `complete`, whose own concurrency limit applies). Each answer
//      names, per run, an existing category or says that none fits and
//      proposes one (name and definition); it is checked and repaired with
//      the same loop as the sequential flow (`askWithRepairs`).
//   3. Misfits: only the runs that fit nothing go through the sequential
//      updater, which may add categories but never renames or removes one.
//      While there are many, a wave updates a few of them (one per distinct
//      proposal first) and the rest are assigned again, in parallel, against
//      the grown taxonomy; after `maxWaves` waves, or when few are left, the
//      updater takes all that remain.
// Every run ends in one category or in `unassigned` with the reason.
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { ZodType } from 'zod';
import {
  categorizeIteratively,
  editableTaxonomy,
  GENERIC_STRATEGY_LABELS,
  isGenericLabel,
  positiveInt,
  renderCategoriesBlock,
  renderRunsBlock,
  repairMessage,
  repairsSuffix,
  uniqueItemIds,
  withoutRuns,
} from './llm.ts';
import type { BatchRecord, CategorizeOptions, CategorizeResult } from './llm.ts';
import type { CategorizeItem, Category, CategoryExample } from '../formats.ts';
import type { LedgerRun } from '../task-list/ledger.ts';
import type { CategorizeStrategy } from '../config.ts';
import type { Answer, Complete } from '../llm/answer.ts';
import { askWithRepairs, failureOf, repairLimit, repairRecord } from '../llm/repair.ts';
import type { RepairOutcome } from '../llm/repair.ts';
import { restrictedString } from '../llm/schema.ts';
import type { LlmRequest } from '../llm/types.ts';
import { mergeAccounting, newAccounting } from '../llm/usage.ts';
import type { Accounting } from '../llm/usage.ts';
import { normalizeName } from '../util/names.ts';
import { batchCount } from './pass.ts';
import { fillTemplate } from '../util/template.ts';

/** Misfit waves: update rounds per wave before the rest is assigned again, and the number of such waves. */
export const MISFIT_WAVES = { roundsPerWave: 2, maxWaves: 3 } as const;

// ---------------------------------------------------------------------------
// The stratified sample

/** Where an item falls for sampling: its stratum (domain, agent, refinement model) and a stable key (the run id). */
export type SampleKey = (item: CategorizeItem) => { stratum: string; key: string };

const byItemId: SampleKey = (item) => ({ stratum: '', key: item.id });

/** Strata of the induce sample: domain, agent and refinement model of the run; its run id orders it. */
export function runSampleKey(runOf: ReadonlyMap<string, Pick<LedgerRun, 'run_id' | 'domain' | 'agent' | 'refinement_model'>>): SampleKey {
  return (item) => {
    const run = runOf.get(item.id);
    return run ? { stratum: `${run.domain}\u0000${run.agent}\u0000${run.refinement_model}`, key: run.run_id } : { stratum: '', key: item.id };
  };
}

const hashOf = (seed: string, key: string) => createHash('sha256').update(`${seed}\u0000${key}`).digest('hex');

/**
 * Quotas per stratum that add up to `size` (at most the stratum sizes):
 * one per stratum first while the size allows (largest strata first), the
 * rest proportional to what each stratum has left (largest remainder; ties
 * to the stratum first in code-point order).
 */
export function stratumQuotas(sizes: ReadonlyMap<string, number>, size: number): Map<string, number> {
  const names = [...sizes.keys()].sort();
  const total = names.reduce((n, s) => n + (sizes.get(s) as number), 0);
  const want = Math.min(Math.max(0, Math.floor(size)), total);
  const quota = new Map(names.map((s) => [s, 0]));
  let left = want;
  for (const s of [...names].sort((x, y) => (sizes.get(y) as number) - (sizes.get(x) as number) || (x < y ? -1 : 1))) {
    if (left === 0) break;
    if ((sizes.get(s) as number) > 0) {
      quota.set(s, 1);
      left -= 1;
    }
  }
  const room = (s: string) => (sizes.get(s) as number) - (quota.get(s) as number);
  const roomTotal = names.reduce((n, s) => n + room(s), 0);
  if (left > 0 && roomTotal > 0) {
    const exact = names.map((s) => ({ s, x: (left * room(s)) / roomTotal }));
    let given = 0;
    for (const e of exact) {
      const k = Math.floor(e.x);
      quota.set(e.s, (quota.get(e.s) as number) + k);
      given += k;
    }
    const byRemainder = exact.filter((e) => room(e.s) > 0).sort((a, b) => b.x - Math.floor(b.x) - (a.x - Math.floor(a.x)) || (a.s < b.s ? -1 : 1));
    for (const e of byRemainder) {
      if (given === left) break;
      quota.set(e.s, (quota.get(e.s) as number) + 1);
      given += 1;
    }
  }
  return quota;
}

/**
 * A deterministic stratified sample of `size` items: the same items, keys
 * and seed give the same sample in the same order. Within a stratum items
 * are taken in the order of sha256(seed, key); the sample interleaves the
 * strata (so the first, creating, batch sees several of them). `rest` keeps
 * the input order.
 */
export function stratifiedSample(items: readonly CategorizeItem[], size: number, keyOf: SampleKey = byItemId, seed = ''): { sample: CategorizeItem[]; rest: CategorizeItem[] } {
  const strata = new Map<string, { item: CategorizeItem; order: string; key: string }[]>();
  for (const item of items) {
    const { stratum, key } = keyOf(item);
    const list = strata.get(stratum) ?? [];
    list.push({ item, order: hashOf(seed, key), key });
    strata.set(stratum, list);
  }
  for (const list of strata.values()) list.sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const quotas = stratumQuotas(new Map([...strata].map(([s, l]) => [s, l.length])), size);
  const names = [...strata.keys()].sort();
  const sample: CategorizeItem[] = [];
  for (let k = 0; ; k++) {
    let took = false;
    for (const s of names) {
      if (k < (quotas.get(s) as number)) {
        sample.push((strata.get(s) as { item: CategorizeItem }[])[k]!.item);
        took = true;
      }
    }
    if (!took) break;
  }
  const chosen = new Set(sample.map((i) => i.id));
  return { sample, rest: items.filter((i) => !chosen.has(i.id)) };
}

// ---------------------------------------------------------------------------
// The assign answer

export interface ProposedCategory {
  category_name: string;
  definition: string;
}

export interface AssignEntry {
  id: string;
  /** An existing category, exactly as listed; null when none fits. */
  category_name: string | null;
  /** When none fits: the category the run would need. */
  proposed_category: ProposedCategory | null;
  trigger_phrase: string | null;
  justification: string | null;
}

export interface AssignAnswer {
  assignments: AssignEntry[];
}

/** The assign answer; ids restricted to the batch, names to the frozen taxonomy (or null: none fits). */
export function assignAnswerSchema(batchIds: readonly string[], categoryNames: readonly string[]): ZodType<AssignAnswer> {
  return z.object({
    assignments: z.array(
      z.object({
        id: restrictedString(batchIds),
        category_name: restrictedString(categoryNames).nullable(),
        proposed_category: z.object({ category_name: z.string(), definition: z.string() }).nullable(),
        trigger_phrase: z.string().nullable(),
        justification: z.string().nullable(),
      }),
    ),
  });
}

const lenientAssign = assignAnswerSchema([], []);

export interface AssignCheck {
  problems: string[];
  /** Runs placed in an existing category, first valid answer per run, in answer order. */
  placements: { id: string; key: string; example: CategoryExample }[];
  /** Runs that fit no category, with the proposal. */
  misfits: { id: string; proposal: ProposedCategory }[];
  /** Runs without a valid answer, with the reason. */
  unplaced: { id: string; reason: string }[];
}

/** Checks an assign answer against its batch and the frozen taxonomy. */
export function checkAssignAnswer(answer: AssignAnswer, batchIds: readonly string[], taxonomy: readonly Category[]): AssignCheck {
  const inBatch = new Set(batchIds);
  const existing = new Set(taxonomy.map((c) => normalizeName(c.category_name)));
  const problems: string[] = [];
  const placements: AssignCheck['placements'] = [];
  const misfits: AssignCheck['misfits'] = [];
  const done = new Set<string>();
  const count = new Map<string, number>();
  const invalid = new Map<string, string>();
  const unknownIds: string[] = [];

  for (const a of answer.assignments) {
    if (!inBatch.has(a.id)) {
      if (!unknownIds.includes(a.id)) unknownIds.push(a.id);
      continue;
    }
    count.set(a.id, (count.get(a.id) ?? 0) + 1);
    const example: CategoryExample = { id: a.id, trigger_phrase: a.trigger_phrase ?? null, justification: a.justification ?? null };
    const named = a.category_name === null ? '' : normalizeName(a.category_name);
    const proposal = a.proposed_category ? { category_name: a.proposed_category.category_name.replace(/\s+/g, ' ').trim(), definition: a.proposed_category.definition } : null;
    let reason: string | null = null;
    if (named !== '') {
      if (existing.has(named)) {
        if (!done.has(a.id)) placements.push({ id: a.id, key: named, example });
      } else {
        reason = `assigned to the unknown category "${a.category_name}"`;
        problems.push(`Run "${a.id}" is assigned to category "${a.category_name}", which is not in the list. Use a name exactly as listed, or set category_name to null and give a proposed_category.`);
      }
    } else if (proposal === null || proposal.category_name === '') {
      reason = 'the model said no category fits but proposed none';
      problems.push(`Run "${a.id}" has no category_name and no proposed_category: name the listed category it belongs to, or propose a new one (category_name and definition).`);
    } else if (existing.has(normalizeName(proposal.category_name))) {
      // "None fits", proposing a category that is listed: it fits that one.
      if (!done.has(a.id)) placements.push({ id: a.id, key: normalizeName(proposal.category_name), example });
    } else if (isGenericLabel(proposal.category_name)) {
      reason = `proposed the generic strategy label "${proposal.category_name}"`;
      problems.push(
        `Run "${a.id}": "${proposal.category_name}" is a generic strategy label, not a mechanism. Never propose ${GENERIC_STRATEGY_LABELS.map((l) => `"${l}"`).join(', ')}: name the specific wording or mechanism that misled the agent.`,
      );
    } else if (!done.has(a.id)) {
      misfits.push({ id: a.id, proposal });
    }
    if (reason === null) done.add(a.id);
    else if (!invalid.has(a.id)) invalid.set(a.id, reason);
  }
  for (const id of unknownIds) problems.push(`"${id}" is not the id of a run in this batch: use only the run ids given above.`);
  for (const id of batchIds) {
    const n = count.get(id) ?? 0;
    if (n > 1) problems.push(`Run "${id}" appears ${n} times: answer for each run exactly once.`);
    else if (n === 0) problems.push(`Run "${id}" is missing from your answer: answer for each run exactly once.`);
  }
  const unplaced = batchIds.filter((id) => !done.has(id)).map((id) => ({ id, reason: invalid.get(id) ?? 'the model did not answer for this run' }));
  return { problems, placements, misfits, unplaced };
}

// ---------------------------------------------------------------------------
// The request list of a parallel phase

export interface AssignRequest {
  /** Position in the list (also the order in which answers are applied). */
  index: number;
  ids: string[];
  request: LlmRequest<AssignAnswer>;
}

/**
 * Every request of one assignment phase, built before any is sent: batches
 * of `batchSize` runs in item order, each against the same frozen taxonomy.
 * Independent of each other, so they may go out at once, or through a
 * provider's batch API.
 */
export function buildAssignRequests(items: readonly CategorizeItem[], taxonomy: readonly Category[], template: string, batchSize: number): AssignRequest[] {
  const size = positiveInt('assignBatchSize', batchSize);
  const categories = renderCategoriesBlock(taxonomy);
  const names = taxonomy.map((c) => c.category_name);
  const out: AssignRequest[] = [];
  for (let i = 0; i < items.length; i += size) {
    const batch = items.slice(i, i + size);
    const ids = batch.map((b) => b.id);
    out.push({
      index: out.length,
      ids,
      request: {
        step: 'categorize-assign',
        messages: [{ role: 'user', content: fillTemplate(template, { CATEGORIES: categories, RUNS: renderRunsBlock(batch) }) }],
        schema: { name: 'categorize_assign', zod: assignAnswerSchema(ids, names) },
      },
    });
  }
  return out;
}

/**
 * Sends a list of independent requests; one promise per request, in list
 * order. The default sends each through `complete` at once (the client's
 * concurrency limit applies); a provider batch engine can take its place.
 */
export type SendAll = <T>(requests: readonly LlmRequest<T>[], complete: Complete) => Promise<Answer<T>>[];

export const sendEach: SendAll = (requests, complete) => requests.map((r) => complete(r));

export interface AssignPhase {
  /** The taxonomy with the placed runs appended to their categories (no category added). */
  taxonomy: Category[];
  placed: number;
  misfits: { item: CategorizeItem; proposal: ProposedCategory | null; reason: string }[];
  records: BatchRecord[];
  /** 1 + the most repair requests of any batch (0 without requests). */
  rounds: number;
}

/** Assigns `items` against the frozen `taxonomy`: every request built first, then sent at once, each repaired on its own. */
export async function assignInParallel(
  items: readonly CategorizeItem[],
  taxonomy: readonly Category[],
  opts: { template: string; batchSize: number; complete: Complete; sendAll?: SendAll; maxRepairs: number; firstIndex: number },
  acc: Accounting,
): Promise<AssignPhase> {
  const requests = buildAssignRequests(items, taxonomy, opts.template, opts.batchSize);
  const byId = new Map(items.map((i) => [i.id, i]));
  const answers = (opts.sendAll ?? sendEach)(requests.map((r) => r.request), opts.complete);
  // Each batch keeps its own accounting, merged in list order: the totals do not depend on which answer came first.
  const accs = requests.map(() => newAccounting());
  const settled = await Promise.allSettled(
    requests.map((r, k) =>
      askWithRepairs<AssignAnswer, AssignCheck>(
        {
          step: 'categorize-assign',
          messages: r.request.messages,
          schema: r.request.schema as { name: string; zod: ZodType<AssignAnswer> },
          lenient: lenientAssign,
          check: (value) => {
            const check = checkAssignAnswer(value, r.ids, taxonomy);
            return { problems: check.problems, score: check.placements.length + check.misfits.length, check };
          },
          repairText: (problems) => repairMessage(problems, r.ids, 'Answer for each exactly once.'),
        },
        opts.complete,
        opts.maxRepairs,
        accs[k] as Accounting,
        answers[k],
      ),
    ),
  );
  for (const a of accs) mergeAccounting(acc, a);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;

  const { next, index } = editableTaxonomy(taxonomy);
  const misfits: AssignPhase['misfits'] = [];
  const records: BatchRecord[] = [];
  let placed = 0;
  let rounds = 0;
  requests.forEach((r, k) => {
    const out = (settled[k] as PromiseFulfilledResult<RepairOutcome<AssignCheck>>).value;
    rounds = Math.max(rounds, 1 + out.repairs);
    const suffix = repairsSuffix(out.repairs);
    if (out.best === null) {
      for (const id of r.ids) misfits.push({ item: byId.get(id) as CategorizeItem, proposal: null, reason: failureOf(out) });
    } else {
      for (const p of out.best.placements) next[index.get(p.key) as number]!.examples.push(p.example);
      placed += out.best.placements.length;
      for (const m of out.best.misfits) misfits.push({ item: byId.get(m.id) as CategorizeItem, proposal: m.proposal, reason: 'no category fits' });
      for (const u of out.best.unplaced) misfits.push({ item: byId.get(u.id) as CategorizeItem, proposal: null, reason: `${u.reason}${suffix}` });
    }
    records.push({
      index: opts.firstIndex + k,
      kind: 'assign',
      ids: r.ids,
      ...repairRecord(out),
    });
  });
  return { taxonomy: next, placed, misfits, records, rounds };
}

/**
 * Misfits in the order the updater takes them: round-robin over their
 * proposals (most frequent proposal first, then by name), so that the first
 * update batches create a category for as many distinct proposals as
 * possible; runs without a proposal last, in their order.
 */
export function misfitOrder<M extends { item: CategorizeItem; proposal: ProposedCategory | null }>(misfits: readonly M[]): M[] {
  const groups = new Map<string, M[]>();
  const loose: M[] = [];
  for (const m of misfits) {
    if (!m.proposal) {
      loose.push(m);
      continue;
    }
    const key = normalizeName(m.proposal.category_name);
    groups.set(key, [...(groups.get(key) ?? []), m]);
  }
  const ordered = [...groups].sort((a, b) => b[1].length - a[1].length || (a[0] < b[0] ? -1 : 1)).map(([, g]) => g);
  const out: M[] = [];
  for (let k = 0; out.length < misfits.length - loose.length; k++) for (const g of ordered) if (k < g.length) out.push(g[k] as M);
  return [...out, ...loose];
}

// ---------------------------------------------------------------------------
// The strategy

export interface InduceAssignOptions extends CategorizeOptions {
  templates: { create: string; update: string; assign: string };
  /** Runs the taxonomy is induced from (sequentially). */
  induceSampleSize: number;
  /** Runs per assignment request. */
  assignBatchSize: number;
  /** Stratum and stable key of an item (default: one stratum, the item id). */
  sampleKey?: SampleKey;
  /** Seed of the sample's order (the stability passes use their own). */
  seed?: string;
  /** Sends the requests of an assignment phase (default: each through `complete`). */
  sendAll?: SendAll;
  misfitWaves?: { roundsPerWave: number; maxWaves: number };
}

export interface InduceAssignStats {
  /** Runs the taxonomy was induced from (0 with a start taxonomy). */
  sample_runs: number;
  /** Runs sent to the first assignment phase. */
  assigned_runs: number;
  /** Of those, placed in an existing category by that phase. */
  placed_in_parallel: number;
  /** Of those, answered "none fits" (with a proposal). */
  none_fits: number;
  /** Of those, without a valid answer after repairs (sent to the updater too). */
  unanswered: number;
  /** Waves of misfits: a few updated, the rest assigned again. */
  misfit_waves: number;
  /** Runs that went through the sequential updater after the assignment. */
  updated_runs: number;
  /** Requests whose content depends on an earlier answer, in sequence (a parallel phase counts as 1 + its most repairs). */
  sequential_rounds: number;
}

export interface InduceAssignResult extends CategorizeResult {
  stats: InduceAssignStats;
}

/** Rounds of a sequential result: each batch and each of its repairs. */
export function sequentialRounds(batches: readonly BatchRecord[]): number {
  return batches.reduce((n, b) => n + 1 + b.repairs, 0);
}

export async function categorizeInduceAssign(items: readonly CategorizeItem[], opts: InduceAssignOptions): Promise<InduceAssignResult> {
  const sampleSize = positiveInt('induceSampleSize', opts.induceSampleSize);
  positiveInt('assignBatchSize', opts.assignBatchSize);
  const maxRepairs = repairLimit(opts.maxRepairs);
  const waves = opts.misfitWaves ?? MISFIT_WAVES;
  const ids = uniqueItemIds(items);
  const acc = newAccounting();
  const records: BatchRecord[] = [];
  const unassigned: { id: string; reason: string }[] = [];
  const stats: InduceAssignStats = { sample_runs: 0, assigned_runs: 0, placed_in_parallel: 0, none_fits: 0, unanswered: 0, misfit_waves: 0, updated_runs: 0, sequential_rounds: 0 };
  const seqOpts = { initialBatchSize: opts.initialBatchSize, iterativeBatchSize: opts.iterativeBatchSize, templates: opts.templates, complete: opts.complete, maxRepairs };

  /** Runs a sequential pass (its batches renumbered after the ones so far) and takes its taxonomy. */
  const sequential = async (batchItems: readonly CategorizeItem[], start: Category[] | null): Promise<Category[]> => {
    const base = records.length;
    const r = await categorizeIteratively(batchItems, {
      ...seqOpts,
      ...(start ? { start: { categories: start } } : {}),
      onBatch: (b, cats) => {
        const rec = { ...b, index: base + b.index };
        records.push(rec);
        opts.onBatch?.(rec, cats);
      },
    });
    mergeAccounting(acc, r);
    unassigned.push(...r.unassigned);
    stats.sequential_rounds += sequentialRounds(r.batches);
    return r.categories;
  };
  const parallel = async (batchItems: readonly CategorizeItem[], frozen: Category[]): Promise<AssignPhase> => {
    const phase = await assignInParallel(batchItems, frozen, { template: opts.templates.assign, batchSize: opts.assignBatchSize, complete: opts.complete, ...(opts.sendAll ? { sendAll: opts.sendAll } : {}), maxRepairs, firstIndex: records.length }, acc);
    for (const rec of phase.records) {
      records.push(rec);
      opts.onBatch?.(rec, phase.taxonomy);
    }
    stats.sequential_rounds += phase.rounds;
    return phase;
  };
  const finish = (categories: Category[]): InduceAssignResult => ({ categories, unassigned, batches: records, ...acc, stats });

  // 1. Induce (or start from the given taxonomy, without the runs being categorized again).
  let taxonomy: Category[];
  let rest: CategorizeItem[];
  if (opts.start && opts.start.categories.length > 0) {
    taxonomy = withoutRuns(opts.start.categories, ids);
    rest = [...items];
  } else {
    if (items.length <= sampleSize) {
      // Everything fits in the sample: exactly the sequential flow, in item order.
      stats.sample_runs = items.length;
      return finish(await sequential(items, null));
    }
    const { sample, rest: others } = stratifiedSample(items, sampleSize, opts.sampleKey, opts.seed ?? '');
    stats.sample_runs = sample.length;
    taxonomy = await sequential(sample, null);
    rest = others;
  }
  if (rest.length === 0) return finish(taxonomy);
  if (taxonomy.length === 0) {
    // Nothing to assign to (the induction failed): the updater creates from scratch.
    stats.updated_runs = rest.length;
    return finish(await sequential(rest, null));
  }

  // 2. Assign every other run against the frozen taxonomy.
  stats.assigned_runs = rest.length;
  const first = await parallel(rest, taxonomy);
  taxonomy = first.taxonomy;
  stats.placed_in_parallel = first.placed;
  stats.none_fits = first.misfits.filter((m) => m.proposal !== null).length;
  stats.unanswered = first.misfits.length - stats.none_fits;
  let misfits = first.misfits;

  // 3. The misfits through the updater: a few per wave while many remain, then all.
  const perWave = waves.roundsPerWave * opts.iterativeBatchSize;
  while (misfits.length > 0) {
    const ordered = misfitOrder(misfits);
    if (ordered.length <= perWave || stats.misfit_waves >= waves.maxWaves) {
      stats.updated_runs += ordered.length;
      taxonomy = await sequential(ordered.map((m) => m.item), taxonomy);
      break;
    }
    stats.misfit_waves += 1;
    const head = ordered.slice(0, perWave);
    stats.updated_runs += head.length;
    taxonomy = await sequential(head.map((m) => m.item), taxonomy);
    const again = await parallel(ordered.slice(perWave).map((m) => m.item), taxonomy);
    taxonomy = again.taxonomy;
    misfits = again.misfits;
  }
  return finish(taxonomy);
}

/**
 * One categorization pass with the configured strategy: `sequential` is
 * `categorizeIteratively` (the induce/assign options are not read; stats
 * null), `induce_assign` is `categorizeInduceAssign`.
 */
export async function categorizeWith(strategy: CategorizeStrategy, items: readonly CategorizeItem[], opts: InduceAssignOptions): Promise<CategorizeResult & { stats: InduceAssignStats | null }> {
  if (strategy === 'induce_assign') return categorizeInduceAssign(items, opts);
  const { templates, induceSampleSize: _s, assignBatchSize: _b, sampleKey: _k, seed: _seed, sendAll: _send, misfitWaves: _w, ...rest } = opts;
  return { ...(await categorizeIteratively(items, { ...rest, templates: { create: templates.create, update: templates.update } })), stats: null };
}

/**
 * Calls of the induce-then-assign strategy over n runs, before any answer is
 * known: the induction's batches (sequential), the first assignment phase's
 * requests (parallel). Misfits add update batches and re-assignments that
 * only the answers tell, and repairs add calls: these are lower bounds.
 * `start`: there is a taxonomy already (lock, resume file): nothing to induce.
 */
export function planAssignCalls(
  n: number,
  s: { initialBatchSize: number; iterativeBatchSize: number; induceSampleSize: number; assignBatchSize: number; start: boolean },
): { sequentialCalls: number; parallelCalls: number; totalCalls: number; sequentialRounds: number } {
  if (n === 0) return { sequentialCalls: 0, parallelCalls: 0, totalCalls: 0, sequentialRounds: 0 };
  if (!s.start && n <= s.induceSampleSize) {
    const b = batchCount(n, s.initialBatchSize, s.iterativeBatchSize);
    return { sequentialCalls: b, parallelCalls: 0, totalCalls: b, sequentialRounds: b };
  }
  const sample = s.start ? 0 : s.induceSampleSize;
  const sequentialCalls = batchCount(sample, s.initialBatchSize, s.iterativeBatchSize);
  const parallelCalls = Math.ceil((n - sample) / s.assignBatchSize);
  return { sequentialCalls, parallelCalls, totalCalls: sequentialCalls + parallelCalls, sequentialRounds: sequentialCalls + 1 };
}
