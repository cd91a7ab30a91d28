// Step 5: from the upstream outputs (ledger, summaries, categorization,
// clusters) to the inputs of the Markdown and HTML renderers, the report's
// snapshot, the baseline it is compared with (the committed taxonomy lock,
// never a previous report) and the run folder links. Pure: paths are computed
// from the configured strings, never from where the workspace lives.
import { posix, win32 } from 'node:path';
import type { OutputCategory } from '../categorize/format.ts';
import type { Cluster } from '../formats.ts';
import type { FailedRun, Ledger, LedgerRun } from '../task-list/ledger.ts';
import type { SummaryIndexEntry } from '../summarize/format.ts';
import type { TaxonomyLock } from '../categorize/taxonomy-lock.ts';
import type { ReportBaseline, ReportSnapshot } from './changes.ts';
import type { HtmlReportInput, HtmlRun } from './html.ts';
import type { AgentSlice, ReportInput, ReportProvenance, RunCoverage, StageProvenance } from './markdown.ts';
import type { QualityInput } from './quality/compute.ts';
import { fallbackPlaced } from './quality/placement.ts';
import type { HeldoutDocument } from '../categorize/heldout.ts';

// What the report reads of the upstream index files. Each file has one shape,
// checked on read (CategorizationFile in categorize/format.ts, ClustersFile in
// cluster/format.ts, SummaryIndexFile in summarize.ts) and assignable to these;
// they are wider because scripts/import-report.ts hands in reference-format
// files, which lack our fields.
export interface CategorizationOut {
  categorization: { categories: OutputCategory[] };
  statistics: Record<string, unknown>;
  metadata: Record<string, unknown> & { analyzer?: string; prompts?: Record<string, { file: string; sha256: string }> };
  unassigned?: FailedRun[];
}

export interface ClustersOut {
  clusters: (Cluster & { cluster_id?: string })[];
  statistics: Record<string, unknown>;
  metadata: Record<string, unknown> & { analyzer?: string; prompt?: { file: string; sha256: string } };
  unclustered_categories?: { category_name: string; reason: string }[];
}

/** What the report reads of a ledger run (task-list/runs.json; the shape is task-list's): its identity and the paths its folder and problems are found by. */
export type ReportLedgerRun = Pick<
  LedgerRun,
  'run_id' | 'agent' | 'domain' | 'task_id' | 'perturbed_id' | 'refinement_model' | 'refinement_summary_path' | 'perturbed_query_path'
>;

/** What the report reads of the ledger. */
export interface ReportLedger {
  agents: string[];
  runs: ReportLedgerRun[];
  problems?: Ledger['problems'];
}

/** What the report reads of one run of the summarize index (summarize/index.json; the shape is summarize's). */
export type SummaryIndexRun = Pick<SummaryIndexEntry, 'run_id' | 'status' | 'reason'> & Partial<Pick<SummaryIndexEntry, 'file'>>;

export interface SummariesOut {
  analyzer: string;
  prompt_file: string;
  prompt_sha256: string;
  runs: SummaryIndexRun[];
  failed: FailedRun[];
  statistics: Record<string, unknown>;
}

export interface StageCalls {
  stage: string;
  analyzer: string;
  /** Answers (LLM calls, repairs included) the stage's output is built from, wherever they came from. */
  answers: number;
  input_tokens: number;
  output_tokens: number;
  /** USD of the answers used (wherever they came from), null when unknown. */
  cost_usd: number | null;
}

/** Which runs reached which stage, from the ledger and the stage outputs. */
/**
 * A ledger problem that is about one run (its refinement summary, its
 * perturbed query file, or its agent folder), by the shape of the path the
 * task list reports relative to the data root.
 */
export function isRunProblem(file: string): boolean {
  return /(^|\/)(agent_[^/]+(\/refinement_summary\.json)?|perturbed_query_[^/]+\.json)$/.test(file);
}

