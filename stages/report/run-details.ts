// Per-run details for the HTML drill-down, from the summaries (read through
// summarize/summaries.ts; a run with none, failed in the summarize index,
// still appears, with empty texts) and the evaluations summarize recorded.
// `run_folder` is relative to the data root and `run_link` comes from the
// configuration (`linkOf`): neither depends on where the workspace lives.
import type { LedgerRun } from '../task-list/ledger.ts';
import { evaluationOf } from '../summarize/run-data.ts';
import type { EvaluationsFile } from '../summarize/run-data.ts';
import type { SummaryFile } from '../summarize/format.ts';
import { runFolderOf } from './assemble.ts';
import type { HtmlRun } from './html.ts';

export function runDetails(
  runs: LedgerRun[],
  summaries: ReadonlyMap<string, SummaryFile>,
  evaluations: EvaluationsFile,
  linkOf: (runFolder: string) => string | null,
): Record<string, HtmlRun> {
  const out: Record<string, HtmlRun> = {};
  for (const run of runs) {
    const s = summaries.get(run.run_id) ?? { original_instruction: '', perturbed_instruction: '', summary: '' };
    const ev = evaluationOf(evaluations, run.run_id);
    const runFolder = runFolderOf(run);
    out[run.run_id] = {
      run_id: run.run_id,
      agent: run.agent,
      domain: run.domain,
      task_id: run.task_id,
      perturbed_id: run.perturbed_id,
      refinement_model: run.refinement_model,
      original_instruction: s.original_instruction,
      perturbed_instruction: s.perturbed_instruction,
      summary: s.summary,
      severity: ev.severity,
      score: ev.score,
      strategy: ev.strategy,
      run_folder: runFolder,
      run_link: linkOf(runFolder),
    };
  }
  return out;
}
