// Step 2 as a stage: a summary per run of the task list, packed into at most
// 256 shards (summarize/summaries.ts), the index that lists each run done or
// failed, and the run log's per-run lines. Run by the stage runner
// (executors/lib/runner.ts).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pLimit from 'p-limit';
import type { LlmStageDefinition, LlmTools, StageResult } from '../stage-context.ts';
import { OFFLINE_NOTICE } from '../analyzer.ts';
import { LEDGER_FILE, ledgerFile } from '../task-list/ledger.ts';
import type { FailedRun } from '../task-list/ledger.ts';
import { ANSWERS_FILE } from '../llm/carried.ts';
import { AbortedError, BudgetExceededError, LlmConfigError, MissingCredentialsError } from '../llm/errors.ts';
import { formatUsd } from '../llm/pricing.ts';
import { sha256 } from '../llm/store.ts';
import { shardOf, shardWriter, summaryDigest } from './summaries.ts';
import type { ShardWriter } from './summaries.ts';
import { previousOutput, writeReuseFile } from './reuse.ts';
import type { PreviousOutput } from './reuse.ts';
import { EVALUATIONS_FILE, loadRun, runEvaluationOf, runFilesOf } from './run-data.ts';
import type { EvaluationsFile, RunEvaluation, RunFiles } from './run-data.ts';
import { loadSummaryInput, RunInputError, summaryFileFrom } from './summary.ts';
import type { SummaryIndexEntry, SummaryIndexFile } from './summary.ts';
import { writePiecesAtomicSync } from '../util/fs.ts';
import { jsonPieces } from '../util/json-pieces.ts';

interface Input {
  /** The ledger's runs, only what is read of each (the rest of the ledger is let go once read). */
  runs: RunFiles[];
  template: string;
}

interface PerRun {
  run_id: string;
  status: string;
  cached: boolean | null;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number | null;
}

/** What the per-run loop gathers. */
interface Tally {
  index: SummaryIndexEntry[];
  failed: FailedRun[];
  perRun: PerRun[];
  /** Every run's evaluation, summarized or not: later stages read it here, not in the run's file. */
  evaluations: Map<string, RunEvaluation>;
  /** Each summarized run's input digest (reuse.json). */
  inputDigests: Map<string, string>;
  /** Runs whose summary, index entry and evaluation were kept from the previous output (reuse.ts). */
  kept: number;
  // Bad run data is deterministic: recorded, and the stage succeeds. A
  // provider failure is not: the stage fails (and is not cached) so that a
  // re-run asks again; answers received so far are already in the store.
  providerFailures: number;
  /** Runs not sent because a budget was reached (listed as not attempted, with what would finish the stage). */
  notAttempted: number;
  budgetStop: boolean;
  // A missing key, a spent budget or Ctrl-C stops the stage: the remaining
  // runs are listed as not attempted, with the reason, and cost nothing.
  stopReason: string | null;
}

export const summarizeStage: LlmStageDefinition<object, Input> = {
  stage: 'summarize',
  read: (t) => ({
    runs: t.upstream('task-list', LEDGER_FILE, ledgerFile).runs.map(runFilesOf),
    template: readFileSync(t.ctx.resolvePath(t.ctx.analysis.summarize.prompt), 'utf8'),
  }),
  subject: ({ runs }) => `${runs.length} runs`,
  run: summarizeRuns,
};

async function summarizeRuns({ runs, template }: Input, t: LlmTools<object>): Promise<StageResult> {
  const settings = t.ctx.analysis.summarize;
  const tally: Tally = { index: [], failed: [], perRun: [], evaluations: new Map(), inputDigests: new Map(), kept: 0, providerFailures: 0, notAttempted: 0, budgetStop: false, stopReason: null };
  // Nothing is kept when every answer is to be asked again, or none is to be stored.
  const { previous, reason } = t.answerer.store && !t.answerer.refresh ? previousOutput(t.ctx.outputOf('summarize'), t.keyed) : { previous: null, reason: null };
  if (reason) console.warn(`summarize: every run is read again: the previous output cannot be kept (${reason})`);
  const show = t.progress(runs.length);
  // Counted per finished run, so that kept + reused + computed + failed is always the runs done.
  const finished = { kept: 0, reused: 0, computed: 0, failed: 0 };
  const spent = () => (settings.provider === 'offline' ? '' : `, spent ${formatUsd(t.answerer.totals().paidCostUsd)}`);
  const progress = () => {
    const done = finished.kept + finished.reused + finished.computed + finished.failed;
    show(done, `${finished.kept ? `kept ${finished.kept}, ` : ''}reused ${finished.reused}, computed ${finished.computed}, failed ${finished.failed}${spent()}`);
  };
  const limit = pLimit(settings.concurrency);
  await t.output(async (dir) => {
    // Each summary goes to its shard as its run finishes: none is kept in memory.
    const shards = shardWriter(dir);
    const digests = new Map<string, string>();
    const kept = previous ? keepPrevious(previous, runs, dir, shards, digests, tally, t) : new Set<string>();
    finished.kept = kept.size;
    if (kept.size > 0) progress();
    const rest = kept.size > 0 ? runs.filter((run) => !kept.has(run.run_id)) : runs;
    if (settings.provider !== 'offline' && settings.batch) await prefetch(rest, template, t);
    await Promise.all(
      rest.map((run) =>
        limit(async () => {
          finished[await summarizeOne(run, template, t, tally, shards)] += 1;
          progress();
        }),
      ),
    );
    for (const [shard, digest] of shards.finish()) digests.set(shard, digest);
    tally.index.sort((x, y) => (x.run_id < y.run_id ? -1 : x.run_id > y.run_id ? 1 : 0));
    tally.failed.sort((x, y) => (x.run_id < y.run_id ? -1 : 1));
    // A line per run each (40 and 24 MiB at 100,000 runs): written as their text is made.
    writePiecesAtomicSync(join(dir, 'index.json'), jsonPieces(indexFile(runs, template, tally, t)));
    writePiecesAtomicSync(join(dir, EVALUATIONS_FILE), jsonPieces(evaluationsOf(tally)));
    writeReuseFile(dir, tally.inputDigests, digests);
  }, (dir) => [...new Set(tally.index.flatMap((e) => (e.status === 'done' && e.file !== null ? [e.file] : [])))].filter((file) => !existsSync(join(dir, file))));
  return result(runs, tally, t);
}

