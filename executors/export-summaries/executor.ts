// nx run <analysis>:export-summaries — writes the reference's per-run summary
// tree (out/<analysis>/summaries-export/<run path>/elicitation_run_summary.json)
// from summarize's packed output, for the reference scripts. Never cached and
// on no target's way: the chain reads the packed summaries. Under the writer
// lock, built in a fresh folder and swapped in whole.
import { dirname, join, relative } from 'node:path';
import { checkUpstreamFile } from '../../stages/file-format.ts';
import { EXPORT_DIR, exportFiles } from '../../stages/summarize/export.ts';
import { SUMMARY_INDEX_FILE, summaryIndexFile } from '../../stages/summarize/format.ts';
import { readSummaries } from '../../stages/summarize/summaries.ts';
import { LEDGER_FILE, ledgerFile } from '../../stages/task-list/ledger.ts';
import { writeFileAtomicSync } from '../../stages/util/fs.ts';
import { plural } from '../../stages/util/words.ts';
import { runExecutor, stageContext } from '../lib/context.ts';
import type { BaseOptions, ExecutorContextLike } from '../lib/context.ts';
import { buildOutputDir, readUpstream } from '../lib/io.ts';

export default async function exportSummaries(options: BaseOptions, context: ExecutorContextLike) {
  return runExecutor('export-summaries', async () => {
    const ctx = stageContext(options, context);
    const name = ctx.analysis.name;
    const listDir = ctx.outputOf('task-list');
    const ledger = checkUpstreamFile(ledgerFile, readUpstream(listDir, LEDGER_FILE, 'task-list'), join(listDir, LEDGER_FILE), 'task-list', name);
    const sumDir = ctx.outputOf('summarize');
    const index = checkUpstreamFile(summaryIndexFile, readUpstream(sumDir, SUMMARY_INDEX_FILE, 'summarize'), join(sumDir, SUMMARY_INDEX_FILE), 'summarize', name);
    const files = exportFiles(ledger, index.runs, readSummaries(sumDir, index.runs, name));
    const dir = join(dirname(sumDir), EXPORT_DIR);
    await buildOutputDir(dir, async (tmp) => {
      for (const [rel, text] of files) writeFileAtomicSync(join(tmp, rel), text);
    });
    const failed = index.runs.length - files.length;
    console.log(`export-summaries: wrote ${files.length} summary files in the reference's layout to ${relative(ctx.workspaceRoot, dir)}/` +
      `${failed > 0 ? ` (${plural(failed, 'run has', 'runs have')} no summary: see ${relative(ctx.workspaceRoot, join(sumDir, SUMMARY_INDEX_FILE))})` : ''}.`);
    return true;
  });
}