/** The run a run problem belongs to: its agent folder, else the perturbed-query file. */
function problemRunOf(file: string): string {
  return file.replace(/\/refinement_summary\.json$/, '');
}

export function runCoverage(ledger: ReportLedger, sums: SummariesOut | null, cat: CategorizationOut, clu: ClustersOut): RunCoverage {
  const inLedger = new Set(ledger.runs.map((r) => r.run_id));
  const categorized = new Set(cat.categorization.categories.flatMap((c) => c.examples.map((e) => e.run_id)).filter((id) => inLedger.has(id)));
  // A category placed in a cluster of its own by fallback is not "in a cluster": the model never placed it.
  const fallback = new Map(fallbackPlaced(clu).map((f) => [f.category_name, f.reason]));
  const clusteredNames = new Set(clu.clusters.flatMap((c) => c.member_categories.map((m) => m.category_name)).filter((n) => !fallback.has(n)));
  const clustered = new Set(
    cat.categorization.categories
      .filter((c) => clusteredNames.has(c.category_name))
      .flatMap((c) => c.examples.map((e) => e.run_id))
      .filter((id) => inLedger.has(id)),
  );
  const unassigned = (cat.unassigned ?? [])
    .filter((u) => !(sums?.failed ?? []).some((f) => f.run_id === u.run_id))
    .map((u) => ({ run_id: u.run_id, stage: u.stage, reason: u.reason }));
  for (const c of cat.categorization.categories) {
    if (clusteredNames.has(c.category_name)) continue;
    const reason = fallback.has(c.category_name)
      ? `its category "${c.category_name}" was put in a cluster of its own by fallback: ${fallback.get(c.category_name)}`
      : `its category "${c.category_name}" is in no cluster`;
    for (const e of c.examples) unassigned.push({ run_id: e.run_id, stage: 'cluster', reason });
  }
  const problems = (ledger.problems ?? []).map((p) => ({ file: p.file, ...(p.field ? { field: p.field } : {}), reason: p.message }));
  // A problem about a run that was still selected (a warning on its file) is not a dropped run.
  const selected = new Set(ledger.runs.flatMap((r) => [runFolderOf(r), r.perturbed_query_path.split('\\').join('/')]));
  const dropped = problems.filter((p) => isRunProblem(p.file) && !selected.has(problemRunOf(p.file)));
  return {
    found_in_tree: ledger.runs.length + new Set(dropped.map((p) => problemRunOf(p.file))).size,
    dropped,
    tree_problems: problems.filter((p) => !dropped.includes(p)),
    in_task_list: ledger.runs.length,
    summarized: sums ? sums.runs.filter((r) => r.status === 'done').length : categorized.size,
    categorized: categorized.size,
    clustered: clustered.size,
    failed: [...(sums?.failed ?? [])],
    unassigned,
  };
}

/** What the quality section reads: runs with their facets and summary text, categories, clusters, the clusterer's flags, --stability. */
export function qualityInput(ledger: ReportLedger, sums: SummariesOut, cat: CategorizationOut, clu: ClustersOut, runs: Record<string, HtmlRun>, idOf: (name: string) => string, heldout: HeldoutDocument | null): QualityInput {
  const done = new Set(sums.runs.filter((r) => r.status === 'done').map((r) => r.run_id));
  return {
    // `summary` is read when used: a run's texts may be decoded on each read (run-details.ts), and all of them at once would be the report's largest object.
    runs: ledger.runs.map((r) => {
      const summarized = done.has(r.run_id);
      const run = runs[r.run_id];
      return {
        run_id: r.run_id,
        agent: r.agent,
        refinement_model: r.refinement_model,
        domain: r.domain,
        get summary() {
          return summarized ? (run?.summary ?? '') : null;
        },
      };
    }),
    categories: cat.categorization.categories.map((c) => ({
      category_id: c.category_id,
      category_name: c.category_name,
      definition: c.definition,
      run_ids: c.examples.map((e) => e.run_id),
    })),
    clusters: clu.clusters.map((c) => ({ cluster_id: c.cluster_id ?? idOf(c.cluster_name), cluster_name: c.cluster_name, member_categories: c.member_categories })),
    unclustered_categories: clu.unclustered_categories ?? [],
    stability: cat.metadata['stability'] ?? null,
    heldout,
  };
}

