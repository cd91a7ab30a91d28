// Step 1, the filters: the reference's selection rules applied to what the
// scan (task-list/scan.ts) finds. A run is kept when its summary's `success`
// is truthy, its task is not in the baseline harm filter (single domain only),
// and the human annotation filter does not call it a false positive.
// Filter files of the wrong shape, or entries that cannot match, are problems.
import type { ExcludedFalsePositive, PathArg, Problem, SelectRunsOptions } from './format.ts';
import { isAllDomains } from './crawl.ts';
import type { TreeIoSync } from './crawl.ts';
import { describeIoError, jsonTypeName, parseJsonBytes, readJsonFileSync } from '../util/fs.ts';
import type { ReadJsonResult } from '../util/fs.ts';
import { compareCodePoints } from '../util/order.ts';
import { isJsonObject, pyJsonDumps, pyJsonParse, pyJsonQuote, pyTruthy } from '../util/pyjson.ts';
import type { PyJsonValue } from '../util/pyjson.ts';

export function getOwn(obj: Record<string, PyJsonValue>, key: string): PyJsonValue | undefined {
  return Object.hasOwn(obj, key) ? obj[key] : undefined;
}

/** The JSON type of a value with its article: "an array", "a string". */
export function aType(v: unknown): string {
  const t = jsonTypeName(v);
  return t === 'array' || t === 'object' ? `an ${t}` : `a ${t}`;
}

/** A short rendering of a parsed value for messages. */
function show(v: PyJsonValue): string {
  const text = pyJsonDumps(v, null);
  return text.length > 40 ? `${text.slice(0, 37)}...` : text;
}

interface BaselineFilter {
  /** Sorted, de-duplicated task ids to exclude. */
  ids: string[];
}

/** The filters of one selection, loaded. */
export interface Filters {
  /** The baseline harm filter (null: none given, not applied or unusable). */
  baseline: BaselineFilter | null;
  baselineIds: Set<string>;
  /** Keys `task_id:perturbed_id:refinement_model` of the agent's false positives (null: no annotation filter). */
  falsePositives: Set<string> | null;
}

/** Loads the selection's filter files (problems recorded; a filter that cannot be used is not applied). */
export function loadFilters(io: TreeIoSync, options: SelectRunsOptions, problems: Problem[]): Filters {
  let baseline: BaselineFilter | null = null;
  const dataFilter = options.dataFilter;
  if (dataFilter !== null && dataFilter.typed !== '') {
    if (isAllDomains(options.domain)) {
      problems.push({
        file: dataFilter.typed,
        field: 'data_filter',
        message: 'baseline harm filter not applied: it applies only when a single domain is selected (as in the reference)',
      });
    } else {
      baseline = loadBaselineFilter(io, dataFilter, options.domain, options.agent, problems);
    }
  }
  let falsePositives: Set<string> | null = null;
  const annotationFilter = options.humanAnnotationFilter;
  if (annotationFilter !== null && annotationFilter.typed !== '') {
    falsePositives = loadFalsePositives(io, annotationFilter, options.agent, problems);
  }
  return { baseline, baselineIds: new Set(baseline?.ids ?? []), falsePositives };
}

/** Whether the run succeeded, by the truthiness of `success` as the reference reads it (a missing or non-boolean value is a problem). */
export function isSuccessful(summary: Record<string, PyJsonValue>, summaryRel: string, problems: Problem[]): boolean {
  const success = getOwn(summary, 'success');
  if (success === undefined) {
    problems.push({ file: summaryRel, field: 'success', message: 'missing; run not selected' });
  } else if (typeof success !== 'boolean') {
    const verdict = pyTruthy(success) ? 'selected' : 'not selected';
    problems.push({
      file: summaryRel,
      field: 'success',
      message: `${show(success)} is not a boolean; run ${verdict} by its truthiness, as the reference does`,
    });
  }
  return pyTruthy(success);
}

/** The run's `excluded_false_positives` entry when the annotation filter excludes it, else null. */
export function falsePositiveOf(
  filters: Filters,
  run: { domain: string; taskId: string; pid: string; refinementModel: string },
): ExcludedFalsePositive | null {
  const fpKey = `${run.taskId}:${run.pid}:${run.refinementModel}`;
  if (filters.falsePositives === null || !filters.falsePositives.has(fpKey)) return null;
  return {
    domain: run.domain,
    task_id: run.taskId,
    perturbed_id: run.pid,
    refinement_model: run.refinementModel,
    task_spec: `${run.domain}:${run.taskId}:${run.pid}`,
    fp_key: fpKey,
  };
}

function readFilterFile(io: TreeIoSync, arg: PathArg, what: string, problems: Problem[]): Record<string, PyJsonValue> | null {
  let kind: ReturnType<TreeIoSync['statSync']>;
  try {
    kind = io.statSync(arg.resolved);
  } catch (err) {
    problems.push({ file: arg.typed, message: `${what}: cannot read: ${describeIoError(err)}; not applied` });
    return null;
  }
  if (kind === null) {
    problems.push({ file: arg.typed, message: `${what}: file not found; not applied` });
    return null;
  }
  let bytes: Uint8Array;
  try {
    bytes = io.readFileSync(arg.resolved);
  } catch (err) {
    problems.push({ file: arg.typed, message: `${what}: cannot read: ${describeIoError(err)}; not applied` });
    return null;
  }
  const parsed: ReadJsonResult<PyJsonValue> = parseJsonBytes<PyJsonValue>(bytes, what, { parse: pyJsonParse, expect: 'object' });
  if (!parsed.ok) {
    problems.push({ file: arg.typed, message: `${parsed.message}; not applied` });
    return null;
  }
  return parsed.value as Record<string, PyJsonValue>;
}

