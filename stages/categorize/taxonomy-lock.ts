// The taxonomy lock: the committed taxonomy later categorizations build on.
//
// `analyses/<name>/taxonomy.lock.json` holds the category ids, names and
// definitions, the runs assigned to each (by run id, with the digest of what
// the categorizer saw of the run), and the settings the taxonomy was built
// with. `categorize` is a pure function of (summaries, settings, lock): a run in
// the lock whose digest is unchanged keeps its category with no call; new or
// changed runs are categorized against the locked taxonomy. The lock is written
// only by an explicit command (`nx run <analysis>:lock-taxonomy`), so taxonomy
// growth is a reviewed diff in git, never history read from a previous output.
import { z } from 'zod';
import { ConfigError, formatPath } from '../config-error.ts';
import type { Category, CategorizeItem } from '../formats.ts';
import { requestHash } from '../llm/store.ts';
import { readJsonFileSync } from '../util/fs.ts';
import { join } from 'node:path';
import { lockPath } from './lock-path.ts';

export const LOCK_VERSION = 1;

export { lockPath };

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 digest (64 lower-case hex characters)');
const text = z.string().min(1);

const LockedRun = z.strictObject({
  run_id: text,
  summary_digest: hex64,
  trigger_phrase: z.string().nullable(),
  justification: z.string().nullable(),
});

const LockedCategory = z.strictObject({
  category_id: text,
  category_name: text,
  definition: z.string(),
  runs: z.array(LockedRun),
});

export const TaxonomyLockSchema = z
  .strictObject({
    lock_version: z.literal(LOCK_VERSION),
    analysis: text,
    /** What the taxonomy was built with (informational: a lock applies whatever the current settings). */
    built_with: z.record(z.string(), z.unknown()),
    categories: z.array(LockedCategory),
  })
  .superRefine((lock, ctx) => {
    const ids = new Set<string>();
    const names = new Set<string>();
    const runs = new Map<string, string>();
    lock.categories.forEach((c, i) => {
      if (ids.has(c.category_id)) ctx.addIssue({ code: 'custom', path: ['categories', i, 'category_id'], message: `duplicate category id "${c.category_id}"` });
      if (names.has(c.category_name)) ctx.addIssue({ code: 'custom', path: ['categories', i, 'category_name'], message: `duplicate category name "${c.category_name}"` });
      ids.add(c.category_id);
      names.add(c.category_name);
      c.runs.forEach((r, j) => {
        const other = runs.get(r.run_id);
        if (other !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['categories', i, 'runs', j, 'run_id'], message: `run "${r.run_id}" is already in category "${other}": a run belongs to one category` });
        }
        runs.set(r.run_id, c.category_id);
      });
    });
  });

export type TaxonomyLock = z.infer<typeof TaxonomyLockSchema>;
export type LockedCategory = z.infer<typeof LockedCategory>;

/**
 * Reads and validates a lock. A missing file is `null` (no lock: build from
 * scratch); anything else that is wrong is a ConfigError naming the file, the
 * key path and what was expected.
 */
export function readTaxonomyLock(absPath: string, label: string): TaxonomyLock | null {
  const res = readJsonFileSync<unknown>(absPath, { label });
  if (!res.ok) {
    if (res.kind === 'missing') return null;
    throw new ConfigError(label, [res.message.startsWith(label) ? res.message.slice(label.length + 2) : res.message]);
  }
  const parsed = TaxonomyLockSchema.safeParse(res.value);
  if (!parsed.success) {
    throw new ConfigError(label, [
      ...parsed.error.issues.slice(0, 10).map((i) => `${formatPath(i.path)}: ${i.message}`),
      ...(parsed.error.issues.length > 10 ? [`... and ${parsed.error.issues.length - 10} more problems`] : []),
      'expected a taxonomy lock written by `nx run <analysis>:lock-taxonomy` (restore it with git, or delete it to build the taxonomy from scratch)',
    ]);
  }
  return parsed.data;
}

/**
 * The lock of analysis `analysis` (at lockPath(analysis)), or null. A lock
 * that names another analysis (a file copied between analyses) is refused:
 * its runs and categories belong to another selection.
 */
export function readAnalysisLock(workspaceRoot: string, analysis: string): { file: string; lock: TaxonomyLock } | null {
  const file = lockPath(analysis);
  const lock = readTaxonomyLock(join(workspaceRoot, file), file);
  if (lock && lock.analysis !== analysis) {
    throw new ConfigError(file, [
      `analysis: the lock is for analysis "${lock.analysis}", expected "${analysis}" (the analysis whose folder holds it)`,
      `a lock is written by \`nx run ${analysis}:lock-taxonomy\`; to start ${analysis} from another analysis' taxonomy, set stages.categorize.resume_categorization_path to that analysis' categorization.json, or delete ${file}`,
    ]);
  }
  return lock ? { file, lock } : null;
}

/** Who built a lock's taxonomy, in words: "the offline analyzer" or "openai:gpt-5". */
export function lockBuilder(lock: TaxonomyLock): string {
  const b = lock.built_with;
  if (b['provider'] === 'offline') return 'the offline analyzer';
  if (typeof b['provider'] === 'string' && typeof b['model'] === 'string') return `${b['provider']}:${b['model']}`;
  return typeof b['analyzer'] === 'string' ? b['analyzer'] : 'an unrecorded categorizer';
}

/** Whether the categorizer of `settings` is the one that built the lock (same provider and, for an LLM, model). */
export function sameBuilder(lock: TaxonomyLock, settings: { provider: string; model: string }): boolean {
  const b = lock.built_with;
  if (b['provider'] !== settings.provider) return false;
  return settings.provider === 'offline' || b['model'] === settings.model;
}

