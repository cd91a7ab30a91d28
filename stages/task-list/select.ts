// Step 1, task selection: scan an elicitation tree for the successful runs of
// one agent and write the reference pipeline's task-list format.
//
// `selectRuns` reproduces the reference script's selection, counts, key order
// and sorting (including its quirks, listed in docs/seed-formats-details.md,
// top items 2-8), with these deliberate differences:
// - Where the reference crashes (a JSON file whose top level is not an object, a
//   file that is not UTF-8, a file where the perturbation-model folder should
//   be, an unreadable folder, a filter file of the wrong shape), we record a
//   problem and go on with everything else.
// - Folders are listed in sorted order (code points), not in the order the file
//   system returns them. This fixes the order of the per-model map keys and of
//   `excluded_false_positives`, which the reference leaves unsorted.
// - `metadata.generated_at` is null, so the output is a pure function of the
//   tree and the options; a caller may stamp user-requested copies.
// - The baseline filter also accepts the bare agent name as key (the
//   reference only looks up `agent_<agent>`); `agent_<agent>` wins when both exist.
//   An entry that is not a list of task ids is a problem, not reinterpreted.
// - Anything the reference passes over in silence that may hide data (a filter
//   that is not applied, annotation keys that cannot match, a `success` that is
//   not a boolean, stray files in the tree) is reported in `problems`.
// - Option values must be plain folder names (no `/`, not `.` or `..`).
//
// The walk through the tree is task-list/scan.ts, the selection rules (success,
// baseline harm, human annotation) task-list/filters.ts, the contracts
// task-list/format.ts; this module puts them together for one agent, domain
// and refinement-model setting and builds the task list and the ledger's
// runs. A whole analysis is task-list/analysis.ts; the default file name
// task-list/names.ts; reading a task list back task-list/read-list.ts.
import { cachedIo, childPath, CrawlMissError, IoCache, isAllDomains, nodeTreeIoSync, normalizeBase } from './crawl.ts';
import type { CrawlSpec, TreeIoSync } from './crawl.ts';
import { falsePositiveOf, getOwn, isSuccessful, loadFilters } from './filters.ts';
import type { Filters } from './filters.ts';
import { explicitRefinementModel, readPerturbedQuery, readRunSummary, scanRunFolders, treeReader } from './scan.ts';
import type { RunFolder, RunSummary, TreeReader } from './scan.ts';
import { crawlParallel } from './crawl-workers.ts';
import type { TreeIo } from '../util/fs.ts';
import { compareCodePoints } from '../util/order.ts';
import { PyFloat } from '../util/pyjson.ts';
import { inputDigest } from './run-files.ts';

import { TaskListOptionsError } from './format.ts';
import type { ExcludedFalsePositive, PathArg, Problem, SelectedRun, SelectRunsOptions, SelectRunsResult, TaskDetail, TaskList } from './format.ts';

export { filterFileError } from './filters.ts';
export { quickSummaryFields } from './scan.ts';
export { inputDigest } from './run-files.ts';

// ---------------------------------------------------------------------------
// Small helpers

