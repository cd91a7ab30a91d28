// nx run <analysis>:task-list — select the successful runs: one reference-format
// task list per agent, plus the ledger (runs.json) that later stages account
// against (the stage: stages/task-list/stage.ts; around it: executors/lib/runner.ts).
import type { SelectionOverrides } from '../../stages/task-list/settings.ts';
import type { BaseOptions } from '../lib/context.ts';
import { lazyExecutor } from '../lib/lazy.ts';

/** Overrides that mirror the reference script's flags (see stages/task-list/settings.ts for how they meet the cache). */
export interface TaskListOptions extends BaseOptions, SelectionOverrides {}

export default lazyExecutor<TaskListOptions>(async () => {
  const [{ taskListStage }, { stageExecutor }] = await Promise.all([import('../../stages/task-list/stage.ts'), import('../lib/runner.ts')]);
  return stageExecutor(taskListStage);
});