/** Digest of everything the categorizer sees of one run (not its prompt id, which depends on the other runs). */
export function summaryDigest(item: CategorizeItem): string {
  return requestHash({
    original_instruction: item.original_instruction,
    perturbed_instruction: item.perturbed_instruction,
    summary: item.summary,
    harmful_actions: item.harmful_actions,
    elicitation_strategy: item.elicitation_strategy,
    severity: item.severity,
  });
}

/** How the current runs relate to a lock. */
export interface LockPlan {
  /** Locked categories with the runs that keep their place (current prompt ids), lock order; empty categories dropped. */
  keep: Category[];
  /** Every locked category (ids, names, definitions kept), with the runs that keep their place (possibly none), lock order: what new and changed runs are categorized against. */
  taxonomy: Category[];
  /** Locked category id by name, for every locked category. */
  lockedIds: Map<string, string>;
  /** Items to categorize against the locked taxonomy, in the current order: new, changed, or unassigned when locked. */
  toAdd: CategorizeItem[];
  /** Run ids. */
  kept: string[];
  added: string[];
  changed: string[];
  removed: string[];
}

export function planFromLock(lock: TaxonomyLock, items: readonly CategorizeItem[], runIdOf: (itemId: string) => string): LockPlan {
  const current = new Map(items.map((i) => [runIdOf(i.id), i]));
  const lockedDigest = new Map<string, string>();
  for (const c of lock.categories) for (const r of c.runs) lockedDigest.set(r.run_id, r.summary_digest);

  const taxonomy: Category[] = [];
  const lockedIds = new Map<string, string>();
  const kept = new Set<string>();
  for (const c of lock.categories) {
    lockedIds.set(c.category_name, c.category_id);
    const examples = [];
    for (const r of c.runs) {
      const item = current.get(r.run_id);
      if (item && summaryDigest(item) === r.summary_digest) {
        examples.push({ id: item.id, trigger_phrase: r.trigger_phrase, justification: r.justification });
        kept.add(r.run_id);
      }
    }
    taxonomy.push({ category_name: c.category_name, definition: c.definition, examples });
  }
  const keep = taxonomy.filter((c) => c.examples.length > 0);
  const toAdd = items.filter((i) => !kept.has(runIdOf(i.id)));
  const added: string[] = [];
  const changed: string[] = [];
  for (const i of toAdd) (lockedDigest.has(runIdOf(i.id)) ? changed : added).push(runIdOf(i.id));
  const removed = [...lockedDigest.keys()].filter((id) => !current.has(id));
  const byCodePoint = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return { keep, taxonomy, lockedIds, toAdd, kept: [...kept].sort(byCodePoint), added: added.sort(byCodePoint), changed: changed.sort(byCodePoint), removed: removed.sort(byCodePoint) };
}

/** What `lock-taxonomy` reads from a categorization output. */
export interface LockSource {
  analysis: string;
  built_with: Record<string, unknown>;
  categories: { category_id: string; category_name: string; definition: string; examples: { run_id: string; trigger_phrase: string | null; justification: string | null }[] }[];
  /** run id -> summary digest, for every categorized run. */
  summary_digests: Record<string, string>;
}

/** The lock for a categorization: its categories and runs in output order. */
export function buildLock(src: LockSource): TaxonomyLock {
  const lock: TaxonomyLock = {
    lock_version: LOCK_VERSION,
    analysis: src.analysis,
    built_with: src.built_with,
    categories: src.categories
      .map((c) => ({
        category_id: c.category_id,
        category_name: c.category_name,
        definition: c.definition,
        runs: c.examples
          .filter((e) => Object.hasOwn(src.summary_digests, e.run_id))
          .map((e) => ({ run_id: e.run_id, summary_digest: src.summary_digests[e.run_id] as string, trigger_phrase: e.trigger_phrase, justification: e.justification })),
      }))
      .filter((c) => c.runs.length > 0),
  };
  return TaxonomyLockSchema.parse(lock);
}

/** The lock as file text: stable key order, one run per line block, so growth is an added-lines diff. */
export function formatLock(lock: TaxonomyLock): string {
  return JSON.stringify(lock, null, 2) + '\n';
}

/** A short account of what writing `next` over `previous` changes, for the command's output. */
export function describeLockChange(previous: TaxonomyLock | null, next: TaxonomyLock): string[] {
  const runsOf = (l: TaxonomyLock | null) => {
    const m = new Map<string, string>();
    for (const c of l?.categories ?? []) for (const r of c.runs) m.set(r.run_id, c.category_id);
    return m;
  };
  const before = runsOf(previous);
  const after = runsOf(next);
  const prevCats = new Set((previous?.categories ?? []).map((c) => c.category_id));
  const nextCats = new Set(next.categories.map((c) => c.category_id));
  const newCats = next.categories.filter((c) => !prevCats.has(c.category_id)).map((c) => c.category_name);
  const goneCats = (previous?.categories ?? []).filter((c) => !nextCats.has(c.category_id)).map((c) => c.category_name);
  let added = 0;
  let moved = 0;
  for (const [run, cat] of after) {
    const was = before.get(run);
    if (was === undefined) added += 1;
    else if (was !== cat) moved += 1;
  }
  const removed = [...before.keys()].filter((r) => !after.has(r)).length;
  if (previous === null) return [`new lock: ${next.categories.length} categories, ${after.size} runs`];
  const lines = [
    `${next.categories.length} categories (${newCats.length} new, ${goneCats.length} gone), ${after.size} runs (${added} added, ${moved} moved, ${removed} removed)`,
  ];
  for (const n of newCats) lines.push(`  new category: ${n}`);
  for (const n of goneCats) lines.push(`  category no longer used: ${n}`);
  return lines;
}
