// nx run <analysis>:plan — what the whole chain would pay for, before paying.
// Never cached and never runs a stage: selection is computed in memory
// (nothing written), and each LLM stage is walked through the response store
// (and the answers carried in its output) as far as stored answers reach.
// Input tokens are counted with the model's tokenizer where one exists
// offline (OpenAI models), else approximated; output tokens are the median of
// the answers this stage stored before (answers.jsonl), else a per-step
// default; the dollar range prices output at half and twice that estimate.
import type { LlmStageName } from '../../stages/config.ts';
import { planCalls, planLines } from '../../stages/plan/calls.ts';
import { planTotal } from '../../stages/plan/pricing.ts';
import { selectAnalysis } from '../../stages/task-list/analysis.ts';
import { selectionOptions, selectionSettings } from '../../stages/task-list/settings.ts';
import { createStageAnswerer } from '../lib/answerer.ts';
import { lastRunAgainstItsPlan, runExecutor, stageContext, writeRunLog } from '../lib/context.ts';
import type { BaseOptions, ExecutorContextLike } from '../lib/context.ts';
import { planTargets } from './targets.ts';
import { plural } from '../../stages/util/words.ts';

export interface PlanOptions extends BaseOptions {
  /** Print the plan as JSON (for CI) instead of text. */
  json?: boolean;
}

export default async function plan(options: PlanOptions, context: ExecutorContextLike) {
  return runExecutor('plan', async () => {
    const ctx = stageContext(options, context, { lock: false });
    const a = ctx.analysis;
    if (!options.json) console.log(`plan for ${a.name}: no provider call, no stage run; it writes only its log (stored answers are read, offline answers computed).`);

    const selection = await selectAnalysis(selectionOptions(selectionSettings(a), {}, ctx.resolvePath));
    const runs = selection.runs;
    if (!options.json) console.log(`  task-list   ${runs.length} runs selected${selection.problems.length ? `, ${plural(selection.problems.length, 'problem', 'problems')} in the tree` : ''}`);

    const targets = await planTargets(ctx, selection);
    // Store lookups and walks only: the plan never calls a provider.
    const answererFor = (stage: LlmStageName) => createStageAnswerer(ctx, ctx.analysis[stage], {}, stage);
    const stages = await planCalls(ctx, runs, answererFor);
    const total = planTotal(stages);
    const lastRun = lastRunAgainstItsPlan(ctx);
    // A log, never an output: the next run of each stage compares what it paid with this (writeRunLog).
    writeRunLog(ctx, 'plan', { analysis: a.name, runs: runs.length, targets, stages, total });
    if (options.json) {
      console.log(JSON.stringify({ analysis: a.name, runs: runs.length, problems: selection.problems.length, targets, stages, total, last_run: lastRun }, null, 2));
      return true;
    }
    for (const line of planLines(targets, stages)) console.log(line);
    return true;
  });
}
