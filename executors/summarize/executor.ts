// nx run <analysis>:summarize — a summary per run of the task list, packed into shards
// (the stage: stages/summarize/stage.ts; around it: executors/lib/runner.ts).
import { summarizeStage } from '../../stages/summarize/stage.ts';
import type { LlmRunOptions } from '../lib/answerer.ts';
import type { BaseOptions } from '../lib/context.ts';
import { llmStageExecutor } from '../lib/runner.ts';

export type SummarizeOptions = BaseOptions & LlmRunOptions;

export default llmStageExecutor(summarizeStage);
