// What one categorization pass sends and what it builds on: the committed
// taxonomy lock, else an explicit resume file (the reference's
// resume_categorization_path), else nothing (from scratch). Shared by the
// categorize target and the plan, so the plan counts what the run will do.
import type { Category, CategorizeItem } from '../formats.ts';
import type { LockPlan, TaxonomyLock } from './taxonomy-lock.ts';
import { lockBuilder, sameBuilder } from './taxonomy-lock.ts';
import { plural } from '../util/words.ts';
import { readJsonFileSync } from '../util/fs.ts';

/** The committed lock an analysis builds on, with how the current runs relate to it. */
export interface LockBase {
  file: string;
  lock: TaxonomyLock;
  plan: LockPlan;
}

export interface ResumeFile {
  path: string;
  categories: Category[];
  metadata: unknown;
}

export interface Pass {
  mode: 'locked' | 'resume' | 'from-scratch';
  reason: string;
  items: CategorizeItem[];
  /** Taxonomy the items are added to as update batches (none: the first batch creates one). */
  start?: { categories: Category[] };
  resumedFrom: { path: string; categories: number; metadata: unknown } | null;
}

/** What the current runs are, against the lock: "107 kept, 10 new, 3 with a changed summary, 2 no longer selected". */
function runsAgainstLock(p: LockBase['plan']): string {
  return [
    `${p.kept.length} kept`,
    p.added.length ? `${p.added.length} new` : '',
    p.changed.length ? `${p.changed.length} with a changed summary` : '',
    p.removed.length ? `${p.removed.length} no longer selected` : '',
  ].filter(Boolean).join(', ');
}

/** The mode_reason of a locked pass: which taxonomy, who built it, what happens to the runs. */
export function lockReason(base: LockBase, current?: { provider: string; model: string }): string {
  const by = lockBuilder(base.lock);
  const other = current && !sameBuilder(base.lock, current) ? `, built by ${by},` : '';
  return `the ${plural(base.lock.categories.length, 'category', 'categories')} of ${base.file}${other} kept; runs: ${runsAgainstLock(base.plan)}`;
}

/**
 * One line for the log when the lock was built by another categorizer (the
 * offline analyzer, another model): the lock still holds, and how to rebuild
 * from scratch. Null when the builders match or there is no lock.
 */
export function lockBuilderNotice(base: LockBase | null, current: { provider: string; model: string }, label: string): string | null {
  if (!base || sameBuilder(base.lock, current)) return null;
  const redo = base.plan.added.length + base.plan.changed.length;
  return `${base.file} was built by ${lockBuilder(base.lock)}; ${label} keeps its ${plural(base.lock.categories.length, 'category', 'categories')} ` +
    `and assigns the ${plural(redo, 'run', 'runs')} not kept to them (delete ${base.file} to build a new taxonomy from scratch)`;
}

/** Categories that hold at least one run: a locked category no run is assigned to is dropped from the output. */
export function withRuns(categories: readonly Category[]): Category[] {
  return categories.filter((c) => c.examples.length > 0);
}

/**
 * The lock when there is one (its whole taxonomy is kept, whoever built it,
 * and the runs it does not keep are categorized against it), else the resume
 * file, else from scratch.
 */
export function choosePass(items: CategorizeItem[], base: LockBase | null, resume: (() => ResumeFile) | null, current?: { provider: string; model: string }): Pass {
  if (base && base.plan.taxonomy.length > 0) {
    return { mode: 'locked', reason: lockReason(base, current), items: base.plan.toAdd, start: { categories: base.plan.taxonomy }, resumedFrom: null };
  }
  if (resume) {
    const r = resume();
    return {
      mode: 'resume',
      reason: `${base ? `${base.file} holds no category; ` : ''}every run sent as update batches against ${r.path}`,
      items,
      start: { categories: r.categories },
      resumedFrom: { path: r.path, categories: r.categories.length, metadata: r.metadata },
    };
  }
  return { mode: 'from-scratch', reason: base ? `${base.file} holds no category` : 'no taxonomy lock', items, resumedFrom: null };
}

/** Batches of a pass over n runs: the first of `first` runs (0 when adding to a taxonomy), then `rest` at a time. */
export function batchCount(n: number, first: number, rest: number): number {
  if (n === 0) return 0;
  const head = Math.min(first, n);
  return (head > 0 ? 1 : 0) + Math.ceil((n - head) / rest);
}

/** A reference-format categorization to resume from; errors name the file, the field and what was expected. */
export function readResumeFile(abs: string, path: string): ResumeFile {
  const res = readJsonFileSync<{ categorization?: { categories?: unknown }; metadata?: unknown }>(abs, { label: `resume_categorization_path ${path}` });
  if (!res.ok) throw new Error(res.message);
  const json = res.value;
  if (!json.categorization || !Array.isArray(json.categorization.categories)) {
    throw new Error(`resume_categorization_path ${path}: field "categorization.categories": expected a list of categories`);
  }
  return { path, categories: (json.categorization.categories as Category[]).map(plainCategory), metadata: json.metadata ?? null };
}

/** A category as the model sees it (reference fields only). */
function plainCategory(c: { category_name: string; definition: string; examples?: { id: string; trigger_phrase: string | null; justification: string | null }[] }): Category {
  return {
    category_name: c.category_name,
    definition: c.definition,
    examples: (c.examples ?? []).map((e) => ({ id: e.id, trigger_phrase: e.trigger_phrase ?? null, justification: e.justification ?? null })),
  };
}
