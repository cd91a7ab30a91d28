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
// baseline harm, human annotation) task-list/filters.ts; this module puts them
// together and builds the task list and the ledger's runs.
import type { LedgerRun, Problem as LedgerProblem } from './ledger.ts';
import { createHash } from 'node:crypto';
import { cachedIo, childPath, crawlDigest, CrawlMissError, IoCache, isAllDomains, nodeTreeIoSync, normalizeBase } from './crawl.ts';
import type { CrawlSpec } from './crawl.ts';
import { aType, falsePositiveOf, getOwn, isSuccessful, loadFilters } from './filters.ts';
import type { Filters } from './filters.ts';
import { explicitRefinementModel, readPerturbedQuery, readRunSummary, scanRunFolders, treeReader } from './scan.ts';
import type { RunFolder, RunSummary, TreeReader } from './scan.ts';
import { crawlParallel } from './crawl-workers.ts';
import type { TreeIo } from '../util/fs.ts';
import { compareCodePoints } from '../util/order.ts';
import { isJsonObject, PyFloat } from '../util/pyjson.ts';
import type { PyJsonValue } from '../util/pyjson.ts';

export { filterFileError } from './filters.ts';
export { quickSummaryFields } from './scan.ts';

/** The reference script's defaults. */
export const TASK_LIST_DEFAULTS = {
  baseDir: '../perturbed_queries',
  domain: 'multi_apps_test',
  perturbationModel: 'o4-mini-2025-04-16',
  agent: 'claude-haiku-4-5-20251001',
} as const;

/** The agents the reference script accepts (`--agent` choices). */
export const REFERENCE_AGENTS = ['claude-haiku-4-5-20251001', 'claude-opus-4-5-20251101', 'computer-use-preview'] as const;

/** A path option: the string as the user typed it (copied into metadata) and where it points. */
export interface PathArg {
  typed: string;
  /** Absolute path used for reading. */
  resolved: string;
}

export interface SelectRunsOptions {
  baseDir: PathArg;
  /** A domain folder name, or `all` (any case) or `""` for every domain. */
  domain: string;
  perturbationModel: string;
  /** A refinement model folder name (without `iterative_refinement_`); null or `""` discovers them. */
  refinementModel: string | null;
  /** The agent name (folder `agent_<agent>`). */
  agent: string;
  /** Baseline harm filter; applied only when one domain is selected. */
  dataFilter: PathArg | null;
  humanAnnotationFilter: PathArg | null;
}

/** One entry of `task_details_by_refinement_model` (reference key order). */
export interface TaskDetail {
  domain: string;
  task_id: string;
  perturbed_id: string;
  task_spec: string;
  refinement_model: string;
  /** The typed base_dir joined with the run path, cleaned up as Python's pathlib does. */
  refinement_summary_path: string;
  /** Copied from refinement_summary.json as stored (0 when the key is missing). */
  execution_iterations: PyJsonValue;
  final_score: PyJsonValue;
}

export interface ExcludedFalsePositive {
  domain: string;
  task_id: string;
  perturbed_id: string;
  refinement_model: string;
  task_spec: string;
  fp_key: string;
}

export interface TaskListMetadata {
  generated_at: string | null;
  base_dir: string;
  domain: string;
  perturbation_model: string;
  refinement_model: string | null;
  agent: string;
  data_filter: string | null;
  human_annotation_filter: string | null;
  excluded_task_ids_baseline_harm: string[];
  num_excluded_tasks_baseline_harm: number;
  num_excluded_false_positives: number;
  excluded_false_positives_by_refinement_model: Record<string, number>;
  refinement_models_found: string[];
  total_successful_runs: number;
  successful_runs_by_refinement_model: Record<string, number>;
}

/** The reference task-list file. */
export interface TaskList {
  metadata: TaskListMetadata;
  task_lists_by_refinement_model: Record<string, string[]>;
  task_details_by_refinement_model: Record<string, TaskDetail[]>;
  excluded_false_positives: ExcludedFalsePositive[];
}

