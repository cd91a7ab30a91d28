// The one stage runner: what every stage target does around its stage, said
// once. An executor hands it the stage's definition (stages/<stage>/stage.ts, whose
// logic it is); the runner takes the context and the writer lock, lets the
// stage read its inputs, creates an LLM stage's answerer and says which
// analyzer answers, builds the output in a fresh folder and swaps it in only
// when complete (with the answers used), writes the run log, prints the last
// line and applies the failure policy. Typed errors become one message and
// `{ success: false }` (runExecutor).
import { join } from 'node:path';
import { analyzerLabel, OFFLINE_NOTICE } from '../../stages/analyzer.ts';
import type { StageName } from '../../stages/config.ts';
import { checkUpstreamFile } from '../../stages/file-format.ts';
import { formatUsd } from '../../stages/llm/pricing.ts';
import { LLM_STAGES, STAGE_INFO } from '../../stages/registry.ts';
import type { LlmStageName } from '../../stages/registry.ts';
import { guardInputs, progressPrinter, runExecutor, stageContext, writeRunLog } from './context.ts';
import type { BaseOptions, ExecutorContextLike, LlmRunOptions, LlmStageDefinition, LlmTools, Schema, StageAnswerer, StageContext, StageDefinition, StageResult, StageTools } from '../../stages/stage-context.ts';
import { buildOutputDir, readUpstream } from './io.ts';
import { plural } from '../../stages/util/words.ts';

export type { LlmStageDefinition, LlmTools, Schema, StageDefinition, StageResult, StageTools };

import type { Executor } from './lazy.ts';

/** The executor of a stage that asks no one (task-list, report). */
export function stageExecutor<O, In>(def: StageDefinition<O, In>): Executor<O> {
  return (options, context) =>
    runExecutor(def.stage, async () => {
      const writesNothing = def.writesNothing?.(options) === true;
      const t = await stageTools(def.stage, options, context, { lock: !writesNothing });
      const result = await def.run(await def.read(t), t);
      return finish(def.stage, t.ctx, result, writesNothing ? null : result.log, null);
    });
}

/** The executor of a stage answered through the response store (offline analyzer or LLM). */
export function llmStageExecutor<O, In>(def: LlmStageDefinition<O, In>): Executor<O & LlmRunOptions> {
  return (options, context) =>
    runExecutor(def.stage, async () => {
      const base = await stageTools(def.stage, options, context);
      await preflight(def.stage, base.ctx);
      const input = await def.read(base);
      const settings = base.ctx.analysis[def.stage];
      // Loaded here, not at the top: the stages that ask no one (task-list, report) start without the LLM glue.
      const { createStageAnswerer } = await import('./answerer.ts');
      const answerer = await createStageAnswerer(base.ctx, settings, options, def.stage);
      const label = analyzerLabel(settings);
      console.log(`${def.stage}: ${def.subject(input)} with ${label}`);
      if (settings.provider === 'offline') console.log(`  ${OFFLINE_NOTICE}`);
      const t: LlmTools<O & LlmRunOptions> = {
        ...base,
        answerer,
        label,
        output: (build, verify) => base.output(async (dir) => {
          const built = await build(dir);
          answerer.writeAnswers(dir);
          return built;
        }, verify),
      };
      const result = await def.run(input, t);
      return finish(def.stage, base.ctx, result, { analysis: base.ctx.analysis.name, analyzer: label, ...answerCounters(answerer), ...result.log }, answerer);
    });
}

export class PreflightError extends Error {
  override name = 'PreflightError';
}

/**
 * Before an answered stage reads or sends anything: what its provider needs,
 * and what the answered stages after it need (they run when it does), checked
 * without a request. A missing key stops the stage with one message naming the
 * variable and the stages; nothing is written, the previous outputs stay.
 */
async function preflight(stage: LlmStageName, ctx: StageContext): Promise<void> {
  const from = LLM_STAGES.indexOf(stage);
  const { preflightProblems } = await import('../../stages/llm/preflight.ts');
  const problems = await preflightProblems(LLM_STAGES.slice(from).map((s) => ({ stage: s, settings: ctx.analysis[s] })), { workspaceRoot: ctx.workspaceRoot });
  if (problems.length > 0) throw new PreflightError(`stopped before any request, nothing written: ${problems.join('; ')}`);
}

