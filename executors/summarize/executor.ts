// nx run <analysis>:summarize — one summary file per run of the task list
// (the stage: stages/summarize/stage.ts; around it: executors/lib/runner.ts).
import { summarizeStage } from '../../stages/summarize/stage.ts';
import type { LlmRunOptions } from '../lib/answerer.ts';
import type { BaseOptions } from '../lib/context.ts';
import { llmStageExecutor } from '../lib/runner.ts';

export type SummarizeOptions = BaseOptions & LlmRunOptions;

export default llmStageExecutor(summarizeStage);
