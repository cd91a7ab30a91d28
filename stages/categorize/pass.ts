// What one categorization pass sends and what it builds on: the committed
// taxonomy lock, else an explicit resume file (the reference's
// resume_categorization_path), else nothing (from scratch). Shared by the
// categorize target and the plan, so the plan counts what the run will do.
import type { Category, CategorizeItem } from '../formats.ts';
import type { LockPlan, TaxonomyLock } from './taxonomy-lock.ts';
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

export function lockReason(base: LockBase): string {
  const p = base.plan;
  return [
    `${p.kept.length} run(s) kept from ${base.file}`,
    p.added.length ? `${p.added.length} new` : '',
    p.changed.length ? `${p.changed.length} changed` : '',
    p.removed.length ? `${p.removed.length} no longer selected` : '',
  ].filter(Boolean).join(', ');
}

/** The lock when it still holds a current run, else the resume file, else from scratch. */
export function choosePass(items: CategorizeItem[], base: LockBase | null, resume: (() => ResumeFile) | null): Pass {
  if (base && base.plan.keep.length > 0) {
    return { mode: 'locked', reason: lockReason(base), items: base.plan.toAdd, start: { categories: base.plan.keep }, resumedFrom: null };
  }
  if (resume) {
    const r = resume();
    return {
      mode: 'resume',
      reason: `every run sent as update batches against ${r.path}`,
      items,
      start: { categories: r.categories },
      resumedFrom: { path: r.path, categories: r.categories.length, metadata: r.metadata },
    };
  }
  return { mode: 'from-scratch', reason: base ? `no run of ${base.file} is among the current runs` : 'no taxonomy lock', items, resumedFrom: null };
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
