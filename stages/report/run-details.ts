// Per-run details for the HTML drill-down, read from the summaries and the
// evaluations summarize recorded. `run_folder` is relative to the data root and `run_link`
// comes from the configuration (`linkOf`): neither depends on where the
// workspace lives.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LedgerRun } from '../task-list/ledger.ts';
import { evaluationOf } from '../summarize/run-data.ts';
import type { EvaluationsFile } from '../summarize/run-data.ts';
import type { SummaryFile } from '../summarize/format.ts';
import { runFolderOf } from './assemble.ts';
import type { SummaryIndexRun } from './assemble.ts';
import type { HtmlRun } from './html.ts';

export function runDetails(
  runs: LedgerRun[],
  index: SummaryIndexRun[],
  sumDir: string,
  evaluations: EvaluationsFile,
  linkOf: (runFolder: string) => string | null,
): Record<string, HtmlRun> {
  const fileOf = new Map(index.map((e) => [e.run_id, e.file]));
  const out: Record<string, HtmlRun> = {};
  for (const run of runs) {
    const s = summaryOf(sumDir, fileOf.get(run.run_id));
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

/** A run's summary texts; empty when it has none (listed as failed in the summarize index: the run still appears). */
function summaryOf(sumDir: string, file: string | null | undefined): Pick<SummaryFile, 'original_instruction' | 'perturbed_instruction' | 'summary'> {
  const none = { original_instruction: '', perturbed_instruction: '', summary: '' };
  if (!file) return none;
  try {
    const s = JSON.parse(readFileSync(join(sumDir, file), 'utf8')) as SummaryFile;
    return { original_instruction: s.original_instruction, perturbed_instruction: s.perturbed_instruction, summary: s.summary };
  } catch {
    return none;
  }
}