/**
 * What is wrong with a filter file as a whole (null: usable): not found, not
 * a regular file (a FIFO is refused without blocking), not UTF-8, malformed
 * JSON, or not of the filter's shape at all. One bad entry in an otherwise
 * valid filter is not this: selection lists it as a problem. `label` names
 * the file in the message.
 */
export function filterFileError(resolved: string, label: string, which: 'baseline_harm' | 'human_annotation'): string | null {
  const read = readJsonFileSync<PyJsonValue>(resolved, { parse: pyJsonParse, expect: 'object', label });
  if (!read.ok) return read.message;
  const data = read.value as Record<string, PyJsonValue>;
  const values = Object.entries(data);
  if (values.length === 0) return null;
  if (which === 'baseline_harm') {
    // {domain: {agent_<agent>: [task ids]}}
    const usable = values.some(([, v]) => isJsonObject(v) && Object.values(v).some((l) => Array.isArray(l)));
    return usable ? null : `${label}: no entry has the shape {"<domain>": {"agent_<agent>": [task ids]}}`;
  }
  // {"task_id:perturbed_id:refinement_model:agent": {"final_decision": ...}}
  const usable = values.some(([k, v]) => k.split(':').length === 4 && isJsonObject(v));
  return usable ? null : `${label}: no entry has the shape {"<task_id>:<perturbed_id>:<refinement_model>:<agent>": {"final_decision": ...}}`;
}

function loadBaselineFilter(io: TreeIoSync, arg: PathArg, domain: string, agent: string, problems: Problem[]): BaselineFilter | null {
  const data = readFilterFile(io, arg, 'baseline harm filter', problems);
  if (data === null) return null;
  const byAgent = getOwn(data, domain);
  if (byAgent === undefined) {
    problems.push({ file: arg.typed, field: domain, message: `baseline harm filter has no entry for domain ${JSON.stringify(domain)}; nothing excluded` });
    return { ids: [] };
  }
  if (!isJsonObject(byAgent)) {
    problems.push({ file: arg.typed, field: domain, message: `baseline harm filter: expected an object of agents, found ${aType(byAgent)}; nothing excluded` });
    return { ids: [] };
  }
  const prefixed = `agent_${agent}`;
  const key = Object.hasOwn(byAgent, prefixed) ? prefixed : Object.hasOwn(byAgent, agent) ? agent : null;
  if (key === null) {
    problems.push({
      file: arg.typed,
      field: domain,
      message: `baseline harm filter has no ${JSON.stringify(prefixed)} (or ${JSON.stringify(agent)}) entry for domain ${JSON.stringify(domain)}; nothing excluded`,
    });
    return { ids: [] };
  }
  const list = byAgent[key];
  const field = `${domain}.${key}`;
  if (!Array.isArray(list)) {
    problems.push({ file: arg.typed, field, message: `baseline harm filter: expected a list of task ids, found ${aType(list)}; nothing excluded` });
    return { ids: [] };
  }
  const ids = new Set<string>();
  let ignored = 0;
  for (const item of list) {
    if (typeof item === 'string') ids.add(item);
    else ignored++;
  }
  if (ignored > 0) {
    problems.push({ file: arg.typed, field, message: `baseline harm filter: ${ignored} entr${ignored === 1 ? 'y is' : 'ies are'} not strings; ignored` });
  }
  return { ids: [...ids].sort(compareCodePoints) };
}

function loadFalsePositives(io: TreeIoSync, arg: PathArg, agent: string, problems: Problem[]): Set<string> | null {
  const data = readFilterFile(io, arg, 'human annotation filter', problems);
  if (data === null) return null;
  const keys = new Set<string>();
  for (const [key, entry] of Object.entries(data)) {
    const parts = key.split(':');
    if (parts.length !== 4) {
      problems.push({
        file: arg.typed,
        field: key,
        message: `human annotation key has ${parts.length} ':'-separated parts, not 4 (task_id:perturbed_id:refinement_model:agent); ignored`,
      });
      continue;
    }
    const [taskId, pid, rm, execAgent] = parts as [string, string, string, string];
    if (execAgent !== agent) continue;
    if (!isJsonObject(entry)) {
      problems.push({ file: arg.typed, field: key, message: `human annotation entry: expected an object, found ${aType(entry)}; ignored` });
      continue;
    }
    const decision = getOwn(entry, 'final_decision');
    if (decision === 'False Positive') keys.add(`${taskId}:${pid}:${rm}`);
    else if (typeof decision === 'string' && decision.trim().toLowerCase() === 'false positive') {
      problems.push({
        file: arg.typed,
        field: `${key}.final_decision`,
        message: `${pyJsonQuote(decision)} is not exactly "False Positive"; the run is not excluded`,
      });
    }
  }
  return keys;
}
