// Step 2: one summary per run. Pure functions: reading the run's JSON is done
// by the caller, which passes the parsed values in.
import type { ExecutionIteration, SummaryInput, TrajectoryEvaluation } from '../formats.ts';
import { join } from 'node:path';
import type { LedgerRun } from '../task-list/ledger.ts';
import { readJsonFileSync } from '../util/fs.ts';
import type { ReadJsonResult } from '../util/fs.ts';
import { isJsonObject, pyJsonParsePlain } from '../util/pyjson.ts';
import { fillTemplate } from '../util/template.ts';
import type { SummaryFile } from './format.ts';

export { SUMMARY_INDEX_FILE, summaryIndexFile } from './format.ts';
export type { SummaryFile, SummaryIndexEntry, SummaryIndexFile } from './format.ts';

export class RunInputError extends Error {
  override name = 'RunInputError';
  readonly file: string;
  readonly field: string;
  /** `message` replaces the default "<file>: field "<field>": expected <expected>". */
  constructor(file: string, field: string, expected: string, message?: string) {
    super(message ?? `${file}: field "${field}": expected ${expected}`);
    this.file = file;
    this.field = field;
  }
}

/** Whether an iteration of execution_history is a successful one (its evaluation recommends COLLECT). */
export function isCollect(iteration: unknown): boolean {
  return isJsonObject(iteration) && isJsonObject(iteration['trajectory_evaluation']) && iteration['trajectory_evaluation']['recommendation'] === 'COLLECT';
}

/**
 * Builds the summary input from a run's refinement_summary.json and its
 * perturbed_query_<pid>.json. Iterations whose evaluation failed (`error`)
 * are skipped; the last COLLECT iteration is the successful one.
 */
export function extractSummaryInput(
  run: Pick<LedgerRun, 'refinement_summary_path' | 'perturbed_query_path'>,
  refinementSummary: unknown,
  perturbedQuery: unknown,
): SummaryInput {
  const rsFile = run.refinement_summary_path;
  const pqFile = run.perturbed_query_path;
  if (!isJsonObject(perturbedQuery)) throw new RunInputError(pqFile, '(top level)', 'a JSON object');
  const original = perturbedQuery['original_instruction'];
  if (typeof original !== 'string') throw new RunInputError(pqFile, 'original_instruction', 'a string');
  if (!isJsonObject(refinementSummary)) throw new RunInputError(rsFile, '(top level)', 'a JSON object');
  const history = refinementSummary['execution_history'];
  if (!Array.isArray(history)) throw new RunInputError(rsFile, 'execution_history', 'a list of iterations');

  const kept: ExecutionIteration[] = [];
  history.forEach((it, i) => {
    if (!isJsonObject(it)) throw new RunInputError(rsFile, `execution_history[${i}]`, 'an object');
    const evaluation = it['trajectory_evaluation'];
    if (isJsonObject(evaluation) && 'error' in evaluation) return;
    const instruction = it['perturbed_instruction'];
    if (typeof instruction !== 'string') throw new RunInputError(rsFile, `execution_history[${i}].perturbed_instruction`, 'a string');
    kept.push({
      execution_iteration: typeof it['execution_iteration'] === 'number' ? it['execution_iteration'] : i,
      perturbed_instruction: instruction,
      ...(typeof it['elicitation_strategy'] === 'string' ? { elicitation_strategy: it['elicitation_strategy'] } : {}),
      ...(isJsonObject(evaluation) ? { trajectory_evaluation: evaluation as TrajectoryEvaluation } : {}),
    });
  });
  return {
    original_instruction: original,
    history: kept.filter((it) => !isCollect(it)),
    successful: kept.findLast(isCollect) ?? null,
  };
}

const orNone = (v: unknown, none = 'not recorded') => (v === undefined || v === null || v === '' ? none : String(v));

function listOr(items: string[] | undefined, none: string): string {
  if (!items || items.length === 0) return `  ${none}`;
  return items.map((a) => `  - ${a}`).join('\n');
}

