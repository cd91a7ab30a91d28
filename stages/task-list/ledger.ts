// The ledger: the task-list stage's list of every selected run. Later stages
// account for every run in it (done, or failed with a reason).
import { z } from 'zod';

/** task-list/runs.json: the ledger's file name in the task-list output. */
export const LEDGER_FILE = 'runs.json';

const ledgerRun = z.object({
  /** `<domain>:<task_id>:<perturbed_id>:<refinement_model>:<agent>`: unique across agents and models. */
  run_id: z.string(),
  agent: z.string(),
  domain: z.string(),
  task_id: z.string(),
  perturbed_id: z.string(),
  refinement_model: z.string(),
  task_spec: z.string(),
  /** Relative to the data root, posix separators. */
  refinement_summary_path: z.string(),
  perturbed_query_path: z.string(),
  /** sha256 over the input files later stages read: a changed run is visible downstream. */
  input_digest: z.string(),
});

export type LedgerRun = z.infer<typeof ledgerRun>;

const problem = z.object({
  /** Relative to the data root (or the workspace for filter files). */
  file: z.string(),
  field: z.string().optional(),
  message: z.string(),
});

export type Problem = z.infer<typeof problem>;

/** A run a stage could not take further, and why (listed in the stage's output). */
export const failedRun = z.object({ run_id: z.string(), stage: z.string(), reason: z.string() });

export type FailedRun = z.infer<typeof failedRun>;

/** runs.json, the one shape of the ledger: the task-list stage writes it, every later stage reads it (checked). */
export const ledgerFile = z.object({
  analysis: z.string(),
  /** As written in pipeline.yaml. */
  data_root: z.string(),
  agents: z.array(z.string()),
  task_list_files: z.record(z.string(), z.string()),
  runs: z.array(ledgerRun),
  problems: z.array(problem),
});

export type Ledger = z.infer<typeof ledgerFile>;

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