export function agentSlices(ledger: ReportLedger, cat: CategorizationOut): Record<string, AgentSlice> {
  const agentOf = new Map(ledger.runs.map((r) => [r.run_id, r.agent]));
  const slices: Record<string, AgentSlice> = {};
  for (const agent of ledger.agents) slices[agent] = { runs: ledger.runs.filter((r) => r.agent === agent).length, categories: {} };
  for (const c of cat.categorization.categories) {
    for (const e of c.examples) {
      const slice = slices[agentOf.get(e.run_id) ?? ''];
      if (slice?.categories) slice.categories[c.category_name] = (slice.categories[c.category_name] ?? 0) + 1;
    }
  }
  return slices;
}

const isOffline = (analyzer: string | undefined) => (analyzer ?? '').startsWith('offline');

function stageProvenance(
  stage: string,
  analyzer: string | undefined,
  meta: Record<string, unknown>,
  prompts: Record<string, string>,
  calls: StageCalls | undefined,
): StageProvenance {
  const settings: Record<string, string | number | null> = { answered_by: analyzer ?? 'unknown' };
  if (calls) {
    settings['answers_used'] = calls.answers;
    settings['tokens_in'] = calls.input_tokens;
    settings['tokens_out'] = calls.output_tokens;
    settings['cost_usd'] = calls.cost_usd === null ? 'unknown (model not in the price table)' : calls.cost_usd.toFixed(4);
  }
  for (const key of ['temperature', 'max_tokens', 'initial_categorization_batch_size', 'iterative_categorization_batch_size', 'mode']) {
    const v = meta[key];
    if (typeof v === 'number' || typeof v === 'string') settings[key] = v;
  }
  return {
    stage,
    analyzer: isOffline(analyzer) ? 'offline' : 'llm',
    provider: String(meta['api_type'] ?? (isOffline(analyzer) ? 'offline' : '')),
    model: String(meta['model_name'] ?? ''),
    prompts,
    settings,
  };
}

const shortHashes = (entries: { file: string; sha256: string }[]) =>
  Object.fromEntries(entries.map((p) => [p.file, p.sha256.slice(0, 12)]));

