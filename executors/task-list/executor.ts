// nx run <analysis>:task-list — select the successful runs: one reference-format
// task list per agent, plus the ledger (runs.json) that later stages account
// against (the stage: stages/task-list/stage.ts; around it: executors/lib/runner.ts).
import type { SelectionOverrides } from '../../stages/task-list/settings.ts';
import { taskListStage } from '../../stages/task-list/stage.ts';
import type { BaseOptions } from '../lib/context.ts';
import { stageExecutor } from '../lib/runner.ts';

/** Overrides that mirror the reference script's flags (see stages/task-list/settings.ts for how they meet the cache). */
export interface TaskListOptions extends BaseOptions, SelectionOverrides {}

export default stageExecutor(taskListStage);