/** One selected run, as later stages address it (the ledger's run). */
export type SelectedRun = LedgerRun;

/** An unreadable or malformed file or entry: file relative to the data root (`.` for the root), a filter file as typed. */
export type Problem = LedgerProblem;

export interface SelectRunsResult {
  taskList: TaskList;
  runs: SelectedRun[];
  problems: Problem[];
}

/** Thrown for option values the scan cannot use safely. */
export class TaskListOptionsError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'TaskListOptionsError';
    this.field = field;
  }
}

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

/** Framing of the digest input: each file by name, then its length and bytes, or a marker. */
export function inputDigest(files: { name: string; bytes: Uint8Array | null; marker?: string }[]): string {
  const h = createHash('sha256');
  for (const f of files) {
    h.update(`${f.name}\0`);
    if (f.bytes === null) h.update(`${f.marker ?? 'missing'}\0`);
    else {
      h.update(`${f.bytes.length}\0`);
      h.update(f.bytes);
    }
  }
  return h.digest('hex');
}

// ---------------------------------------------------------------------------
// Selection: the scan (task-list/scan.ts), the filters (task-list/filters.ts),
// the reference's task list and the ledger's runs

/** A run the filters kept, with what its task-list entry, ledger run and input digest need. */
interface Found {
  detail: TaskDetail;
  run: Omit<SelectedRun, 'input_digest'>;
  summaryBytes: Uint8Array;
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
function checkSelectOptions(options: SelectRunsOptions): void {
  if (!isAllDomains(options.domain)) checkName('domain', options.domain, false);
  checkName('perturbation_model', options.perturbationModel, false);
  checkName('agent', options.agent, true);
  const explicitRm = explicitRefinementModel(options);
  if (explicitRm !== null) checkName('refinement_model', explicitRm, false);
}

function crawlSpecOf(options: SelectRunsOptions, agents: readonly string[]): CrawlSpec {
  return {
    base: normalizeBase(options.baseDir.resolved),
    domain: options.domain,
    perturbationModel: options.perturbationModel,
    refinementModel: options.refinementModel,
    agents,
    filters: [options.dataFilter, options.humanAnnotationFilter].filter((f): f is PathArg => f !== null && f.typed !== '').map((f) => f.resolved),
  };
}

/**
 * What happens when selection reads something the crawl did not (a bug: the
 * cache fingerprint would not cover it). Tests set META_ANALYSIS_STRICT_CRAWL
 * to make it throw; otherwise the read goes to the file system.
 */
function onCrawlMiss(op: string, path: string): void {
  if (process.env['META_ANALYSIS_STRICT_CRAWL']) throw new CrawlMissError(`task-list: ${op} of a path the crawl did not read: ${path}`);
}

/** selectRuns on a reader that already holds the tree (the crawl's cache): scan, filter, then the outputs. */
async function selectRunsFrom(options: SelectRunsOptions, io: TreeIo): Promise<SelectRunsResult> {
  checkSelectOptions(options);
  const problems: Problem[] = [];
  const filters = await loadFilters(io, options, problems);
  const tree = treeReader(io, problems);
  const found: Found[] = [];
  const excluded: ExcludedFalsePositive[] = [];
  for await (const folder of scanRunFolders(tree, options, (taskId) => filters.baselineIds.has(taskId))) {
    const summary = await readRunSummary(tree, folder);
    if (summary === null || !isSuccessful(summary.fields, summary.rel, problems)) continue;
    const falsePositive = falsePositiveOf(filters, folder);
    if (falsePositive !== null) excluded.push(falsePositive);
    else found.push(foundRun(options, folder, summary, problems));
  }
  const taskList = buildTaskList(options, filters, found, excluded);
  const runs = await ledgerRuns(tree, found);
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

/** The ledger's runs, with the digest of the files later stages read, sorted by run id; a repeated run id is a problem. */
async function ledgerRuns(tree: TreeReader, found: Found[]): Promise<SelectedRun[]> {
  const runs: SelectedRun[] = [];
  for (const f of found) {
    const pq = await readPerturbedQuery(tree, childPath(f.pqDirAbs, f.pqFileName), f.run.perturbed_query_path);
    runs.push({
      ...f.run,
      input_digest: inputDigest([
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

// ---------------------------------------------------------------------------
// Default file name

export interface TaskListNameOptions {
  domain: string;
  agent: string;
  refinementModel: string | null;
  /** The filter paths as typed (only whether they are non-empty matters). */
  dataFilter: string | null;
  humanAnnotationFilter: string | null;
}

function two(n: number): string {
  return String(n).padStart(2, '0');
}

/** `YYYYmmdd_HHMMSS` in local time, as Python's `strftime("%Y%m%d_%H%M%S")`. */
export function formatTimestamp(d: Date): string {
  return `${String(d.getFullYear()).padStart(4, '0')}${two(d.getMonth() + 1)}${two(d.getDate())}_${two(d.getHours())}${two(d.getMinutes())}${two(d.getSeconds())}`;
}

/**
 * The reference's default output name:
 * `task_list_<domain | all_domains>_<agent, - as _>_<refinement model | all_refinement_models>[_0pct_baseline][_human_filtered]_<timestamp>.json`.
 * `_0pct_baseline` is added whenever a data filter is given, even with all domains.
 * A string timestamp is used as is; a Date is formatted in local time.
 */
export function defaultTaskListFileName(options: TaskListNameOptions, timestamp: Date | string): string {
  const stamp = typeof timestamp === 'string' ? timestamp : formatTimestamp(timestamp);
  const domain = isAllDomains(options.domain) ? 'all_domains' : options.domain;
  const agent = options.agent.replaceAll('-', '_');
  const rm = options.refinementModel ? `_${options.refinementModel}` : '_all_refinement_models';
  const filter = options.dataFilter ? '_0pct_baseline' : '';
  const human = options.humanAnnotationFilter ? '_human_filtered' : '';
  return `task_list_${domain}_${agent}${rm}${filter}${human}_${stamp}.json`;
}

// ---------------------------------------------------------------------------
// Reading a task list

/** One run as read back from a task-list file. */
export interface TaskListRun {
  domain: string;
  task_id: string;
  perturbed_id: string;
  refinement_model: string;
  task_spec: string;
  /** As stored (full form only); null otherwise. */
  refinement_summary_path: string | null;
  execution_iterations: PyJsonValue | null;
  final_score: PyJsonValue | null;
}

export type TaskListForm = 'full' | 'lists-only' | 'legacy';

export type ReadTaskListResult =
  | { ok: true; form: TaskListForm; agent: string | null; perturbationModel: string | null; runs: TaskListRun[] }
  | { ok: false; error: string };

function splitSpec(spec: unknown, field: string): { ok: true; parts: [string, string, string] } | { ok: false; error: string } {
  if (typeof spec !== 'string') return { ok: false, error: `${field}: expected a "domain:task_id:perturbed_id" string, found ${aType(spec)}` };
  const parts = spec.split(':');
  if (parts.length !== 3 || parts.some((p) => p === '')) {
    return { ok: false, error: `${field}: expected "domain:task_id:perturbed_id", found ${JSON.stringify(spec)}` };
  }
  return { ok: true, parts: parts as [string, string, string] };
}

function fromSpecs(lists: unknown, field: string, rmOf: (key: string) => string): { ok: true; runs: TaskListRun[] } | { ok: false; error: string } {
  const runs: TaskListRun[] = [];
  if (!isJsonObject(lists)) return { ok: false, error: `${field}: expected an object of lists, found ${aType(lists)}` };
  for (const [key, specs] of Object.entries(lists)) {
    if (!Array.isArray(specs)) return { ok: false, error: `${field}.${key}: expected a list, found ${aType(specs)}` };
    for (let i = 0; i < specs.length; i++) {
      const split = splitSpec(specs[i], `${field}.${key}[${i}]`);
      if (!split.ok) return split;
      const [domain, taskId, pid] = split.parts;
      runs.push({
        domain,
        task_id: taskId,
        perturbed_id: pid,
        refinement_model: rmOf(key),
        task_spec: specs[i] as string,
        refinement_summary_path: null,
        execution_iterations: null,
        final_score: null,
      });
    }
  }
  return { ok: true, runs };
}

/**
 * Read a parsed task-list file. Accepts the full reference format (runs from
 * `task_details_by_refinement_model`, which must agree with
 * `task_lists_by_refinement_model` when both are present), a file holding only
 * `task_lists_by_refinement_model`, and the legacy `{ "task_list": [...] }`
 * (then `refinementModel` must be given). Runs come refinement model by
 * refinement model in the file's key order, each in stored order. Errors name
 * the offending field.
 */
export function readTaskList(json: unknown, options: { refinementModel?: string | null } = {}): ReadTaskListResult {
  if (!isJsonObject(json)) return { ok: false, error: `task list: expected a JSON object, found ${aType(json)}` };
  const meta = getOwn(json, 'metadata');
  let agent: string | null = null;
  let perturbationModel: string | null = null;
  if (meta !== undefined && meta !== null) {
    if (!isJsonObject(meta)) return { ok: false, error: `metadata: expected an object, found ${aType(meta)}` };
    const a = getOwn(meta, 'agent');
    if (a !== undefined && a !== null && typeof a !== 'string') return { ok: false, error: `metadata.agent: expected a string, found ${aType(a)}` };
    agent = a ?? null;
    const pm = getOwn(meta, 'perturbation_model');
    if (pm !== undefined && pm !== null && typeof pm !== 'string') {
      return { ok: false, error: `metadata.perturbation_model: expected a string, found ${aType(pm)}` };
    }
    perturbationModel = pm ?? null;
  }

  const details = getOwn(json, 'task_details_by_refinement_model');
  const lists = getOwn(json, 'task_lists_by_refinement_model');
  if (details !== undefined) {
    const F = 'task_details_by_refinement_model';
    if (!isJsonObject(details)) return { ok: false, error: `${F}: expected an object of lists, found ${aType(details)}` };
    const runs: TaskListRun[] = [];
    for (const [rm, entries] of Object.entries(details)) {
      if (!Array.isArray(entries)) return { ok: false, error: `${F}.${rm}: expected a list, found ${aType(entries)}` };
      for (let i = 0; i < entries.length; i++) {
        const at = `${F}.${rm}[${i}]`;
        const e = entries[i];
        if (!isJsonObject(e)) return { ok: false, error: `${at}: expected an object, found ${aType(e)}` };
        const strings: Record<string, string> = {};
        for (const key of ['domain', 'task_id', 'perturbed_id', 'task_spec', 'refinement_model'] as const) {
          const v = getOwn(e, key);
          if (typeof v !== 'string') return { ok: false, error: `${at}.${key}: expected a string, found ${v === undefined ? 'nothing' : aType(v)}` };
          strings[key] = v;
        }
        const run: TaskListRun = {
          domain: strings.domain as string,
          task_id: strings.task_id as string,
          perturbed_id: strings.perturbed_id as string,
          refinement_model: strings.refinement_model as string,
          task_spec: strings.task_spec as string,
          refinement_summary_path: null,
          execution_iterations: getOwn(e, 'execution_iterations') ?? null,
          final_score: getOwn(e, 'final_score') ?? null,
        };
        if (run.refinement_model !== rm) {
          return { ok: false, error: `${at}.refinement_model: ${JSON.stringify(run.refinement_model)} differs from its key ${JSON.stringify(rm)}` };
        }
        if (run.task_spec !== `${run.domain}:${run.task_id}:${run.perturbed_id}`) {
          return { ok: false, error: `${at}.task_spec: ${JSON.stringify(run.task_spec)} is not domain:task_id:perturbed_id of the entry` };
        }
        const path = getOwn(e, 'refinement_summary_path');
        if (path !== undefined && path !== null && typeof path !== 'string') {
          return { ok: false, error: `${at}.refinement_summary_path: expected a string, found ${aType(path)}` };
        }
        run.refinement_summary_path = path ?? null;
        runs.push(run);
      }
    }
    if (lists !== undefined) {
      const fromLists = fromSpecs(lists, 'task_lists_by_refinement_model', (k) => k);
      if (!fromLists.ok) return fromLists;
      const a = runs.map((r) => `${r.refinement_model}\0${r.task_spec}`);
      const b = fromLists.runs.map((r) => `${r.refinement_model}\0${r.task_spec}`);
      if (a.length !== b.length || a.some((x, i) => x !== b[i])) {
        return { ok: false, error: 'task_lists_by_refinement_model: does not list the same runs, in the same order, as task_details_by_refinement_model' };
      }
    }
    return { ok: true, form: 'full', agent, perturbationModel, runs };
  }
  if (lists !== undefined) {
    const fromLists = fromSpecs(lists, 'task_lists_by_refinement_model', (k) => k);
    if (!fromLists.ok) return fromLists;
    return { ok: true, form: 'lists-only', agent, perturbationModel, runs: fromLists.runs };
  }
  const legacy = getOwn(json, 'task_list');
  if (legacy !== undefined) {
    const rm = options.refinementModel;
    if (rm === undefined || rm === null || rm === '') {
      return { ok: false, error: 'task_list: the legacy form names no refinement model; give one (refinement_model)' };
    }
    if (!Array.isArray(legacy)) return { ok: false, error: `task_list: expected a list, found ${aType(legacy)}` };
    const fromLists = fromSpecs({ [rm]: legacy }, 'task_list', () => rm);
    if (!fromLists.ok) return { ok: false, error: fromLists.error.replace(`task_list.${rm}`, 'task_list') };
    return { ok: true, form: 'legacy', agent, perturbationModel, runs: fromLists.runs };
  }
  return {
    ok: false,
    error: 'task list: none of task_details_by_refinement_model, task_lists_by_refinement_model or task_list (legacy) is present',
  };
}

// ---------------------------------------------------------------------------
// One analysis: every agent, domain and refinement-model setting

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

/** Crawls what the analysis' selection reads, every agent in one walk per domain and model setting. */
async function crawlAnalysis(o: AnalysisSelectionOptions, io: TreeIo, cache: IoCache): Promise<SelectRunsOptions[]> {
  const calls = selectionCalls(o);
  for (const c of calls) checkSelectOptions(c.options);
  const firstAgent = o.agents[0];
  const perSetting = calls.filter((c) => c.agent === firstAgent).map((c) => c.options);
  for (const options of perSetting) await crawlParallel(crawlSpecOf(options, o.agents), io, cache);
  return calls.map((c) => c.options);
}

/** The selection of one analysis: what the task-list target writes, and what a plan reads without writing. */
export async function selectAnalysis(o: AnalysisSelectionOptions, io: TreeIo = nodeTreeIoSync): Promise<AnalysisSelection> {
  const cache = new IoCache(true);
  await crawlAnalysis(o, io, cache);
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
      runs.push(...p.runs);
      problems.push(...p.problems);
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

/** The digest of a crawl, by path relative to the data root, filter files by their configured path. */
function fingerprintOf(cache: IoCache, o: AnalysisSelectionOptions): string {
  const labels = new Map<string, string>();
  for (const p of [o.dataFilter, o.humanAnnotationFilter]) if (p) labels.set(o.resolve(p), p);
  return crawlDigest(cache, normalizeBase(o.resolve(o.baseDir)), labels);
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
