// nx run <analysis>:categorize — the taxonomy of benign-input vulnerability
// categories (the stage: stages/categorize/stage.ts; around it: executors/lib/runner.ts).
import type { CategorizeRunOptions } from '../../stages/categorize/outcome.ts';
import type { LlmRunOptions } from '../lib/answerer.ts';
import type { BaseOptions } from '../lib/context.ts';
import { lazyExecutor } from '../lib/lazy.ts';

export interface CategorizeOptions extends BaseOptions, LlmRunOptions, CategorizeRunOptions {}

export default lazyExecutor<CategorizeOptions>(async () => {
  const [{ categorizeStage }, { llmStageExecutor }] = await Promise.all([import('../../stages/categorize/stage.ts'), import('../lib/runner.ts')]);
  return llmStageExecutor(categorizeStage);
});
