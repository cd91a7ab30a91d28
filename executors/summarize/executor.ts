// nx run <analysis>:summarize — one summary file per run of the task list.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pLimit from 'p-limit';
import { analyzerLabel, OFFLINE_NOTICE } from '../../stages/analyzer.ts';
import { runOutputPath } from '../../stages/ledger.ts';
import type { FailedRun, Ledger } from '../../stages/ledger.ts';
import { loadSummaryInput, RunInputError, summaryFileFrom } from '../../stages/summarize.ts';
import type { SummaryFile, SummaryIndexEntry } from '../../stages/summarize.ts';
import { ANSWERS_FILE } from '../../stages/llm/carried.ts';
import { sha256 } from '../../stages/llm/store.ts';
import { AbortedError, BudgetExceededError, LlmConfigError, MissingCredentialsError } from '../../stages/llm/errors.ts';
import { progressPrinter, runExecutor, stageContext, writeRunLog } from '../lib/context.ts';
import type { BaseOptions, ExecutorContextLike } from '../lib/context.ts';
import { buildOutputDir, readUpstream, writeJson, writeText } from '../lib/io.ts';
import { createStageAnswerer, formatUsd, type LlmRunOptions } from '../lib/answerer.ts';

export type SummarizeOptions = BaseOptions & LlmRunOptions;