async function stageTools<O>(stage: StageName, options: O & BaseOptions, context: ExecutorContextLike, opts: { lock?: boolean } = {}): Promise<StageTools<O>> {
  const ctx = stageContext(options, context, opts);
  const keyed = await guardInputs(ctx, stage, options.outDir ?? 'out');
  const declared = new Set(STAGE_INFO[stage].reads.map(([s, f]) => `${s}/${f}`));
  return {
    ctx,
    options,
    keyed,
    upstream: <T>(from: StageName, file: string, schema: Schema<T>) => {
      // Every upstream file a stage reads is in its key: one it does not declare is a programming error.
      if (!declared.has(`${from}/${file}`)) throw new Error(`${stage} reads ${from}/${file}, which its key does not cover: add it to its \`reads\` in stages/registry.ts`);
      return checkUpstreamFile(schema, readUpstream(ctx.outputOf(from), file, from), join(ctx.outputOf(from), file), from, ctx.analysis.name);
    },
    progress: (total, unit) => progressPrinter(stage, total, undefined, unit),
    output: (build, verify) => buildOutputDir(ctx.outputOf(stage), build, verify),
  };
}

/** What every answered stage's run log holds: answers bought and reused in this run, and what they cost. */
function answerCounters(answerer: StageAnswerer): Record<string, unknown> {
  const t = answerer.totals();
  return {
    computed: t.computed,
    reused: t.reused,
    carried: t.carried,
    refresh: answerer.refresh,
    paid_usage: t.paid,
    paid_cost_usd: t.paidCostUsd,
    ...(t.abandoned > 0 ? { abandoned_calls: t.abandoned, abandoned_cost_usd: t.abandonedCostUsd, abandoned_note: abandonedNote(answerer) } : {}),
  };
}

/** What an abandoned call is charged, said the same way in the run log and on the console. */
function abandonedNote(answerer: StageAnswerer): string {
  const s = answerer.settings;
  return (
    `abandoned after they were sent (timed out at timeout_s = ${s.timeout_s} s, or interrupted); the provider may still complete and bill them, ` +
    `so each is charged at its worst case: the prompt's tokens and max_tokens (${s.max_tokens}) of output at the price of ${s.model}, ` +
    'counted in the spend and in the budget checks'
  );
}

/** The run log, the closing lines, then the failure policy. */
function finish(stage: StageName, ctx: StageContext, result: StageResult, log: Record<string, unknown> | null, answerer: StageAnswerer | null): boolean {
  const logFile = log === null ? null : writeRunLog(ctx, stage, log);
  for (const line of result.summary(logFile)) console.log(line);
  const notAttempted = result.notAttempted ?? 0;
  const providerFailures = result.providerFailures ?? 0;
  const abandoned = answerer?.totals().abandoned ?? 0;
  if (abandoned > 0 && answerer) {
    const t = answerer.totals();
    console.warn(`${stage}: ${plural(abandoned, 'call', 'calls')} ${abandonedNote(answerer)}: ${formatUsd(t.abandonedCostUsd)} of the ${formatUsd(t.paidCostUsd)} spent.`);
  }
  if (notAttempted > 0 && answerer) console.error(budgetStopMessage(stage, notAttempted, answerer));
  if (providerFailures > 0) console.error(`${stage}: ${plural(providerFailures, 'run', 'runs')} failed at the provider; re-run to retry them (stored answers are reused).`);
  return providerFailures === 0 && notAttempted === 0;
}

/** Runs a budget stopped: what this run paid and, from its average, what would finish the stage. */
function budgetStopMessage(stage: StageName, notAttempted: number, answerer: StageAnswerer): string {
  const t = answerer.totals();
  // This run's average answer: abandoned attempts (charged at their worst case) left out.
  const answered = t.paidCostUsd === null || t.abandonedCostUsd === null ? null : t.paidCostUsd - t.abandonedCostUsd;
  const each = t.computed > 0 && answered !== null ? answered / t.computed : null;
  return (
    `${stage}: ${plural(notAttempted, 'run', 'runs')} not attempted: the budget was reached after ${formatUsd(t.paidCostUsd)} in this run` +
    `${each !== null ? `; about ${formatUsd(each * notAttempted)} more would finish the stage (${notAttempted} x ${formatUsd(each)}, this run's average)` : ''}. ` +
    'Raise max_cost_usd (the stage) or budget.max_cost_usd (pipeline.yaml) and run again: the answers bought are stored and are not paid twice.'
  );
}
