// The evaluation of a run's successful (COLLECT) iteration, from its
// refinement_summary.json: what the categorizer and the report show besides
// the summary. Summarize parses each run's file once and records this in its
// output (evaluations.json, one shape for writer and readers: below); later
// stages read that file, never the run's own. A run whose file cannot be read
// gets nulls; the summarize stage has already listed it as failed with the reason.
import { z } from 'zod';
import type { SummaryInput } from '../formats.ts';
import type { LedgerRun } from '../task-list/ledger.ts';
import { extractSummaryInput, isCollect, readRunFile, runFileValue } from './summary.ts';
import { readJsonFileSync } from '../util/fs.ts';
import type { ReadJsonResult } from '../util/fs.ts';
import { pyJsonParsePlain } from '../util/pyjson.ts';

export interface SuccessfulEvaluation {
  perturbed_instruction: string | null;
  severity: string | null;
  score: number | null;
  strategy: string | null;
  harmful: string[];
}

interface RawSummary {
  final_score?: unknown;
  execution_history?: {
    perturbed_instruction?: unknown;
    elicitation_strategy?: unknown;
    trajectory_evaluation?: { recommendation?: unknown; severity_assessment?: unknown; behavior_elicitation_score?: unknown; harmful_actions_observed?: unknown };
  }[];
}

export function readSuccessfulEvaluation(file: string): SuccessfulEvaluation {
  // The same reader as summarize's: what one stage accepts, the others do too.
  return successfulEvaluation(readJsonFileSync<RawSummary>(file, { parse: pyJsonParsePlain }));
}

/** What summarize reads of a ledger run: its id, its two files and their digest. */
export type RunFiles = Pick<LedgerRun, 'run_id' | 'refinement_summary_path' | 'perturbed_query_path' | 'input_digest'>;

/** A run's RunFiles, in an object of their own: summarize keeps these four fields of every run and lets the rest of the ledger go. */
export function runFilesOf(run: LedgerRun): RunFiles {
  return { run_id: run.run_id, refinement_summary_path: run.refinement_summary_path, perturbed_query_path: run.perturbed_query_path, input_digest: run.input_digest };
}

/**
 * A run's files, its refinement_summary.json parsed once: its successful
 * evaluation (nulls when unreadable), and its summary input (a RunInputError
 * names the file when either file is unusable).
 */
export function loadRun(dataRoot: string, run: RunFiles): { evaluation: SuccessfulEvaluation; input(): SummaryInput } {
  const rs = readRunFile(dataRoot, run.refinement_summary_path);
  return {
    evaluation: successfulEvaluation(rs),
    input: () => {
      const refinementSummary = runFileValue(rs, run.refinement_summary_path);
      return extractSummaryInput(run, refinementSummary, runFileValue(readRunFile(dataRoot, run.perturbed_query_path), run.perturbed_query_path));
    },
  };
}

/** The evaluation in a read of refinement_summary.json (nulls when it could not be read). */
export function successfulEvaluation(res: ReadJsonResult<unknown>): SuccessfulEvaluation {
  if (!res.ok) return { perturbed_instruction: null, severity: null, score: null, strategy: null, harmful: [] };
  const rs = res.value as RawSummary;
  const hist = Array.isArray(rs?.execution_history) ? rs.execution_history : [];
  const it = hist.findLast(isCollect);
  const ev = it?.trajectory_evaluation;
  const score = typeof ev?.behavior_elicitation_score === 'number' ? ev.behavior_elicitation_score : rs?.final_score;
  const harmful = Array.isArray(ev?.harmful_actions_observed) ? ev.harmful_actions_observed.filter((h): h is string => typeof h === 'string') : [];
  return {
    perturbed_instruction: typeof it?.perturbed_instruction === 'string' ? it.perturbed_instruction : null,
    severity: typeof ev?.severity_assessment === 'string' ? ev.severity_assessment : null,
    score: typeof score === 'number' ? score : null,
    strategy: typeof it?.elicitation_strategy === 'string' ? it.elicitation_strategy : null,
    harmful,
  };
}

/** summarize/evaluations.json: per run id, what later stages show of its evaluation. */
export const EVALUATIONS_FILE = 'evaluations.json';

const runEvaluation = z.object({
  severity: z.string().nullable(),
  score: z.number().nullable(),
  strategy: z.string().nullable(),
  harmful: z.array(z.string()),
}).strict();

export type RunEvaluation = z.infer<typeof runEvaluation>;

export const evaluationsFile = z.object({ runs: z.record(z.string(), runEvaluation) }).strict();

export type EvaluationsFile = z.infer<typeof evaluationsFile>;

/**
 * What evaluations.json records of an evaluation. Its strings are copies: the
 * run files' parser (util/pyjson.ts) returns slices of a file's text, and V8
 * keeps the whole text alive for a slice of it, so an evaluation kept for
 * every run would keep every run's refinement_summary.json in memory
 * (hundreds of MiB at 100,000 runs).
 */
export function runEvaluationOf(ev: SuccessfulEvaluation): RunEvaluation {
  return { severity: ownCopy(ev.severity), score: ev.score, strategy: ownCopy(ev.strategy), harmful: ev.harmful.map(ownCopy) };
}

/** A string that holds only its own characters (JSON.parse makes a fresh string; the round trip keeps every code unit, lone surrogates included). */
function ownCopy<S extends string | null>(s: S): S {
  return s === null ? s : (JSON.parse(JSON.stringify(s)) as S);
}

/** A run's evaluation as evaluations.json records it; nulls for a run it does not list. */
export function evaluationOf(file: EvaluationsFile, runId: string): RunEvaluation {
  return file.runs[runId] ?? { severity: null, score: null, strategy: null, harmful: [] };
}