export default async function summarize(options: SummarizeOptions, context: ExecutorContextLike) {
  return runExecutor('summarize', async () => {
    const ctx = stageContext(options, context);
    const a = ctx.analysis;
    const settings = a.summarize;
    const ledger = readUpstream<Ledger>(ctx.outputOf('task-list'), 'runs.json', 'task-list');
    const template = readFileSync(ctx.resolvePath(settings.prompt), 'utf8');
    const answerer = await createStageAnswerer(ctx, settings, options, 'summarize');

    const label = analyzerLabel(settings);
    console.log(`summarize: ${ledger.runs.length} runs with ${label}`);
    if (settings.provider === 'offline') console.log(`  ${OFFLINE_NOTICE}`);
    const limit = pLimit(settings.concurrency);
    const show = progressPrinter('summarize', ledger.runs.length);
    let done = 0;
    const index: SummaryIndexEntry[] = [];
    const failed: FailedRun[] = [];
    // Bad run data is deterministic: recorded, and the stage succeeds. A
    // provider failure is not: the stage fails (and is not cached) so that a
    // re-run asks again; answers received so far are already in the store.
    let providerFailures = 0;
    // Runs not sent because a budget was reached (listed as not attempted, with what would finish the stage).
    let notAttempted = 0;
    let budgetStop = false;
    // A missing key, a spent budget or Ctrl-C stops the stage: the remaining
    // runs are listed as not attempted, with the reason, and cost nothing.
    let stopReason: string | null = null;
    const perRun: { run_id: string; status: string; cached: boolean | null; input_tokens: number; output_tokens: number; cost_usd: number | null }[] = [];

    if (settings.provider !== 'offline' && settings.batch) {
      // Batch mode: the requests go to the provider's batch API first; the loop below then reads them from the store.
      const requests = ledger.runs.flatMap((run) => {
        try {
          return [answerer.summaryRequest(loadSummaryInput(ctx.dataRoot, run), template)];
        } catch {
          return []; // bad run data: reported by the loop below, never sent
        }
      });
      await answerer.prefetchBatch(requests);
    }

    await buildOutputDir(ctx.outputOf('summarize'), async (dir) => {
      await Promise.all(
        ledger.runs.map((run) =>
          limit(async () => {
            const rel = `summaries/${runOutputPath(run)}/elicitation_run_summary.json`;
            try {
              if (stopReason) throw new StoppedError(`not attempted: ${stopReason}`);
              const input = loadSummaryInput(ctx.dataRoot, run);
              const answer = await answerer.summarize(input, template);
              const file: SummaryFile = summaryFileFrom(run, input, answer, settings, label);
              const text = `${JSON.stringify(file, null, 2)}\n`;
              writeText(join(dir, rel), text);
              index.push({ run_id: run.run_id, status: 'done', file: rel, request_hash: answer.requestHash, sha256: sha256(text), reason: null });
              perRun.push({ run_id: run.run_id, status: 'done', cached: answer.cached, input_tokens: answer.usage.input_tokens, output_tokens: answer.usage.output_tokens, cost_usd: answer.costUsd });
            } catch (err) {
              const reason = (err as Error).message;
              // Runs the budget stopped are not provider failures: they were never sent.
              const unsent = err instanceof BudgetExceededError || (err instanceof StoppedError && budgetStop);
              if (unsent) notAttempted += 1;
              else if (!(err instanceof RunInputError)) providerFailures += 1;
              if (err instanceof BudgetExceededError && !stopReason) budgetStop = true;
              if (isStopping(err) && !stopReason) {
                stopReason = reason;
                console.error(`summarize: stopping: ${reason}`);
              }
              failed.push({ run_id: run.run_id, stage: 'summarize', reason });
              index.push({ run_id: run.run_id, status: 'failed', file: null, request_hash: null, sha256: null, reason });
              perRun.push({ run_id: run.run_id, status: 'failed', cached: null, input_tokens: 0, output_tokens: 0, cost_usd: null });
              if (!(err instanceof StoppedError)) console.error(`summarize: ${run.run_id}: ${reason}`);
            }
            done += 1;
            show(done, answerer.progressLine(failed.length));
          }),
        ),
      );
      index.sort((x, y) => (x.run_id < y.run_id ? -1 : x.run_id > y.run_id ? 1 : 0));
      failed.sort((x, y) => (x.run_id < y.run_id ? -1 : 1));
      const totals = answerer.totals();
      writeJson(join(dir, 'index.json'), {
        analysis: a.name,
        analyzer: label,
        ...(settings.provider === 'offline' ? { notice: OFFLINE_NOTICE } : {}),
        prompt_file: settings.prompt,
        prompt_sha256: sha256(template),
        statistics: {
          total_runs: ledger.runs.length,
          summarized: index.filter((e) => e.status === 'done').length,
          failed: failed.length,
          input_tokens: totals.answers.input_tokens,
          output_tokens: totals.answers.output_tokens,
          total_tokens: totals.answers.total_tokens,
          cost: totals.answersCostUsd === null ? null : totals.answersCostUsd.toFixed(8),
        },
        runs: index,
        failed,
      });
      answerer.writeAnswers(dir);
    }, (dir) => index.filter((e) => e.status === 'done' && e.file !== null && !existsSync(join(dir, e.file))).map((e) => e.file as string));

    const t = answerer.totals();
    const logFile = writeRunLog(ctx, 'summarize', {
      analysis: a.name,
      analyzer: label,
      total: ledger.runs.length,
      computed: t.computed,
      reused: t.reused,
      carried: t.carried,
      refresh: answerer.refresh,
      failed,
      runs: perRun.sort((x, y) => (x.run_id < y.run_id ? -1 : 1)),
      paid_usage: t.paid,
      paid_cost_usd: t.paidCostUsd,
    });
    console.log(
      `summarize: ${ledger.runs.length - failed.length}/${ledger.runs.length} summarized ` +
        `(${t.reused} reused from the response store, ${t.computed} computed, ${failed.length} failed` +
        `${t.carried ? `; ${t.carried} of the reused were carried in ${ANSWERS_FILE}` : ''}); ` +
        `spent ${formatUsd(t.paidCostUsd)}. Log: ${logFile}`,
    );
    if (notAttempted > 0) {
      const paidAnswers = t.computed;
      const each = paidAnswers > 0 && t.paidCostUsd !== null ? t.paidCostUsd / paidAnswers : null;
      console.error(
        `summarize: ${notAttempted} run(s) not attempted: the budget was reached after ${formatUsd(t.paidCostUsd)} in this run` +
          `${each !== null ? `; about ${formatUsd(each * notAttempted)} more would finish the stage (${notAttempted} x ${formatUsd(each)}, this run's average)` : ''}. ` +
          'Raise max_cost_usd (the stage) or budget.max_cost_usd (pipeline.yaml) and run again: the answers bought are stored and are not paid twice.',
      );
    }
    if (providerFailures > 0 || notAttempted > 0) {
      if (providerFailures === 0) return false;
      console.error(`summarize: ${providerFailures} run(s) failed at the provider; re-run to retry them (stored answers are reused).`);
      return false;
    }
    return true;
  });
}

class StoppedError extends Error {
  override name = 'StoppedError';
}

function isStopping(err: unknown): boolean {
  return err instanceof MissingCredentialsError || err instanceof BudgetExceededError || err instanceof AbortedError || err instanceof LlmConfigError;
}