export function reportProvenance(
  analysis: string,
  ledger: ReportLedger,
  sums: SummariesOut | null,
  cat: CategorizationOut,
  clu: ClustersOut,
  filters: Record<string, string | null>,
  calls: StageCalls[] = [],
): ReportProvenance {
  const callsOf = (s: string) => calls.find((c) => c.stage === s);
  const stages: StageProvenance[] = [];
  if (sums) {
    const [api, ...model] = sums.analyzer.split(':');
    stages.push(stageProvenance('summarize', sums.analyzer, {
      api_type: isOffline(sums.analyzer) ? 'offline' : api,
      model_name: isOffline(sums.analyzer) ? 'offline-analyzer' : model.join(':'),
    }, shortHashes([{ file: sums.prompt_file, sha256: sums.prompt_sha256 }]), callsOf('summarize')));
  }
  stages.push(stageProvenance('categorize', cat.metadata.analyzer, cat.metadata, shortHashes(Object.values(cat.metadata.prompts ?? {})), callsOf('categorize')));
  stages.push(stageProvenance('cluster', clu.metadata.analyzer, clu.metadata, shortHashes(clu.metadata.prompt ? [clu.metadata.prompt] : []), callsOf('cluster')));
  const offline = stages.filter((s) => s.analyzer === 'offline').map((s) => s.stage);
  return {
    analysis,
    stages,
    filters: { agents: ledger.agents, ...filters },
    notes: offline.length
      ? [`Stages answered by the offline analyzer (${offline.join(', ')}) use no language model; their prompts are recorded but not used.`]
      : [],
  };
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** What this report shows, for report-data.json and the comparison. Sorted, so equal content gives equal bytes. */
export function reportSnapshot(ledger: ReportLedger, cat: CategorizationOut, clu: ClustersOut, idOf: (name: string) => string): ReportSnapshot {
  const catIdOf = new Map(cat.categorization.categories.map((c) => [c.category_name, c.category_id]));
  return {
    runs: ledger.runs.map((r) => r.run_id).sort(cmp),
    categories: cat.categorization.categories
      .map((c) => ({ category_id: c.category_id, category_name: c.category_name, size: c.examples.length }))
      .sort((a, b) => cmp(a.category_id, b.category_id)),
    clusters: clu.clusters
      .map((c) => ({
        cluster_id: c.cluster_id ?? idOf(c.cluster_name),
        cluster_name: c.cluster_name,
        members: c.member_categories.map((m) => catIdOf.get(m.category_name) ?? idOf(m.category_name)).sort(cmp),
      }))
      .sort((a, b) => cmp(a.cluster_id, b.cluster_id)),
  };
}

/**
 * The baseline from the analysis' committed taxonomy lock: every run id in the
 * lock, its categories with their number of runs, and no clusters (a lock has
 * none, so clusters are not compared). `source` is the lock's workspace-relative path.
 */
export function lockBaseline(lock: TaxonomyLock, source: string): ReportBaseline {
  return {
    label: 'the taxonomy lock',
    source,
    runs: lock.categories.flatMap((c) => c.runs.map((r) => r.run_id)).sort(cmp),
    categories: lock.categories
      .map((c) => ({ category_id: c.category_id, category_name: c.category_name, size: c.runs.length }))
      .sort((a, b) => cmp(a.category_id, b.category_id)),
    clusters: null,
    run_categories: Object.fromEntries(lock.categories.flatMap((c) => c.runs.map((r) => [r.run_id, c.category_id] as const))),
  };
}

/** The category id of every categorized run, to find the runs that moved since the baseline. */
export function runCategories(cat: CategorizationOut): Map<string, string> {
  return new Map(cat.categorization.categories.flatMap((c) => c.examples.map((e) => [e.run_id, c.category_id] as const)));
}

/** A run's folder relative to the data root (posix), from its ledger entry. */
export function runFolderOf(run: { refinement_summary_path: string }): string {
  return posix.dirname(run.refinement_summary_path.split('\\').join('/'));
}

const isAbsolutePath = (p: string) => posix.isAbsolute(p) || win32.isAbsolute(p);

/** Segments of a relative posix path with `.` and inner `..` resolved; leading `..` kept. */
function segmentsOf(path: string): string[] {
  const out: string[] = [];
  for (const seg of path.split('\\').join('/').split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..' && out.length > 0 && out[out.length - 1] !== '..') out.pop();
    else out.push(seg);
  }
  return out;
}

/**
 * Where a report's "Open the run folder" link points, from the configuration
 * only (never from where the workspace lives):
 * - `dataRoot` absolute: the absolute path `<dataRoot>/<runFolder>` (the HTML
 *   report links it as a file:// URL);
 * - `dataRoot` workspace-relative: the relative posix path from the report's
 *   folder `<outDir>/<analysis>/report` to `<dataRoot>/<runFolder>`;
 * - null when that cannot be known from the configuration (an output folder
 *   that is absolute or leaves the workspace, with a relative data root).
 */
export function runLink(config: { dataRoot: string; outDir: string; analysis: string }, runFolder: string): string | null {
  const folder = runFolder.split('\\').join('/');
  if (isAbsolutePath(config.dataRoot)) {
    const root = config.dataRoot.split('\\').join('/');
    return posix.join(root, folder);
  }
  if (isAbsolutePath(config.outDir)) return null;
  const from = segmentsOf(posix.join(config.outDir, config.analysis, 'report'));
  if (from.includes('..')) return null;
  const to = segmentsOf(posix.join(config.dataRoot, folder));
  let common = 0;
  while (common < from.length && common < to.length && from[common] === to[common]) common += 1;
  const rel = [...from.slice(common).map(() => '..'), ...to.slice(common)].join('/');
  return rel === '' ? '.' : rel;
}

export function markdownInput(
  cat: CategorizationOut,
  clu: ClustersOut,
  maxExamples: number,
  provenance: ReportProvenance,
  coverage: RunCoverage,
  byAgent: Record<string, AgentSlice> | undefined,
  files: { categorization: string; clusters: string },
): ReportInput {
  return {
    categorization: cat as unknown as ReportInput['categorization'],
    clusters: clu as unknown as ReportInput['clusters'],
    maxExamples,
    provenance,
    coverage,
    ...(byAgent ? { byAgent } : {}),
    files,
  };
}

export function htmlInput(
  title: string,
  analysis: string,
  cat: CategorizationOut,
  clu: ClustersOut,
  runs: Record<string, HtmlRun>,
  provenance: ReportProvenance,
  coverage: RunCoverage,
  idOf: (name: string) => string,
  changes: HtmlReportInput['changes'],
): HtmlReportInput {
  return {
    title,
    analysis,
    provenance,
    coverage,
    clusters: clu.clusters.map((c) => ({
      cluster_id: c.cluster_id ?? idOf(c.cluster_name),
      cluster_name: c.cluster_name,
      definition: c.definition,
      anchor_phrases: c.anchor_phrases,
      member_categories: c.member_categories.map((m) => ({
        category_name: m.category_name,
        justification: m.justification,
        category_definition: m.category_definition,
      })),
    })),
    categories: cat.categorization.categories.map((c) => ({
      category_id: c.category_id,
      category_name: c.category_name,
      definition: c.definition,
      examples: c.examples.map((e) => ({
        id: e.id,
        run_id: e.run_id,
        trigger_phrase: e.trigger_phrase,
        justification: e.justification,
        trigger_phrase_verified: e.trigger_phrase_verified,
      })),
    })),
    runs,
    changes: changes ?? null,
  };
}

/** What each answered stage used: answers (first requests plus repairs), tokens and cost, from its output. */
export function stageCalls(sums: SummariesOut, cat: CategorizationOut, clu: ClustersOut): StageCalls[] {
  // Answers behind a list of batches or calls: each one's first request plus its repair requests.
  const answersOf = (xs: unknown) => (Array.isArray(xs) ? xs.reduce((n: number, x: { repairs?: number }) => n + 1 + (x.repairs ?? 0), 0) : 0);
  return [
    callsOf('summarize', sums.analyzer, sums.statistics, sums.runs.filter((r) => r.status === 'done').length),
    callsOf('categorize', String(cat.metadata.analyzer ?? ''), cat.statistics, cat.metadata['mode'] === 'offline-global' ? 1 : answersOf(cat.metadata['batches'])),
    callsOf('cluster', String(clu.metadata.analyzer ?? ''), clu.statistics, String(clu.metadata['api_type']) === 'offline' ? 1 : answersOf(clu.metadata['calls'])),
  ];
}

function callsOf(stage: string, analyzer: string, stats: Record<string, unknown>, answers: number): StageCalls {
  const num = (k: string) => (typeof stats[k] === 'number' ? (stats[k] as number) : 0);
  const rawCost = stats['cost'];
  const cost = typeof rawCost === 'string' ? Number(rawCost.replace(/^\$/, '')) : typeof rawCost === 'number' ? rawCost : null;
  return {
    stage,
    analyzer,
    answers,
    input_tokens: num('input_tokens'),
    output_tokens: num('output_tokens'),
    cost_usd: cost === null || Number.isNaN(cost) ? null : cost,
  };
}
