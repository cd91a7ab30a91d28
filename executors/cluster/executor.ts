// nx run <analysis>:cluster — merge categories into higher-level clusters
// (the stage: stages/cluster/stage.ts; around it: executors/lib/runner.ts).
import type { LlmRunOptions } from '../lib/answerer.ts';
import type { BaseOptions } from '../lib/context.ts';
import { lazyExecutor } from '../lib/lazy.ts';

export type ClusterOptions = BaseOptions & LlmRunOptions;

export default lazyExecutor<ClusterOptions>(async () => {
  const [{ clusterStage }, { llmStageExecutor }] = await Promise.all([import('../../stages/cluster/stage.ts'), import('../lib/runner.ts')]);
  return llmStageExecutor(clusterStage);
});
