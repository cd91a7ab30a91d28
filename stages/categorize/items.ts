// Step 3: categorization. Pure helpers that turn summaries into the items a
// categorizer sees, check its answer against the batch, and assemble the
// reference-format output with our ledger fields (every run accounted for).
import type { Category, CategorizeItem } from '../formats.ts';
import type { OutputCategory } from './format.ts';
import type { FailedRun, LedgerRun } from '../task-list/ledger.ts';
import type { SummaryFile } from '../summarize/format.ts';

// The id helpers live in util/ids.ts; scripts and tests still reach them here.
export { lockedStableIds, stableIds } from '../util/ids.ts';

/** Lower-case, straight quotes, single spaces: what "the same words" means for a quote. */
export function normalizeQuote(s: string): string {
  return s
    .normalize('NFKC')
    .replace(/[\u2018\u2019\u201A\u201B\u2032`´]/g, "'")
    .replace(/[\u201C\u201D\u201E\u201F\u2033]/g, '"')
    .replace(/[\u2013\u2014]/g, '-')
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .trim();
}

const unquoted = (s: string) => normalizeQuote(s).replace(/['"]/g, '').replace(/\s+/g, ' ').trim();

/**
 * A trigger phrase is verified when it occurs in the perturbed instruction,
 * ignoring case, whitespace, quote marks and a leading or trailing ellipsis.
 */
export function verifyTrigger(phrase: string | null | undefined, perturbed: string): boolean {
  if (typeof phrase !== 'string') return false;
  const p = unquoted(phrase.replace(/^\s*(\.\.\.|\u2026)|(\.\.\.|\u2026)\s*$/g, ''));
  if (p.length === 0) return false;
  return unquoted(perturbed).includes(p);
}

/** What the categorizer needs of a run's ledger entry (the rest, mostly paths, is dropped with the ledger). */
export type RunRef = Pick<LedgerRun, 'run_id' | 'domain' | 'agent' | 'refinement_model'>;

export interface ItemsResult {
  items: CategorizeItem[];
  /** run id -> id used in prompts and examples */
  idOf: Map<string, string>;
  runOf: Map<string, RunRef>;
  /** Runs that cannot be categorized (no summary), with the reason. */
  missing: FailedRun[];
}

/** Items in task-list order; runs whose summary failed are reported, not skipped silently. */
export function buildItems(
  runs: readonly LedgerRun[],
  idOf: Map<string, string>,
  summaryOf: (run: LedgerRun) => { file: SummaryFile; severity: string | null; harmful: string[]; strategy: string } | { error: string },
): ItemsResult {
  const items: CategorizeItem[] = [];
  const missing: FailedRun[] = [];
  const runOf = new Map<string, RunRef>();
  for (const run of runs) {
    const id = idOf.get(run.run_id) as string;
    runOf.set(id, { run_id: run.run_id, domain: run.domain, agent: run.agent, refinement_model: run.refinement_model });
    const s = summaryOf(run);
    if ('error' in s) {
      missing.push({ run_id: run.run_id, stage: 'categorize', reason: s.error });
      continue;
    }
    items.push({
      id,
      original_instruction: s.file.original_instruction,
      perturbed_instruction: s.file.perturbed_instruction,
      summary: s.file.summary,
      harmful_actions: s.harmful,
      elicitation_strategy: s.strategy,
      severity: s.severity,
    });
  }
  return { items, idOf, runOf, missing };
}

/** Adds run ids, verification flags and stable ids to categories. */
export function decorateCategories(
  categories: Category[],
  items: readonly CategorizeItem[],
  runOf: Map<string, RunRef>,
  stableId: (c: Category) => string,
): OutputCategory[] {
  const perturbedOf = new Map(items.map((i) => [i.id, i.perturbed_instruction]));
  return categories.map((c) => ({
    category_name: c.category_name,
    definition: c.definition,
    examples: c.examples.map((e) => ({
      id: e.id,
      trigger_phrase: e.trigger_phrase,
      justification: e.justification,
      run_id: runOf.get(e.id)?.run_id ?? e.id,
      trigger_phrase_verified: verifyTrigger(e.trigger_phrase, perturbedOf.get(e.id) ?? ''),
    })),
    category_id: stableId(c),
  }));
}

export interface CoverageCheck {
  assigned: Set<string>;
  unassigned: string[];
  duplicated: string[];
  unknown: string[];
}

/** Which item ids the categories cover, which they miss, repeat or invent. */
export function checkCoverage(categories: readonly Category[], itemIds: readonly string[]): CoverageCheck {
  const valid = new Set(itemIds);
  const seen = new Set<string>();
  const duplicated = new Set<string>();
  const unknown = new Set<string>();
  for (const c of categories) {
    for (const e of c.examples) {
      if (!valid.has(e.id)) unknown.add(e.id);
      else if (seen.has(e.id)) duplicated.add(e.id);
      seen.add(e.id);
    }
  }
  return {
    assigned: new Set([...seen].filter((id) => valid.has(id))),
    unassigned: itemIds.filter((id) => !seen.has(id)),
    duplicated: [...duplicated].sort(),
    unknown: [...unknown].sort(),
  };
}

/**
 * Offline assignment against a locked taxonomy. `grouped` is the offline
 * analyzer's grouping of every run; each run of `toAdd` joins the locked
 * category that most locked members of its group are in (ties: the earlier
 * locked category), else a new category named after its group. Locked
 * categories keep their order; new ones follow in the analyzer's order.
 */
export function joinLockedByMajority(locked: readonly Category[], toAdd: readonly string[], grouped: readonly Category[]): Category[] {
  const out = locked.map((c) => ({ ...c, examples: [...c.examples] }));
  const lockedOf = new Map<string, number>();
  out.forEach((c, i) => c.examples.forEach((e) => lockedOf.set(e.id, i)));
  const adding = new Set(toAdd);
  const names = new Set(out.map((c) => c.category_name));
  const fresh: Category[] = [];
  for (const g of grouped) {
    const joiners = g.examples.filter((e) => adding.has(e.id));
    if (joiners.length === 0) continue;
    const votes = new Map<number, number>();
    for (const e of g.examples) {
      const at = lockedOf.get(e.id);
      if (at !== undefined) votes.set(at, (votes.get(at) ?? 0) + 1);
    }
    let best: number | null = null;
    for (const [at, n] of votes) if (best === null || n > (votes.get(best) ?? 0) || (n === votes.get(best) && at < best)) best = at;
    if (best !== null) {
      out[best]!.examples.push(...joiners);
      continue;
    }
    let name = g.category_name;
    for (let n = 2; names.has(name); n++) name = `${g.category_name} (${n})`;
    names.add(name);
    fresh.push({ category_name: name, definition: g.definition, examples: joiners });
  }
  return [...out, ...fresh];
}