/**
 * The runs whose previous result is kept (reuse.ts), put into the output being
 * built in `dir`: each one's index entry, evaluation and answer, and its line,
 * either added to its shard or, when every run of the shard is kept and it
 * holds no other run of the ledger, with the whole shard copied. A shard whose
 * bytes are not the recorded ones, or a run whose answer is not carried, is
 * left to be computed. Returns the kept runs' ids.
 */
function keepPrevious(previous: PreviousOutput, runs: RunFiles[], dir: string, shards: ShardWriter, digests: Map<string, string>, tally: Tally, t: LlmTools<object>): Set<string> {
  const byShard = new Map<string, { candidates: { run: RunFiles; entry: SummaryIndexEntry }[]; others: number }>();
  for (const run of runs) {
    const shard = shardOf(run.run_id);
    let s = byShard.get(shard);
    if (!s) byShard.set(shard, (s = { candidates: [], others: 0 }));
    const entry = previous.entry(run.run_id, run.input_digest);
    if (entry !== null && entry.file === shard && entry.request_hash !== null) s.candidates.push({ run, entry });
    else s.others += 1;
  }
  const kept = new Set<string>();
  for (const [shard, s] of byShard) {
    if (s.candidates.length === 0) continue;
    const bytes = previous.shardBytes(shard);
    if (bytes === null) continue;
    const lineOf = new Map<string, number>(previous.shardRuns(shard).map((id, i) => [id, i]));
    const keptHere: { run: RunFiles; entry: SummaryIndexEntry }[] = [];
    for (const c of s.candidates) {
      // Recorded as used only here, once the shard is known good: a run counted now is never computed after.
      const answer = lineOf.has(c.run.run_id) ? t.answerer.kept(c.entry.request_hash as string) : null;
      if (answer === null) continue;
      keptHere.push(c);
      tally.index.push(c.entry);
      tally.evaluations.set(c.run.run_id, previous.evaluation(c.run.run_id) as RunEvaluation);
      tally.inputDigests.set(c.run.run_id, c.run.input_digest);
      tally.perRun.push({ run_id: c.run.run_id, status: 'done', cached: true, input_tokens: answer.usage.input_tokens, output_tokens: answer.usage.output_tokens, cost_usd: answer.costUsd });
      kept.add(c.run.run_id);
    }
    if (keptHere.length === lineOf.size && keptHere.length === s.candidates.length && s.others === 0) {
      digests.set(shard, previous.writeShard(shard, bytes, dir));
      continue;
    }
    const lines = bytes.toString('utf8').split('\n');
    for (const c of keptHere) shards.addLine(c.run.run_id, lines[lineOf.get(c.run.run_id) as number] as string);
  }
  tally.kept = kept.size;
  return kept;
}

/** Batch mode: the requests go to the provider's batch API first; the per-run loop then reads them from the store. */
async function prefetch(runs: RunFiles[], template: string, t: LlmTools<object>): Promise<void> {
  const requests = runs.flatMap((run) => {
    try {
      return [t.answerer.summaryRequest(loadSummaryInput(t.ctx.dataRoot, run), template)];
    } catch {
      return []; // bad run data: reported by the per-run loop, never sent
    }
  });
  await t.answerer.prefetchBatch(requests);
}

