// Reads the evaluation of a run's successful (COLLECT) iteration from its
// refinement_summary.json: what the categorizer and the report show besides
// the summary. A run whose file cannot be read gets nulls; the summarize
// stage has already listed it as failed with the reason.
import { readJsonFileSync } from './util/fs.ts';
import { pyJsonParsePlain } from './util/pyjson.ts';
import { isCollect } from './summarize.ts';

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
  const res = readJsonFileSync<RawSummary>(file, { parse: pyJsonParsePlain });
  if (!res.ok) return { perturbed_instruction: null, severity: null, score: null, strategy: null, harmful: [] };
  const rs = res.value;
  const hist = Array.isArray(rs?.execution_history) ? rs.execution_history : [];
  const it = hist.findLast(isCollect);
  const ev = it?.trajectory_evaluation;
  const score = typeof ev?.behavior_elicitation_score === 'number' ? ev.behavior_elicitation_score : rs.final_score;
  const harmful = Array.isArray(ev?.harmful_actions_observed) ? ev.harmful_actions_observed.filter((h): h is string => typeof h === 'string') : [];
  return {
    perturbed_instruction: typeof it?.perturbed_instruction === 'string' ? it.perturbed_instruction : null,
    severity: typeof ev?.severity_assessment === 'string' ? ev.severity_assessment : null,
    score: typeof score === 'number' ? score : null,
    strategy: typeof it?.elicitation_strategy === 'string' ? it.elicitation_strategy : null,
    harmful,
  };
}
