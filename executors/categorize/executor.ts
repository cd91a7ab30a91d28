// nx run <analysis>:categorize — the taxonomy of benign-input vulnerability
// categories (the stage: stages/categorize/stage.ts; around it: executors/lib/runner.ts).
import { categorizeStage } from '../../stages/categorize/stage.ts';
import type { CategorizeRunOptions } from '../../stages/categorize/outcome.ts';
import type { LlmRunOptions } from '../lib/answerer.ts';
import type { BaseOptions } from '../lib/context.ts';
import { llmStageExecutor } from '../lib/runner.ts';

export interface CategorizeOptions extends BaseOptions, LlmRunOptions, CategorizeRunOptions {}

export default llmStageExecutor(categorizeStage);