/** One iteration as the prompt shows it. */
export function formatIteration(it: ExecutionIteration): string {
  const ev = it.trajectory_evaluation ?? {};
  return [
    `Iteration ${it.execution_iteration}`,
    `Perturbed instruction: ${it.perturbed_instruction}`,
    `Elicitation strategy: ${orNone(it.elicitation_strategy)}`,
    `Behavior elicitation score: ${orNone(ev.behavior_elicitation_score)}`,
    `Score explanation: ${orNone(ev.behavior_elicitation_explanation)}`,
    `Harmful actions observed:\n${listOr(ev.harmful_actions_observed, 'No harmful actions observed')}`,
    `Safe actions observed:\n${listOr(ev.safe_actions_observed, 'No safe actions observed')}`,
    `Severity: ${orNone(ev.severity_assessment)} (${orNone(ev.severity_explanation, 'no explanation')})`,
    `Recommendation: ${orNone(ev.recommendation)} (${orNone(ev.recommendation_reasoning, 'no reasoning')})`,
  ].join('\n');
}

/** Fills {ORIGINAL_INSTRUCTION}, {ELICITATION_HISTORY} and {SUCCESSFUL_ELICITATION}. */
export function renderSummaryPrompt(template: string, input: SummaryInput): string {
  const history = input.history.length === 0
    ? 'No earlier attempts: the first executed perturbation succeeded.'
    : input.history.map(formatIteration).join('\n\n');
  const success = input.successful ? formatIteration(input.successful) : 'No iteration was marked COLLECT.';
  return fillTemplate(template, {
    ORIGINAL_INSTRUCTION: input.original_instruction,
    ELICITATION_HISTORY: history,
    SUCCESSFUL_ELICITATION: success,
  });
}

/** The 8-decimal cost string of the reference summary files. */
export function costString(costUsd: number | null): string {
  return (costUsd ?? 0).toFixed(8);
}

/** The reference summary file, plus our run id and request hash. Deterministic: no timestamps. */
export function summaryFileFrom(
  run: Pick<LedgerRun, 'run_id'>,
  input: SummaryInput,
  answer: { value: string; usage: { input_tokens: number; output_tokens: number; total_tokens: number }; costUsd: number | null; requestHash: string },
  settings: { provider: string; model: string; max_tokens: number; temperature: number },
  analyzer: string,
): SummaryFile {
  const offline = settings.provider === 'offline';
  return {
    original_instruction: input.original_instruction,
    perturbed_instruction: input.successful?.perturbed_instruction ?? '',
    summary: answer.value,
    input_tokens: answer.usage.input_tokens,
    output_tokens: answer.usage.output_tokens,
    total_tokens: answer.usage.total_tokens,
    cost: costString(answer.costUsd),
    summary_metadata: {
      api_type: settings.provider,
      model_name: offline ? 'offline-analyzer' : settings.model,
      max_tokens: settings.max_tokens,
      temperature: settings.temperature,
      generated_at: null,
      analyzer,
    },
    run_id: run.run_id,
    request_hash: answer.requestHash,
    cost_known: answer.costUsd !== null,
  };
}

/** Reads a run's two files and builds its summary input; a failure names the file relative to the data root, never an absolute path. */
export function loadSummaryInput(dataRoot: string, run: Pick<LedgerRun, 'refinement_summary_path' | 'perturbed_query_path'>): SummaryInput {
  const read = (rel: string): unknown => runFileValue(readRunFile(dataRoot, rel), rel);
  return extractSummaryInput(run, read(run.refinement_summary_path), read(run.perturbed_query_path));
}

/** One of a run's JSON files, read the one way every stage reads them. */
export function readRunFile(dataRoot: string, rel: string): ReadJsonResult<unknown> {
  return readJsonFileSync(join(dataRoot, rel), { label: rel, parse: pyJsonParsePlain });
}

/** The parsed file, or the RunInputError that lists the run as failed. */
export function runFileValue(res: ReadJsonResult<unknown>, rel: string): unknown {
  if (!res.ok) throw new RunInputError(rel, '(file)', 'readable JSON object', res.message);
  return res.value;
}
