// nx run <analysis>:report — report.md, report.html and report-data.json
// (the stage: stages/report/stage.ts; around it: executors/lib/runner.ts).
import type { BaseOptions } from '../lib/context.ts';
import { lazyExecutor } from '../lib/lazy.ts';

export default lazyExecutor<BaseOptions>(async () => {
  const [{ reportStage }, { stageExecutor }] = await Promise.all([import('../../stages/report/stage.ts'), import('../lib/runner.ts')]);
  return stageExecutor(reportStage);
});
