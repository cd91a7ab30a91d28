// Reading a task list back (every form the reference and we have written):
// what import-report and the one-off commands read.
import { aType, getOwn } from './filters.ts';
import { isJsonObject } from '../util/pyjson.ts';
import type { PyJsonValue } from '../util/pyjson.ts';


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