/** One run: its summary added to its shard and indexed, or its failure recorded; what it was. */
async function summarizeOne(run: RunFiles, template: string, t: LlmTools<object>, tally: Tally, shards: ShardWriter): Promise<'reused' | 'computed' | 'failed'> {
  const loaded = loadRun(t.ctx.dataRoot, run);
  tally.evaluations.set(run.run_id, runEvaluationOf(loaded.evaluation));
  try {
    if (tally.stopReason) throw new StoppedError(`not attempted: ${tally.stopReason}`);
    const input = loaded.input();
    const answer = await t.answerer.summarize(input, template);
    const file = summaryFileFrom(run, input, answer, t.ctx.analysis.summarize, t.label);
    const shard = shards.add(file);
    tally.inputDigests.set(run.run_id, run.input_digest);
    tally.index.push({ run_id: run.run_id, status: 'done', file: shard, request_hash: answer.requestHash, sha256: summaryDigest(file), reason: null });
    tally.perRun.push({ run_id: run.run_id, status: 'done', cached: answer.cached, input_tokens: answer.usage.input_tokens, output_tokens: answer.usage.output_tokens, cost_usd: answer.costUsd });
    return answer.cached ? 'reused' : 'computed';
  } catch (err) {
    recordFailure(run, err, tally);
    return 'failed';
  }
}

/** A run that got no summary: counted by why (bad data, provider, budget) and listed with the reason. */
function recordFailure(run: RunFiles, err: unknown, tally: Tally): void {
  const reason = (err as Error).message;
  // Runs the budget stopped are not provider failures: they were never sent.
  const unsent = err instanceof BudgetExceededError || (err instanceof StoppedError && tally.budgetStop);
  if (unsent) tally.notAttempted += 1;
  else if (!(err instanceof RunInputError)) tally.providerFailures += 1;
  if (err instanceof BudgetExceededError && !tally.stopReason) tally.budgetStop = true;
  if (isStopping(err) && !tally.stopReason) {
    tally.stopReason = reason;
    console.error(`summarize: stopping: ${reason}`);
  }
  tally.failed.push({ run_id: run.run_id, stage: 'summarize', reason });
  tally.index.push({ run_id: run.run_id, status: 'failed', file: null, request_hash: null, sha256: null, reason });
  tally.perRun.push({ run_id: run.run_id, status: 'failed', cached: null, input_tokens: 0, output_tokens: 0, cost_usd: null });
  if (!(err instanceof StoppedError)) console.error(`summarize: ${run.run_id}: ${reason}`);
}

function indexFile(runs: RunFiles[], template: string, tally: Tally, t: LlmTools<object>) {
  const settings = t.ctx.analysis.summarize;
  const totals = t.answerer.totals();
  return {
    analysis: t.ctx.analysis.name,
    analyzer: t.label,
    ...(settings.provider === 'offline' ? { notice: OFFLINE_NOTICE } : {}),
    prompt_file: settings.prompt,
    prompt_sha256: sha256(template),
    statistics: {
      total_runs: runs.length,
      summarized: tally.index.filter((e) => e.status === 'done').length,
      failed: tally.failed.length,
      input_tokens: totals.answers.input_tokens,
      output_tokens: totals.answers.output_tokens,
      total_tokens: totals.answers.total_tokens,
      cost: totals.answersCostUsd === null ? null : totals.answersCostUsd.toFixed(8),
    },
    runs: tally.index,
    failed: tally.failed,
  } satisfies SummaryIndexFile;
}

/** evaluations.json: every run's evaluation, by run id in code-point order. */
function evaluationsOf(tally: Tally): EvaluationsFile {
  const ids = [...tally.evaluations.keys()].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  return { runs: Object.fromEntries(ids.map((id) => [id, tally.evaluations.get(id) as RunEvaluation])) };
}

function result(runs: RunFiles[], tally: Tally, t: LlmTools<object>): StageResult {
  const total = runs.length;
  return {
    log: { total, kept: tally.kept, failed: tally.failed, runs: tally.perRun.sort((x, y) => (x.run_id < y.run_id ? -1 : 1)) },
    summary: (logFile) => {
      const s = t.answerer.totals();
      return [
        `summarize: ${total - tally.failed.length}/${total} summarized ` +
          `(${tally.kept ? `${tally.kept} kept from the previous output (unchanged runs), ` : ''}` +
          `${s.reused - tally.kept} reused from the response store, ${s.computed} computed, ${tally.failed.length} failed` +
          `${s.carried ? `; ${s.carried} of the reused were carried in ${ANSWERS_FILE}` : ''}); ` +
          `spent ${formatUsd(s.paidCostUsd)} to build this output. Log: ${logFile}`,
      ];
    },
    providerFailures: tally.providerFailures,
    notAttempted: tally.notAttempted,
  };
}

class StoppedError extends Error {
  override name = 'StoppedError';
}

/** Errors after which no further run is sent: a missing key, a spent budget, Ctrl-C, a configuration mistake. */
function isStopping(err: unknown): boolean {
  return err instanceof MissingCredentialsError || err instanceof BudgetExceededError || err instanceof AbortedError || err instanceof LlmConfigError;
}
