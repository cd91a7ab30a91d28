// nx run <analysis>:task-list — select the successful runs, one reference-format
// task list per agent, plus the ledger (runs.json) that later stages account against.
import { join } from 'node:path';
import type { Ledger } from '../../stages/ledger.ts';
import { selectAnalysis } from '../../stages/task-list.ts';
import { pyJsonDumps } from '../../stages/util/pyjson.ts';
import { runExecutor, stageContext, writeRunLog } from '../lib/context.ts';
import type { BaseOptions, ExecutorContextLike } from '../lib/context.ts';
import { buildOutputDir, writeJson, writeText } from '../lib/io.ts';
import { selectionOptions, selectionSettings, uncoveredOverrides } from './selection.ts';
import type { SelectionOverrides } from './selection.ts';

/** Overrides that mirror the reference script's flags (see selection.ts for how they meet the cache). */
export interface TaskListOptions extends BaseOptions, SelectionOverrides {}

/** Task list file name inside the output folder: one per agent. */
export function taskListFileName(agent: string): string {
  return `task_list_${agent}.json`;
}

export default async function taskList(options: TaskListOptions, context: ExecutorContextLike) {
  return runExecutor('task-list', async () => {
    const ctx = stageContext(options, context);
    const a = ctx.analysis;
    const settings = selectionSettings(a);
    const uncovered = uncoveredOverrides(settings, options);
    if (uncovered.length > 0 && underNxCache()) {
      throw new Error(
        `${uncovered.join('; ')}. The task-list target is cached, and its key covers what pipeline.yaml selects: ` +
          'add --skip-nx-cache to run it without Nx\'s cache, or declare this selection as an analysis in pipeline.yaml.',
      );
    }
    const selection = selectionOptions(settings, options, ctx.resolvePath);
    const { baseDir, agents } = selection;

    const { runs: uniqueRuns, problems: uniqueProblems, lists } = await selectAnalysis(selection);
    for (const p of uniqueProblems) console.error(`task-list: ${p.file}${p.field ? ` (${p.field})` : ''}: ${p.message}`);

    const ledger: Ledger = {
      analysis: a.name,
      data_root: baseDir,
      agents: [...agents],
      task_list_files: Object.fromEntries(lists.map((l) => [l.agent, taskListFileName(l.agent)])),
      runs: uniqueRuns,
      problems: uniqueProblems,
    };
    await buildOutputDir(ctx.outputOf('task-list'), async (dir) => {
      for (const l of lists) writeText(join(dir, taskListFileName(l.agent)), pyJsonDumps(l.json) + '\n');
      writeJson(join(dir, 'runs.json'), ledger);
    });

    if (options.output) {
      // A user-requested copy, as the reference writes it: with a real timestamp.
      if (lists.length !== 1) throw new Error('--output needs exactly one agent: add --agent <name>');
      const copy = lists[0] as { agent: string; json: Record<string, unknown> };
      const meta = copy.json['metadata'] as Record<string, unknown>;
      const stamped = { ...copy.json, metadata: { ...meta, generated_at: localIsoNow() } };
      const target = ctx.resolvePath(options.output);
      writeText(target, pyJsonDumps(stamped) + '\n');
      console.log(`task-list: wrote a copy to ${target}`);
    }
    const log = writeRunLog(ctx, 'task-list', { analysis: a.name, runs: uniqueRuns.length, problems: uniqueProblems });
    const perAgent = agents.map((ag) => `${ag}: ${uniqueRuns.filter((r) => r.agent === ag).length}`).join(', ');
    console.log(`task-list: ${uniqueRuns.length} successful runs (${perAgent}); ${uniqueProblems.length} problem(s). Log: ${log}`);
    return true;
  });
}

/** Running as an Nx task whose result Nx will store in its cache (not under --skip-nx-cache). */
function underNxCache(): boolean {
  return process.env['NX_TASK_HASH'] !== undefined && process.env['NX_SKIP_NX_CACHE'] !== 'true';
}

function localIsoNow(): string {
  const d = new Date();
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds() * 1000, 6)}`;
}
