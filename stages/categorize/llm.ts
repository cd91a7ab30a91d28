// Step 3 with a language model: iterative categorization that accounts for
// every run. Pure orchestration: no file access; every model answer comes
// from an injected `complete` (the store-backed LLM client), so a batch whose
// request was answered before costs nothing when the stage runs again.
//
// Flow: the first batch creates the taxonomy, each later batch is assigned to
// it or extends it. The request of batch k holds the taxonomy after batch
// k-1, so a re-run after a crash replays batches 1..m from the store and pays
// from m+1 on. Each answer is checked against its batch (ids of the batch
// only, names that exist or are created in the same answer, every run exactly
// once, no generic strategy labels as names); problems are stated to the
// model in a follow-up request, a bounded number of times, and whatever is
// still wrong afterwards is kept out of the taxonomy and reported per run.
import { z } from 'zod';
import type { ZodType } from 'zod';
import type { CategorizeItem, Category, CategoryExample } from '../formats.ts';
import type { Complete } from '../llm/answer.ts';
import { askWithRepairs, failureOf, problemsMessage, repairCount, repairLimit, repairRecord } from '../llm/repair.ts';
import type { RepairRecord } from '../llm/repair.ts';
import { restrictedString } from '../llm/schema.ts';
import { newAccounting } from '../llm/usage.ts';
import type { Accounting } from '../llm/usage.ts';
import { normalizeName } from '../util/names.ts';
import { fillTemplate } from '../util/template.ts';

export type { Complete } from '../llm/answer.ts';
export { restrictedString } from '../llm/schema.ts';

// ---------------------------------------------------------------------------
// Names

/** The strategy labels of the elicitation pipeline: never acceptable as category names. */
export const GENERIC_STRATEGY_LABELS: readonly string[] = [
  'Underspecification',
  'Delegation of Control',
  'Goal Conflict',
  'Threats to Model Autonomy',
];

const GENERIC_KEYS = new Set(GENERIC_STRATEGY_LABELS.map((l) => genericKey(l)));

