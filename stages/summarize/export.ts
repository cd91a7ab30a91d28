// The reference's per-run summary tree, from summarize's packed output:
// `<domain>/<task>/<pid>/<refinement model>/<agent>/elicitation_run_summary.json`,
// each file the bytes the reference writes (summaries.ts summaryText, whose
// digest index.json records). Written by the never-cached export-summaries
// target into out/<analysis>/summaries-export/, for the reference scripts
// and cluster_report.py; no stage reads it.
import type { Ledger } from '../task-list/ledger.ts';
import { runOutputPath } from '../task-list/ledger.ts';
import type { SummaryFile, SummaryIndexEntry } from './format.ts';
import { SUMMARY_FILE_NAME, summaryDigest, summaryText } from './summaries.ts';

/** The export's folder, next to the stages' outputs: out/<analysis>/summaries-export. */
export const EXPORT_DIR = 'summaries-export';

export class ExportError extends Error {
  override name = 'ExportError';
}

/**
 * Each summarized run's file: path relative to the export folder, and text.
 * `summaries` is what readSummaries returned for this index (checked against it).
 */
export function exportFiles(ledger: Ledger, index: readonly SummaryIndexEntry[], summaries: ReadonlyMap<string, SummaryFile>): [string, string][] {
  const runOf = new Map(ledger.runs.map((r) => [r.run_id, r]));
  const out: [string, string][] = [];
  const seen = new Map<string, string>();
  for (const entry of index) {
    if (entry.status !== 'done') continue;
    const run = runOf.get(entry.run_id);
    if (!run) throw new ExportError(`summarize/index.json lists the run ${entry.run_id}, which task-list/runs.json does not: run the summarize target again`);
    const file = summaries.get(entry.run_id);
    if (!file || summaryDigest(file) !== entry.sha256) throw new ExportError(`no summary with the sha256 index.json records for the run ${entry.run_id}`);
    const rel = `${runOutputPath(run)}/${SUMMARY_FILE_NAME}`;
    const other = seen.get(rel);
    if (other) throw new ExportError(`the runs ${other} and ${entry.run_id} would both be written to ${rel}`);
    seen.set(rel, entry.run_id);
    out.push([rel, summaryText(file)]);
  }
  return out.sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
}
