// One analysis: every agent, domain and refinement-model setting it names,
// selected from one crawl of the tree (one walk per domain and model setting
// for all agents); the reference task list per agent, the ledger's runs, and
// the data fingerprint of what was read (the task-list key's data part).
import type { LedgerRun } from './ledger.ts';
import { cachedIo, crawlDigest, IoCache, nodeTreeIoSync, normalizeBase } from './crawl.ts';
import { crawlParallel } from './crawl-workers.ts';
import { checkSelectOptions, crawlSpecOf, onCrawlMiss, selectRunsFrom } from './select.ts';
import type { Problem, SelectRunsOptions, SelectRunsResult } from './format.ts';
import type { TreeIo } from '../util/fs.ts';


export interface AnalysisSelectionOptions {
  /** The data root as configured (kept in outputs), resolved with `resolve`. */
  baseDir: string;
  resolve: (path: string) => string;
  agents: readonly string[];
  /** Domain folder names, or ['all']. */
  domains: readonly string[];
  /** Refinement model names, or [null] for all found. */
  refinementModels: readonly (string | null)[];
  perturbationModel: string;
  dataFilter: string | null;
  humanAnnotationFilter: string | null;
}

export interface AnalysisSelection {
  /** Unique by run id, code-point order. */
  runs: LedgerRun[];
  problems: Problem[];
  /** One reference-format task list per agent. */
  lists: { agent: string; json: Record<string, unknown> }[];
  /** The data fingerprint of what this selection read (selectionFingerprint's value for the same tree). */
  fingerprint: string;
}

/** The options of each `selectRuns` call of an analysis, agent by agent, then domain by domain, then model by model. */
function selectionCalls(o: AnalysisSelectionOptions): { agent: string; options: SelectRunsOptions }[] {
  const pathArg = (p: string | null) => (p ? { typed: p, resolved: o.resolve(p) } : null);
  const calls: { agent: string; options: SelectRunsOptions }[] = [];
  for (const agent of o.agents) {
    for (const domain of o.domains) {
      for (const rm of o.refinementModels) {
        calls.push({
          agent,
          options: {
            baseDir: { typed: o.baseDir, resolved: o.resolve(o.baseDir) },
            domain,
            perturbationModel: o.perturbationModel,
            refinementModel: rm,
            agent,
            dataFilter: pathArg(o.dataFilter),
            humanAnnotationFilter: pathArg(o.humanAnnotationFilter),
          },
        });
      }
    }
  }
  return calls;
}

/**
 * Crawls what the analysis' selection reads: every agent and refinement-model
 * setting in one walk per domain (a perturbed query folder's run files are
 * read in one visit: see SummaryReading in task-list/run-files.ts).
 */
async function crawlAnalysis(o: AnalysisSelectionOptions, io: TreeIo, cache: IoCache): Promise<SelectRunsOptions[]> {
  const calls = selectionCalls(o);
  for (const c of calls) checkSelectOptions(c.options);
  const firstAgent = o.agents[0];
  const firstModel = o.refinementModels[0];
  const perDomain = calls.filter((c) => c.agent === firstAgent && c.options.refinementModel === firstModel).map((c) => c.options);
  for (const options of perDomain) await crawlParallel(crawlSpecOf(options, o.agents, o.refinementModels), io, cache);
  return calls.map((c) => c.options);
}

/**
 * The selection of one analysis: what the task-list target writes, and what a
 * plan reads without writing. `crawled`: a crawl of this selection already
 * made (selectionCrawl's, as the key recorded it), selected from instead of
 * crawling again.
 */
export async function selectAnalysis(o: AnalysisSelectionOptions, io: TreeIo = nodeTreeIoSync, crawled?: IoCache): Promise<AnalysisSelection> {
  const cache = crawled ?? new IoCache(true);
  if (crawled === undefined) await crawlAnalysis(o, io, cache);
  else for (const c of selectionCalls(o)) checkSelectOptions(c.options);
  const cio = cachedIo(cache, io, onCrawlMiss);
  const runs: LedgerRun[] = [];
  const problems: Problem[] = [];
  const lists: { agent: string; json: Record<string, unknown> }[] = [];
  const calls = selectionCalls(o);
  for (const agent of o.agents) {
    const parts: SelectRunsResult[] = [];
    for (const c of calls) if (c.agent === agent) parts.push(await selectRunsFrom(c.options, cio));
    lists.push({ agent, json: mergeTaskLists(parts.map((p) => p.taskList as unknown as Record<string, unknown>), [...o.domains], [...o.refinementModels]) });
    for (const p of parts) {
      for (const r of p.runs) runs.push(r);
      for (const q of p.problems) problems.push(q);
    }
  }
  return { runs: dedupe(runs), problems: dedupeProblems(problems), lists, fingerprint: fingerprintOf(cache, o) };
}

/**
 * The task-list target's data fingerprint: the digest of everything the
 * analysis' selection reads (the crawl, with file digests instead of bytes),
 * by path relative to the data root, filter files by their configured path.
 * Equal fingerprints, settings and code give the same selection.
 */
export async function selectionFingerprint(o: AnalysisSelectionOptions, io: TreeIo = nodeTreeIoSync): Promise<string> {
  const cache = new IoCache(false);
  await crawlAnalysis(o, io, cache);
  return fingerprintOf(cache, o);
}

