// nx run <analysis>:task-list — select the successful runs: one reference-format
// task list per agent, plus the ledger (runs.json) that later stages account
// against (the stage: stages/task-list/stage.ts; around it: executors/lib/runner.ts).
import module from 'node:module';
import type { SelectionOverrides } from '../../stages/task-list/settings.ts';
import type { BaseOptions, ExecutorContextLike } from '../lib/context.ts';

/** Overrides that mirror the reference script's flags (see stages/task-list/settings.ts for how they meet the cache). */
export interface TaskListOptions extends BaseOptions, SelectionOverrides {}

// Nx loads this file without Node's compile cache: turned on here, the stage's
// modules, imported below, load without stripping their types again (as in
// executors/key.mjs): loading the stage and the runner took about 0.35 s of
// CPU instead of 0.65 s (measured at 10k runs).
module.enableCompileCache?.();

export default async function taskListExecutor(options: TaskListOptions, context: ExecutorContextLike): Promise<{ success: boolean }> {
  const [{ taskListStage }, { stageExecutor }] = await Promise.all([import('../../stages/task-list/stage.ts'), import('../lib/runner.ts')]);
  return stageExecutor(taskListStage)(options, context);
}