function genericKey(name: string): string {
  return normalizeName(name.replace(/[_-]+/g, ' ')).replace(/^["'`]+|["'`.]+$/g, '');
}

/** True for a generic strategy label, however it is spelled ("goal_conflict", " Goal Conflict "). */
export function isGenericLabel(name: string): boolean {
  return GENERIC_KEYS.has(genericKey(name));
}

// ---------------------------------------------------------------------------
// Schemas

export interface ExampleAnswer {
  id: string;
  trigger_phrase: string | null;
  justification: string | null;
}

export interface NewCategoryAnswer {
  category_name: string;
  definition: string;
  examples: ExampleAnswer[];
}

export interface CreateAnswer {
  categories: NewCategoryAnswer[];
}

export interface AssignmentAnswer {
  id: string;
  category_name: string;
  trigger_phrase: string | null;
  justification: string | null;
}

export interface UpdateAnswer {
  assignments: AssignmentAnswer[];
  new_categories: NewCategoryAnswer[] | null;
}

function exampleSchema(ids: readonly string[]) {
  return z.object({
    id: restrictedString(ids),
    trigger_phrase: z.string().nullable(),
    justification: z.string().nullable(),
  });
}

function newCategorySchema(ids: readonly string[]) {
  return z.object({
    category_name: z.string(),
    definition: z.string(),
    examples: z.array(exampleSchema(ids)),
  });
}

/** The create answer; example ids restricted to the batch (pass [] for no restriction). */
export function createAnswerSchema(batchIds: readonly string[]): ZodType<CreateAnswer> {
  return z.object({ categories: z.array(newCategorySchema(batchIds)) });
}

/**
 * The update answer; ids restricted to the batch, assignment names to the
 * current taxonomy. A new category is proposed only through `new_categories`.
 */
export function updateAnswerSchema(batchIds: readonly string[], categoryNames: readonly string[]): ZodType<UpdateAnswer> {
  return z.object({
    assignments: z.array(
      z.object({
        id: restrictedString(batchIds),
        category_name: restrictedString(categoryNames),
        trigger_phrase: z.string().nullable(),
        justification: z.string().nullable(),
      }),
    ),
    new_categories: z.array(newCategorySchema(batchIds)).nullable(),
  });
}

// ---------------------------------------------------------------------------
// Prompt blocks

/** The runs of one batch as shown to the model. */
export function renderRunsBlock(items: readonly CategorizeItem[]): string {
  return items
    .map((item, i) =>
      [
        `### Run ${i + 1}`,
        `Run id: ${item.id}`,
        `Original instruction: ${item.original_instruction}`,
        `Perturbed instruction: ${item.perturbed_instruction}`,
        `Analysis: ${item.summary}`,
      ].join('\n'),
    )
    .join('\n\n');
}

/** The taxonomy as the update prompt shows it: a JSON array of {name, definition}, indent 4. */
export function renderCategoriesBlock(taxonomy: readonly Category[]): string {
  return JSON.stringify(
    taxonomy.map((c) => ({ name: c.category_name, definition: c.definition })),
    null,
    4,
  );
}

// ---------------------------------------------------------------------------
// Integrity of one batch answer

interface Placement {
  id: string;
  /** Normalized name of the target category. */
  key: string;
  example: CategoryExample;
}

export interface BatchCheck {
  /** Each problem as it is stated to the model. */
  problems: string[];
  /** Valid placements, first one per run, in answer order. */
  placements: Placement[];
  /** New categories the answer creates (name clashes with the taxonomy merged away), in answer order. */
  created: { key: string; category_name: string; definition: string }[];
  /** Batch runs without a valid placement, with the reason. */
  unassigned: { id: string; reason: string }[];
}

/**
 * Checks an answer (a create answer is passed as new_categories only) against
 * the batch and the taxonomy before it.
 */
export function checkBatchAnswer(answer: UpdateAnswer, batchIds: readonly string[], taxonomy: readonly Category[]): BatchCheck {
  const inBatch = new Set(batchIds);
  const existing = new Map<string, string>();
  for (const c of taxonomy) if (!existing.has(normalizeName(c.category_name))) existing.set(normalizeName(c.category_name), c.category_name);

  const problems: string[] = [];
  const created = new Map<string, { key: string; category_name: string; definition: string }>();
  /** Names of new categories that cannot be used, with the reason. */
  const rejected = new Map<string, string>();
  const newCategories = answer.new_categories ?? [];

  for (const nc of newCategories) {
    const name = nc.category_name.replace(/\s+/g, ' ').trim();
    const key = normalizeName(name);
    if (key === '') {
      if (!rejected.has(key)) problems.push('A new category has an empty category_name: give every category a specific name.');
      rejected.set(key, 'its category had an empty name');
    } else if (existing.has(key) || created.has(key)) {
      // The same category again: merged, not duplicated.
      const c = created.get(key);
      if (c && c.definition.trim() === '' && nc.definition.trim() !== '') c.definition = nc.definition;
    } else if (isGenericLabel(name)) {
      if (!rejected.has(key)) {
        problems.push(
          `"${name}" is a generic strategy label, not a mechanism. Never use ${GENERIC_STRATEGY_LABELS.map((l) => `"${l}"`).join(', ')} as category names: name the specific wording or mechanism that misled the agent.`,
        );
      }
      rejected.set(key, `its category was named with the generic strategy label "${name}"`);
    } else {
      created.set(key, { key, category_name: name, definition: nc.definition });
    }
  }

  const placements: Placement[] = [];
  const placedIds = new Set<string>();
  const where = new Map<string, string[]>();
  const invalid = new Map<string, string>();
  const unknownIds: string[] = [];

  const record = (id: string, name: string, entry: { trigger_phrase: string | null; justification: string | null }, viaAssignment: boolean) => {
    if (!inBatch.has(id)) {
      if (!unknownIds.includes(id)) unknownIds.push(id);
      return;
    }
    const list = where.get(id) ?? [];
    list.push(name);
    where.set(id, list);
    const key = normalizeName(name);
    const valid = existing.has(key) || created.has(key);
    if (!valid) {
      let reason: string;
      if (rejected.has(key)) reason = `placed only in a rejected category (${rejected.get(key)})`;
      else if (viaAssignment && isGenericLabel(name)) reason = `assigned to the generic strategy label "${name}"`;
      else reason = `assigned to the unknown category "${name}"`;
      if (!invalid.has(id)) invalid.set(id, reason);
      if (!rejected.has(key)) {
        problems.push(
          `Run "${id}" is assigned to category "${name}", which is neither in the current list nor among your new_categories. Use an existing name exactly as listed, or propose the category in new_categories.`,
        );
      }
      return;
    }
    if (placedIds.has(id)) return;
    placedIds.add(id);
    placements.push({ id, key, example: { id, trigger_phrase: entry.trigger_phrase ?? null, justification: entry.justification ?? null } });
  };

  for (const a of answer.assignments) record(a.id, a.category_name, a, true);
  for (const nc of newCategories) for (const e of nc.examples) record(e.id, nc.category_name, e, false);

  for (const id of unknownIds) {
    problems.push(`"${id}" is not the id of a run in this batch: use only the run ids given above.`);
  }
  for (const id of batchIds) {
    const list = where.get(id) ?? [];
    if (list.length > 1) {
      problems.push(`Run "${id}" appears ${list.length} times (in ${list.map((n) => `"${n}"`).join(', ')}): place it in exactly one category.`);
    } else if (list.length === 0) {
      problems.push(`Run "${id}" is missing from your answer: place it in exactly one category.`);
    }
  }

  const unassigned = batchIds
    .filter((id) => !placedIds.has(id))
    .map((id) => ({ id, reason: invalid.get(id) ?? 'the model did not place this run in any category' }));

  // Only categories that receive a run are created.
  const used = new Set(placements.map((p) => p.key));
  return { problems, placements, created: [...created.values()].filter((c) => used.has(c.key)), unassigned };
}

/** A copy of the taxonomy to append to, and the position of each normalized name (the first category of that name). */
export function editableTaxonomy(taxonomy: readonly Category[]): { next: Category[]; index: Map<string, number> } {
  const next = taxonomy.map((c) => ({ ...c, examples: [...c.examples] }));
  const index = new Map<string, number>();
  next.forEach((c, i) => {
    const key = normalizeName(c.category_name);
    if (!index.has(key)) index.set(key, i);
  });
  return { next, index };
}

/** The taxonomy after a checked answer: placements appended, new categories added at the end. */
export function applyBatch(taxonomy: readonly Category[], check: BatchCheck): Category[] {
  const { next, index } = editableTaxonomy(taxonomy);
  for (const c of check.created) {
    if (index.has(c.key)) continue;
    index.set(c.key, next.length);
    next.push({ category_name: c.category_name, definition: c.definition, examples: [] });
  }
  for (const p of check.placements) next[index.get(p.key) as number]!.examples.push(p.example);
  return next;
}

/** The follow-up message that states each problem of a batch answer; `rule` says how often each run must appear. */
export function repairMessage(problems: readonly string[], batchIds: readonly string[], rule = 'Each must appear exactly once.'): string {
  return problemsMessage(problems, [
    `The runs of this batch are: ${batchIds.map((id) => `"${id}"`).join(', ')}. ${rule}`,
    'Reply with the corrected, complete JSON answer for the whole batch, and nothing else.',
  ]);
}

// ---------------------------------------------------------------------------
// Iterative categorization

export interface BatchRecord extends RepairRecord {
  /** 0-based position of the batch. */
  index: number;
  /** create / update: the sequential flow; assign: one request of the parallel assignment (categorize/assign.ts). */
  kind: 'create' | 'update' | 'assign';
  ids: string[];
}

export interface CategorizeOptions {
  initialBatchSize: number;
  iterativeBatchSize: number;
  /** Prompt templates: create has {RUNS}, update has {CATEGORIES} and {RUNS}. */
  templates: { create: string; update: string };
  complete: Complete;
  /** Resume / incremental: every item goes as an update batch against this taxonomy. */
  start?: { categories: Category[] };
  /** Follow-up requests per batch that state problems (default 2). */
  maxRepairs?: number;
  onBatch?: (batch: BatchRecord, categories: readonly Category[]) => void;
}

export interface CategorizeResult extends Accounting {
  categories: Category[];
  /** Runs that are in no category, with the reason. Together with the categories: every item. */
  unassigned: { id: string; reason: string }[];
  batches: BatchRecord[];
}

const lenientCreate = createAnswerSchema([]);
const lenientUpdate = updateAnswerSchema([], []);

/** Splits items into batches: the first of `first` items, the rest of `rest`. */
export function planBatches<T>(items: readonly T[], first: number, rest: number): T[][] {
  const out: T[][] = [];
  let i = 0;
  if (items.length > 0 && first > 0) {
    out.push(items.slice(0, first));
    i = first;
  }
  for (; i < items.length; i += rest) out.push(items.slice(i, i + rest));
  return out;
}

export function positiveInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
  return v;
}

/** The ids of the items; two items with one id are an error (ids must be unambiguous). */
export function uniqueItemIds(items: readonly CategorizeItem[]): Set<string> {
  const ids = new Set<string>();
  for (const item of items) {
    if (ids.has(item.id)) throw new Error(`categorize: two items share the id "${item.id}"; ids must be unambiguous`);
    ids.add(item.id);
  }
  return ids;
}

/** A start taxonomy with the runs being (re)categorized taken out, so none is placed twice. */
export function withoutRuns(categories: readonly Category[], ids: ReadonlySet<string>): Category[] {
  return categories.map((c) => ({
    category_name: c.category_name,
    definition: c.definition,
    examples: c.examples.filter((e) => !ids.has(e.id)).map((e) => ({ id: e.id, trigger_phrase: e.trigger_phrase ?? null, justification: e.justification ?? null })),
  }));
}

export async function categorizeIteratively(items: readonly CategorizeItem[], opts: CategorizeOptions): Promise<CategorizeResult> {
  const initial = positiveInt('initialBatchSize', opts.initialBatchSize);
  const iterative = positiveInt('iterativeBatchSize', opts.iterativeBatchSize);
  const maxRepairs = repairLimit(opts.maxRepairs);
  const ids = uniqueItemIds(items);
  let taxonomy: Category[] = withoutRuns(opts.start?.categories ?? [], ids);
  const resuming = taxonomy.length > 0;
  const batches = planBatches(items, resuming ? 0 : initial, iterative);

  const acc = newAccounting();
  const unassigned: { id: string; reason: string }[] = [];
  const records: BatchRecord[] = [];

  for (const [index, batch] of batches.entries()) {
    // A batch creates while there is nothing to assign to (first batch, or after a failed first batch).
    const kind: 'create' | 'update' = taxonomy.length === 0 ? 'create' : 'update';
    const out = await runBatch(kind, batch, taxonomy, opts, maxRepairs, acc);
    taxonomy = out.taxonomy;
    unassigned.push(...out.unassigned);
    const rec: BatchRecord = { index, kind, ids: batch.map((b) => b.id), ...out.record };
    records.push(rec);
    opts.onBatch?.(rec, taxonomy);
  }

  return { categories: taxonomy, unassigned, batches: records, ...acc };
}

async function runBatch(
  kind: 'create' | 'update',
  batch: readonly CategorizeItem[],
  taxonomy: Category[],
  opts: CategorizeOptions,
  maxRepairs: number,
  acc: Accounting,
): Promise<{ taxonomy: Category[]; unassigned: { id: string; reason: string }[]; record: RepairRecord }> {
  const ids = batch.map((b) => b.id);
  const runs = renderRunsBlock(batch);
  const prompt =
    kind === 'create'
      ? fillTemplate(opts.templates.create, { RUNS: runs })
      : fillTemplate(opts.templates.update, { CATEGORIES: renderCategoriesBlock(taxonomy), RUNS: runs });
  const schema =
    kind === 'create'
      ? { name: 'categorize_create', zod: createAnswerSchema(ids) as ZodType<CreateAnswer | UpdateAnswer> }
      : { name: 'categorize_update', zod: updateAnswerSchema(ids, taxonomy.map((c) => c.category_name)) as ZodType<CreateAnswer | UpdateAnswer> };
  const asUpdate = (v: CreateAnswer | UpdateAnswer): UpdateAnswer =>
    'categories' in v ? { assignments: [], new_categories: v.categories } : { assignments: v.assignments, new_categories: v.new_categories };

  const out = await askWithRepairs<CreateAnswer | UpdateAnswer, BatchCheck>(
    {
      step: `categorize-${kind}`,
      messages: [{ role: 'user', content: prompt }],
      schema,
      lenient: kind === 'create' ? lenientCreate : lenientUpdate,
      check: (value) => {
        const check = checkBatchAnswer(asUpdate(value), ids, taxonomy);
        return { problems: check.problems, score: check.placements.length, check };
      },
      repairText: (problems) => repairMessage(problems, ids),
    },
    opts.complete,
    maxRepairs,
    acc,
  );

  const record = repairRecord(out);
  if (out.best === null) return { taxonomy, unassigned: ids.map((id) => ({ id, reason: failureOf(out) })), record };
  const afterRepairs = repairsSuffix(out.repairs);
  return {
    taxonomy: applyBatch(taxonomy, out.best),
    unassigned: out.best.unassigned.map((u) => ({ id: u.id, reason: `${u.reason}${afterRepairs}` })),
    record,
  };
}

/** " (still after N repair requests)", or '' without repairs: appended to the reason a run is left out. */
export function repairsSuffix(repairs: number): string {
  return repairs > 0 ? ` (still after ${repairCount(repairs)})` : '';
}
