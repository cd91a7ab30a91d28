// The task-list's contracts: the reference script's defaults and agents, the
// options of one selection, the reference task-list format (TaskList and its
// parts) and what a selection returns. The walk (scan.ts), the rules
// (filters.ts) and the selection (select.ts, analysis.ts) share them.
import type { LedgerRun, Problem as LedgerProblem } from './ledger.ts';
import type { PyJsonValue } from '../util/pyjson.ts';

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