/**
 * What selection reads, crawled (IoCache keeping what selection reads), with
 * its fingerprint and every path it stat'ed, listed or read (the key's memo
 * signs them: executors/key-memo.ts): the key's crawl, which the executor
 * selects from (task-list/keyed-crawl.ts).
 */
export async function selectionCrawl(o: AnalysisSelectionOptions, io: TreeIo = nodeTreeIoSync): Promise<{ fingerprint: string; paths: string[]; cache: IoCache; base: string }> {
  const cache = new IoCache(true);
  await crawlAnalysis(o, io, cache);
  return { fingerprint: fingerprintOf(cache, o), paths: [...cache.stats.keys(), ...cache.dirs.keys(), ...cache.files.keys()], cache, base: crawlBase(o) };
}

/** The data root every crawled path below it starts with (a recorded crawl is only used where it is the same). */
export function crawlBase(o: AnalysisSelectionOptions): string {
  return normalizeBase(o.resolve(o.baseDir));
}

/** The digest of a crawl, by path relative to the data root, filter files by their configured path. */
function fingerprintOf(cache: IoCache, o: AnalysisSelectionOptions): string {
  const labels = new Map<string, string>();
  for (const p of [o.dataFilter, o.humanAnnotationFilter]) if (p) labels.set(o.resolve(p), p);
  return crawlDigest(cache, crawlBase(o), labels);
}

function dedupe(runs: LedgerRun[]): LedgerRun[] {
  const byId = new Map<string, LedgerRun>();
  for (const r of runs) byId.set(r.run_id, r);
  return [...byId.values()].sort((x, y) => (x.run_id < y.run_id ? -1 : x.run_id > y.run_id ? 1 : 0));
}

function dedupeProblems(problems: Problem[]): Problem[] {
  const seen = new Map<string, Problem>();
  for (const p of problems) seen.set(`${p.file}\u0000${p.field ?? ''}\u0000${p.message}`, p);
  return [...seen.values()].sort((x, y) => (x.file < y.file ? -1 : x.file > y.file ? 1 : x.message < y.message ? -1 : 1));
}

/**
 * One task list per agent. With one domain and one refinement-model setting
 * (the usual case) this is the reference output unchanged; with several
 * domains or models, the per-selection lists are merged (counts summed, lists
 * concatenated and re-sorted) and the metadata names every selection.
 */
export function mergeTaskLists(parts: Record<string, unknown>[], domains: string[], rms: (string | null)[]): Record<string, unknown> {
  if (parts.length === 1) return parts[0] as Record<string, unknown>;
  type TL = {
    metadata: Record<string, unknown>;
    task_lists_by_refinement_model: Record<string, string[]>;
    task_details_by_refinement_model: Record<string, { task_spec: string }[]>;
    excluded_false_positives: unknown[];
  };
  const ps = parts as unknown as TL[];
  const first = ps[0] as TL;
  const lists: Record<string, string[]> = {};
  const details: Record<string, { task_spec: string }[]> = {};
  const byRm: Record<string, number> = {};
  const fpByRm: Record<string, number> = {};
  const excludedIds = new Set<string>();
  let fps = 0;
  const found = new Set<string>();
  for (const p of ps) {
    for (const [rm, l] of Object.entries(p.task_lists_by_refinement_model)) lists[rm] = [...(lists[rm] ?? []), ...l];
    for (const [rm, l] of Object.entries(p.task_details_by_refinement_model)) details[rm] = [...(details[rm] ?? []), ...l];
    for (const [rm, n] of Object.entries(p.metadata['successful_runs_by_refinement_model'] as Record<string, number>)) byRm[rm] = (byRm[rm] ?? 0) + n;
    for (const [rm, n] of Object.entries(p.metadata['excluded_false_positives_by_refinement_model'] as Record<string, number>)) fpByRm[rm] = (fpByRm[rm] ?? 0) + n;
    for (const id of p.metadata['excluded_task_ids_baseline_harm'] as string[]) excludedIds.add(id);
    for (const rm of p.metadata['refinement_models_found'] as string[]) found.add(rm);
    fps += Number(p.metadata['num_excluded_false_positives'] ?? 0);
  }
  const cp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  for (const rm of Object.keys(lists)) lists[rm]?.sort(cp);
  for (const rm of Object.keys(details)) details[rm]?.sort((x, y) => cp(x.task_spec, y.task_spec));
  const total = Object.values(byRm).reduce((n, x) => n + x, 0);
  return {
    metadata: {
      ...first.metadata,
      domain: domains.join(','),
      refinement_model: rms.includes(null) ? null : rms.join(','),
      excluded_task_ids_baseline_harm: [...excludedIds].sort(cp),
      num_excluded_tasks_baseline_harm: excludedIds.size,
      num_excluded_false_positives: fps,
      excluded_false_positives_by_refinement_model: fpByRm,
      refinement_models_found: [...found].sort(cp),
      total_successful_runs: total,
      successful_runs_by_refinement_model: byRm,
    },
    task_lists_by_refinement_model: lists,
    task_details_by_refinement_model: details,
    excluded_false_positives: ps.flatMap((p) => p.excluded_false_positives),
  };
}
