// nx run <analysis>:cluster — merge categories into higher-level clusters
// (the stage: stages/cluster/stage.ts; around it: executors/lib/runner.ts).
import { clusterStage } from '../../stages/cluster/stage.ts';
import type { LlmRunOptions } from '../lib/answerer.ts';
import type { BaseOptions } from '../lib/context.ts';
import { llmStageExecutor } from '../lib/runner.ts';

export type ClusterOptions = BaseOptions & LlmRunOptions;

export default llmStageExecutor(clusterStage);