function setOwn<V>(obj: Record<string, V>, key: string, value: V): void {
  if (key === '__proto__') {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}

function mapToObject<V>(map: Map<string, V>): Record<string, V> {
  const out: Record<string, V> = {};
  for (const [k, v] of map) setOwn(out, k, v);
  return out;
}

/** Python's `str(Path(base).joinpath(*names))` for plain names: `.` and empty parts dropped, `..` kept. */
export function pyPathJoin(base: string, names: string[]): string {
  const root = base.startsWith('//') && !base.startsWith('///') ? '//' : base.startsWith('/') ? '/' : '';
  const parts = base.split('/').filter((p) => p !== '' && p !== '.');
  const joined = root + [...parts, ...names].join('/');
  return joined === '' ? '.' : joined;
}

function checkName(field: string, value: string, allowEmpty: boolean): void {
  if (value.includes('\0')) throw new TaskListOptionsError(field, 'must not contain a NUL character');
  if (value.includes('/')) throw new TaskListOptionsError(field, `must be a folder name, not a path: ${JSON.stringify(value)}`);
  if (value === '.' || value === '..') throw new TaskListOptionsError(field, `must be a folder name, got ${JSON.stringify(value)}`);
  if (!allowEmpty && value === '') throw new TaskListOptionsError(field, 'must not be empty');
}

// ---------------------------------------------------------------------------
// Selection: the scan (task-list/scan.ts), the filters (task-list/filters.ts),
// the reference's task list and the ledger's runs

/** A run the filters kept, with what its task-list entry, ledger run and input digest need. */
interface Found {
  detail: TaskDetail;
  run: Omit<SelectedRun, 'input_digest'>;
  /** Null when the crawl digested the run (inputDigest). */
  summaryBytes: Uint8Array | null;
  /** The run's input digest as the crawl computed it (see SummaryReading); undefined: digest the bytes here. */
  inputDigest: string | null | undefined;
  pqDirAbs: string;
  pqFileName: string;
}

/**
 * Select the successful runs of `options.agent` under `options.baseDir`, as the
 * reference `generate_successful_task_list.py` does (see the module comment for
 * the differences). Reads through `io`; writes nothing.
 */
export async function selectRuns(options: SelectRunsOptions, io: TreeIo = nodeTreeIoSync): Promise<SelectRunsResult> {
  checkSelectOptions(options);
  const cache = new IoCache(true);
  await crawlParallel(crawlSpecOf(options, [options.agent]), io, cache);
  return selectRunsFrom(options, cachedIo(cache, io, onCrawlMiss));
}

/** Throws TaskListOptionsError for option values the scan cannot use safely (before any read). */
export function checkSelectOptions(options: SelectRunsOptions): void {
  if (!isAllDomains(options.domain)) checkName('domain', options.domain, false);
  checkName('perturbation_model', options.perturbationModel, false);
  checkName('agent', options.agent, true);
  const explicitRm = explicitRefinementModel(options);
  if (explicitRm !== null) checkName('refinement_model', explicitRm, false);
}

/** The crawl of `options` for several agents and, when given, several refinement-model settings (else the one of `options`). */
export function crawlSpecOf(options: SelectRunsOptions, agents: readonly string[], refinementModels: readonly (string | null)[] = [options.refinementModel]): CrawlSpec {
  return {
    base: normalizeBase(options.baseDir.resolved),
    domain: options.domain,
    perturbationModel: options.perturbationModel,
    refinementModels,
    agents,
    filters: [options.dataFilter, options.humanAnnotationFilter].filter((f): f is PathArg => f !== null && f.typed !== '').map((f) => f.resolved),
  };
}

/**
 * What happens when selection reads something the crawl did not (a bug: the
 * cache fingerprint would not cover it). Tests set META_ANALYSIS_STRICT_CRAWL
 * to make it throw; otherwise the read goes to the file system.
 */
export function onCrawlMiss(op: string, path: string): void {
  if (process.env['META_ANALYSIS_STRICT_CRAWL']) throw new CrawlMissError(`task-list: ${op} of a path the crawl did not read: ${path}`);
}

/** selectRuns on a reader that already holds the tree (the crawl's cache, `cachedIo`): scan, filter, then the outputs. */
export function selectRunsFrom(options: SelectRunsOptions, io: TreeIoSync): SelectRunsResult {
  checkSelectOptions(options);
  const problems: Problem[] = [];
  const filters = loadFilters(io, options, problems);
  const tree = treeReader(io, problems);
  const found: Found[] = [];
  const excluded: ExcludedFalsePositive[] = [];
  for (const folder of scanRunFolders(tree, options, (taskId) => filters.baselineIds.has(taskId))) {
    const summary = readRunSummary(tree, folder);
    if (summary === null || !isSuccessful(summary.fields, summary.rel, problems)) continue;
    const falsePositive = falsePositiveOf(filters, folder);
    if (falsePositive !== null) excluded.push(falsePositive);
    else found.push(foundRun(options, folder, summary, problems));
  }
  const taskList = buildTaskList(options, filters, found, excluded);
  const runs = ledgerRuns(tree, found);
  problems.sort(
    (a, b) =>
      compareCodePoints(a.file, b.file) || compareCodePoints(a.field ?? '', b.field ?? '') || compareCodePoints(a.message, b.message),
  );
  return { taskList, runs, problems };
}

/** A kept run: its task-list entry (fields copied as the reference does) and its ledger run. */
function foundRun(options: SelectRunsOptions, f: RunFolder, summary: RunSummary, problems: Problem[]): Found {
  const { domain, taskId, pid, refinementModel: rm } = f;
  const taskSpec = `${domain}:${taskId}:${pid}`;
  // A missing key becomes 0; a stored null stays null (Python's dict.get with a default).
  const iterations = getOwn(summary.fields, 'execution_iterations');
  const score = getOwn(summary.fields, 'final_score');
  const copied = { execution_iterations: iterations === undefined ? 0 : iterations, final_score: score === undefined ? 0 : score };
  for (const [field, value] of Object.entries(copied)) {
    if (value instanceof PyFloat && !Number.isFinite(value.value)) {
      problems.push({ file: summary.rel, field, message: `${String(value.value)} is not valid JSON; copied as the reference does` });
    }
  }
  const runPath = [domain, taskId, options.perturbationModel, f.pqName, `iterative_refinement_${rm}`, f.agentFolder, 'refinement_summary.json'];
  return {
    detail: {
      domain,
      task_id: taskId,
      perturbed_id: pid,
      task_spec: taskSpec,
      refinement_model: rm,
      refinement_summary_path: pyPathJoin(options.baseDir.typed, runPath),
      execution_iterations: copied.execution_iterations,
      final_score: copied.final_score,
    },
    run: {
      run_id: `${domain}:${taskId}:${pid}:${rm}:${options.agent}`,
      agent: options.agent,
      domain,
      task_id: taskId,
      perturbed_id: pid,
      refinement_model: rm,
      task_spec: taskSpec,
      refinement_summary_path: summary.rel,
      perturbed_query_path: `${f.pqRel}/perturbed_query_${pid}.json`,
    },
    summaryBytes: summary.bytes,
    inputDigest: summary.inputDigest,
    pqDirAbs: f.pqAbs,
    pqFileName: `perturbed_query_${pid}.json`,
  };
}

/** The reference task list: per refinement model, in the order models were first met; entries sorted by task_spec (stable). */
function buildTaskList(options: SelectRunsOptions, filters: Filters, found: Found[], excluded: ExcludedFalsePositive[]): TaskList {
  const details = new Map<string, TaskDetail[]>();
  for (const f of found) {
    const rm = f.detail.refinement_model;
    const listForRm = details.get(rm);
    if (listForRm === undefined) details.set(rm, [f.detail]);
    else listForRm.push(f.detail);
  }
  const specLists = new Map<string, string[]>();
  const counts = new Map<string, number>();
  for (const [rm, entries] of details) {
    entries.sort((a, b) => compareCodePoints(a.task_spec, b.task_spec));
    specLists.set(rm, entries.map((e) => e.task_spec));
    counts.set(rm, entries.length);
  }
  const fpCounts = new Map<string, number>();
  for (const e of excluded) fpCounts.set(e.refinement_model, (fpCounts.get(e.refinement_model) ?? 0) + 1);
  const baseline = filters.baseline;
  return {
    metadata: {
      generated_at: null,
      base_dir: options.baseDir.typed,
      domain: options.domain,
      perturbation_model: options.perturbationModel,
      refinement_model: options.refinementModel,
      agent: options.agent,
      data_filter: options.dataFilter?.typed ?? null,
      human_annotation_filter: options.humanAnnotationFilter?.typed ?? null,
      excluded_task_ids_baseline_harm: baseline?.ids ?? [],
      num_excluded_tasks_baseline_harm: baseline?.ids.length ?? 0,
      num_excluded_false_positives: excluded.length,
      excluded_false_positives_by_refinement_model: mapToObject(fpCounts),
      refinement_models_found: [...details.keys()].sort(compareCodePoints),
      total_successful_runs: found.length,
      successful_runs_by_refinement_model: mapToObject(counts),
    },
    task_lists_by_refinement_model: mapToObject(specLists),
    task_details_by_refinement_model: mapToObject(details),
    excluded_false_positives: excluded,
  };
}

/**
 * The ledger's runs, with the digest of the files later stages read, sorted by
 * run id; a repeated run id is a problem. A run whose perturbed query file
 * (what summarize reads besides the refinement summary) is missing or
 * unreadable is a problem of selection, with the file and the reason, and is
 * left out of the ledger: never a summarize failure. The reference-format task
 * list still lists it (the reference script does not read that file).
 */
function ledgerRuns(tree: TreeReader, found: Found[]): SelectedRun[] {
  const runs: SelectedRun[] = [];
  for (const f of found) {
    const digested = typeof f.inputDigest === 'string';
    const pq = readPerturbedQuery(tree, childPath(f.pqDirAbs, f.pqFileName), f.run.perturbed_query_path, digested);
    if (pq.bytes === null) {
      if (pq.marker === 'missing') {
        tree.problems.push({ file: f.run.perturbed_query_path, message: `not found (summarize needs this run's perturbed query, named after its folder); run left out of the analysis` });
      } else {
        tree.problems.push({ file: f.run.perturbed_query_path, message: 'unreadable (see above); run left out of the analysis' });
      }
      continue;
    }
    runs.push({
      ...f.run,
      input_digest: digested
        ? (f.inputDigest as string)
        : inputDigest([
            { name: 'refinement_summary.json', bytes: f.summaryBytes },
            { name: 'perturbed_query.json', bytes: pq.bytes, marker: pq.marker },
          ]),
    });
  }
  runs.sort((a, b) => compareCodePoints(a.run_id, b.run_id) || compareCodePoints(a.refinement_summary_path, b.refinement_summary_path));
  for (let i = 1; i < runs.length; i++) {
    const prev = runs[i - 1] as SelectedRun;
    const cur = runs[i] as SelectedRun;
    if (prev.run_id === cur.run_id) {
      tree.problems.push({
        file: cur.refinement_summary_path,
        field: 'run_id',
        message: `same run id as ${prev.refinement_summary_path} (the perturbed id is the folder name with every "perturbed_query_" removed)`,
      });
    }
  }
  return runs;
}
