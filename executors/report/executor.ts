// nx run <analysis>:report — report.md, report.html and report-data.json
// (the stage: stages/report/stage.ts; around it: executors/lib/runner.ts).
import { reportStage } from '../../stages/report/stage.ts';
import { stageExecutor } from '../lib/runner.ts';

export default stageExecutor(reportStage);
