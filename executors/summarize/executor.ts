// nx run <analysis>:summarize — a summary per run of the task list, packed into shards
// (the stage: stages/summarize/stage.ts; around it: executors/lib/runner.ts).
import type { LlmRunOptions } from '../lib/answerer.ts';
import type { BaseOptions } from '../lib/context.ts';
import { lazyExecutor } from '../lib/lazy.ts';

export type SummarizeOptions = BaseOptions & LlmRunOptions;

export default lazyExecutor<SummarizeOptions>(async () => {
  const [{ summarizeStage }, { llmStageExecutor }] = await Promise.all([import('../../stages/summarize/stage.ts'), import('../lib/runner.ts')]);
  return llmStageExecutor(summarizeStage);
});
