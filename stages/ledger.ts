// The ledger: the task-list stage's list of every selected run. Later stages
// account for every run in it (done, or failed with a reason).

export interface LedgerRun {
  /** `<domain>:<task_id>:<perturbed_id>:<refinement_model>:<agent>`: unique across agents and models. */
  run_id: string;
  agent: string;
  domain: string;
  task_id: string;
  perturbed_id: string;
  refinement_model: string;
  task_spec: string;
  /** Relative to the data root, posix separators. */
  refinement_summary_path: string;
  perturbed_query_path: string;
  /** sha256 over the input files later stages read: a changed run is visible downstream. */
  input_digest: string;
}

export interface Problem {
  /** Relative to the data root (or the workspace for filter files). */
  file: string;
  field?: string;
  message: string;
}

export interface Ledger {
  analysis: string;
  /** As written in pipeline.yaml. */
  data_root: string;
  agents: string[];
  task_list_files: Record<string, string>;
  runs: LedgerRun[];
  problems: Problem[];
}

export interface FailedRun {
  run_id: string;
  stage: string;
  reason: string;
}

/**
 * The relative folder of a run's per-run outputs: mirrors the input tree, one
 * component per field. The mapping is injective and cannot leave the folder it
 * is joined to: a character outside [A-Za-z0-9._-] is percent-encoded (its
 * UTF-8 bytes as %XX), and so is a component made only of dots ("." and ".."),
 * so two different runs never share a path ("dup task" -> "dup%20task",
 * "dup_task" stays). An empty component becomes "%" (no encoding yields it).
 */
export function runOutputPath(run: LedgerRun): string {
  return [run.domain, run.task_id, run.perturbed_id, run.refinement_model, run.agent].map(pathComponent).join('/');
}

function pathComponent(s: string): string {
  if (s === '') return '%';
  const encode = (ch: string) => [...new TextEncoder().encode(ch)].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
  if (/^\.+$/.test(s)) return encode(s);
  return s.replace(/[^A-Za-z0-9._-]/gu, encode);
}

/**
 * Ids shown to an LLM and written into categorization examples: the reference's
 * `<task_id>:<perturbed_id>` when that pair is unique in the analysis, else the
 * full `<task_id>:<perturbed_id>:<refinement_model>:<agent>` (the benchmark's
 * example_id form), so no two runs ever share an id.
 */
export function promptIds(runs: readonly LedgerRun[]): Map<string, string> {
  const count = new Map<string, number>();
  for (const r of runs) {
    const k = `${r.task_id}:${r.perturbed_id}`;
    count.set(k, (count.get(k) ?? 0) + 1);
  }
  const ids = new Map<string, string>();
  for (const r of runs) {
    const k = `${r.task_id}:${r.perturbed_id}`;
    ids.set(r.run_id, count.get(k) === 1 ? k : `${k}:${r.refinement_model}:${r.agent}`);
  }
  return ids;
}
