// The glue between a stage and whoever answers it: the offline analyzer or
// the LLM client, both behind the response store, with the counters the
// progress line and the run log print.
//
// Where an answer comes from, in order: the local response store, the
// answers carried in the stage's own output (`<output>/answers.jsonl`, which
// Nx restores with the output), the team's shared store on the Nx remote
// cache server when one is configured (LLM answers only), the provider. A hit
// from a later layer is copied into the local store.
// Every answer used is recorded and written back as answers.jsonl
// (writeAnswers). `--no-store` turns all of this off; META_ANALYSIS_REFRESH
// skips both lookups and overwrites the stored answers.
import { join, resolve } from 'node:path';
import { offlineAnswer } from '../../stages/analyzer.ts';
import { answerOf } from '../../stages/llm/answer.ts';
import type { Answer } from '../../stages/llm/answer.ts';
import { LLM_STAGES, STAGES } from '../../stages/config.ts';
import type { LlmStageName, StageName } from '../../stages/config.ts';
import type { SummaryInput } from '../../stages/formats.ts';
import { ANSWERS_FILE, answerPieces, indexCarriedAnswers, withCarriedAnswers } from '../../stages/llm/carried.ts';
import type { AnswerRecord, CarriedStore } from '../../stages/llm/carried.ts';
import { invocationBudget } from '../../stages/llm/budget.ts';
import { sharedRemoteStore } from '../../stages/llm/remote-store.ts';
import { openStore } from '../../stages/llm/store.ts';
import type { LlmRequest, LlmSettings, Usage } from '../../stages/llm/types.ts';
import type { LlmClient, LlmEvent, LlmPlan } from '../../stages/llm/client.ts';
import { addCost, addUsage, ZERO_USAGE } from '../../stages/llm/usage.ts';
import { formatUsd } from '../../stages/llm/pricing.ts';
import { renderSummaryPrompt } from '../../stages/summarize/summary.ts';
import type { CallPlan, LlmRunOptions, StageAnswerer, StageContext } from '../../stages/stage-context.ts';
import { writePiecesAtomicSync } from '../../stages/util/fs.ts';
import { plural } from '../../stages/util/words.ts';

export type { CallPlan, LlmRunOptions, StageAnswerer };

/**
 * `META_ANALYSIS_REFRESH=all` or a comma-separated list of stage names: those
 * stages ask again for every answer and overwrite the stored ones. Nx does not
 * hash it, so the refreshed output is cached under the target's usual key.
 */
export const REFRESH_ENV = 'META_ANALYSIS_REFRESH';

/** The stages a META_ANALYSIS_REFRESH value names ('all': every stage), and the names that are no stage. */
export function parseRefresh(value: string | undefined): { stages: ReadonlySet<StageName>; unknown: string[] } {
  const names = (value ?? '').split(',').map((n) => n.trim()).filter((n) => n !== '');
  if (names.some((n) => n.toLowerCase() === 'all')) return { stages: new Set(STAGES), unknown: [] };
  const known = new Set<string>(STAGES);
  return {
    stages: new Set(names.filter((n) => known.has(n)) as StageName[]),
    unknown: names.filter((n) => !known.has(n)),
  };
}


let interrupt: AbortController | null = null;

/**
 * Ctrl-C: the first stops scheduling and aborts calls in flight (answers
 * already stored stay stored); the second exits at once. One handler per
 * process, shared by every answerer in it.
 */
function interruptSignal(): AbortSignal {
  if (interrupt) return interrupt.signal;
  const controller = new AbortController();
  interrupt = controller;
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    console.error('\ninterrupted: no new calls; answers received so far are in the response store. Press Ctrl-C again to quit now.');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  return controller.signal;
}

function logEvent(e: LlmEvent): void {
  if (e.type === 'retry') console.warn(`  ${e.step}: retry ${e.attempt} in ${(e.delayMs / 1000).toFixed(1)}s (${e.reason})`);
  else if (e.type === 'reask') console.warn(`  ${e.step}: answer did not validate, asking again (round ${e.round}): ${e.issues.slice(0, 3).map((i) => `${i.path}: ${i.message}`).join('; ')}`);
  else if (e.type === 'warning') console.warn(`  ${e.step}: ${e.message}`);
}

/** A provider batch still running: the stage ends, not cached, and says when to check again. */
export class PendingBatchError extends Error {
  override name = 'PendingBatchError';
}

/** The stage whose settings these are (the executors pass `ctx.analysis.<stage>`). */
function stageOfSettings(ctx: StageContext, settings: LlmSettings): LlmStageName {
  const stage = LLM_STAGES.find((s) => ctx.analysis[s] === settings);
  if (!stage) throw new Error('createStageAnswerer: these settings are not a stage of the analysis; pass the stage name');
  return stage;
}

/**
 * `stage` names the stage (its output folder holds the carried answers);
 * without it, the stage is the one of `ctx.analysis` whose settings object
 * `settings` is.
 */
export async function createStageAnswerer(ctx: StageContext, settings: LlmSettings, opts: LlmRunOptions, stage?: LlmStageName): Promise<StageAnswerer> {
  const own = stage ?? stageOfSettings(ctx, settings);
  const warn = (m: string) => console.warn(m);
  const raw = process.env[REFRESH_ENV];
  const requested = parseRefresh(raw);
  if (requested.unknown.length > 0) {
    warn(`${own}: ${REFRESH_ENV}: ignoring ${requested.unknown.map((n) => `"${n}"`).join(', ')}: not a stage (use all, or some of ${STAGES.join(', ')})`);
  }
  const refresh = requested.stages.has(own);
  if (refresh) {
    console.log(`${own}: ${REFRESH_ENV}=${raw}: refreshing: every answer is asked again (the response store and ${ANSWERS_FILE} are not read) and replaces the stored one.`);
    if (process.env['NX_SKIP_NX_CACHE'] === 'true') {
      warn(
        `${own}: Nx does not cache the result of a --skip-nx-cache run, so its cache keeps the previous output under this target's key. ` +
          `To have the refreshed output cached, run \`npx nx reset --only-cache\`, then this command without --skip-nx-cache.`,
      );
    }
  }
  const local = opts.store === false ? null : openStore(ctx.storeDir, warn);
  // The team's shared store (the Nx remote cache's server, when configured): LLM answers only, after the local layers.
  const remote = local && settings.provider !== 'offline' ? sharedRemoteStore(process.env, warn) : null;
  // Under refresh the carried answers would never be read: not even loaded.
  const carried = local && !refresh ? indexCarriedAnswers(join(ctx.outputOf(own), ANSWERS_FILE), warn) : null;
  const store: CarriedStore | null = local ? withCarriedAnswers(local, carried ?? new Map(), remote) : null;
  let client: LlmClient | null = null;
  if (settings.provider !== 'offline') {
    // Loaded only when needed: the offline path never imports an SDK.
    const mod = await import('../../stages/llm/client.ts');
    const cap = ctx.analysis.budget.max_cost_usd;
    client = mod.createLlmClient(settings, {
      store,
      budget: cap === null ? null : invocationBudget(cap, resolve(ctx.workspaceRoot, '.cache/budget')),
      refresh,
      workspaceRoot: ctx.workspaceRoot,
      signal: interruptSignal(),
      onEvent: logEvent,
    });
  }
  let computed = 0;
  let reused = 0;
  let paid: Usage = ZERO_USAGE;
  let paidCost: number | null = 0;
  let answers: Usage = ZERO_USAGE;
  let answersCost: number | null = 0;
  /** Every answer used in this run, by request hash (the first use of a hash wins). */
  const used = new Map<string, AnswerRecord>();
  /** Answers a provider batch bought in this run: stored by the batch engine, then read back as store hits. */
  const boughtInBatch = new Set<string>();

  function record<T>(ans: Answer<T>, text: string): Answer<T> {
    if (!used.has(ans.requestHash)) used.set(ans.requestHash, { request_hash: ans.requestHash, text, usage: ans.usage, cost_usd: ans.costUsd });
    // An answer a batch of this run bought is read back from the store, but it was computed now.
    const boughtNow = ans.cached && boughtInBatch.delete(ans.requestHash);
    if (ans.cached && !boughtNow) reused += 1;
    else {
      computed += 1;
      paid = addUsage(paid, ans.usage);
      paidCost = addCost(paidCost, ans.costUsd);
    }
    answers = addUsage(answers, ans.usage);
    answersCost = addCost(answersCost, ans.costUsd);
    return boughtNow ? { ...ans, cached: false } : ans;
  }

  async function complete<T>(req: LlmRequest<T>): Promise<Answer<T>> {
    if (!client) throw new Error(`${req.step}: the offline provider does not answer prompts`);
    const res = await client.complete(req);
    return record(answerOf(res, req.schema !== undefined), res.text);
  }

  function offline<T>(step: string, input: unknown, compute: () => T): Answer<T> {
    const { text, ...ans } = offlineAnswer(store, step, input, compute, { refresh });
    return record(ans, text);
  }

  const summaryRequest = (input: SummaryInput, template: string): LlmRequest<string> => ({
    step: 'summarize',
    messages: [{ role: 'user', content: renderSummaryPrompt(template, input) }],
  });

  return {
    settings,
    stage: own,
    summaryRequest,
    store,
    refresh,
    async summarize(input, template) {
      if (settings.provider === 'offline') {
        // Loaded on the first offline summary: an LLM-answered run never loads the offline analyzer.
        const { offlineSummarize } = await import('../../stages/offline/summarize.ts');
        return offline('summarize', input, () => offlineSummarize(input));
      }
      return complete<string>(summaryRequest(input, template));
    },
    offline,
    complete,
    kept(requestHash) {
      const r = carried?.get(requestHash);
      if (!r) return null;
      const ans = record({ value: null, usage: r.usage, costUsd: r.cost_usd, cached: true, requestHash }, r.text);
      return { usage: ans.usage, costUsd: ans.costUsd };
    },
    probe(req) {
      return client ? client.plan(req as LlmRequest) : null;
    },
    async walkPlan(walk, remainingCalls) {
      if (!client) return { plan: { reused: 0, toPay: 0, estInputTokens: 0, estCostUsd: 0, known: true }, result: null };
      const c = client;
      let hits = 0;
      let miss: LlmPlan | null = null;
      const stop = new Error('plan: first answer not in the store');
      const storedOnly = async <T,>(req: LlmRequest<T>): Promise<Answer<T>> => {
        const p = c.plan(req as LlmRequest);
        if (!p.cached) {
          miss = p;
          throw stop;
        }
        hits += 1;
        return complete(req);
      };
      let result: Awaited<ReturnType<typeof walk>> | null = null;
      try {
        result = await walk(storedOnly as StageAnswerer['complete']);
      } catch (err) {
        if (err !== stop) throw err;
      }
      if (!miss) return { plan: { reused: hits, toPay: 0, estInputTokens: 0, estCostUsd: 0, known: true }, result };
      const m = miss as LlmPlan;
      const rest = remainingCalls(hits);
      return {
        plan: { reused: hits, toPay: rest, estInputTokens: m.estInputTokens * rest, estCostUsd: m.estCostUsd === null ? null : m.estCostUsd * rest, known: false },
        result: null,
      };
    },
    writeAnswers(dir) {
      if (!store) return;
      // The end of the stage: this run's answers reach the shared store (bounded wait; never fails the stage).
      store.flush();
      // Written in pieces: at 100,000 runs the file is 120 MiB, and one offline answer can be 45 MB.
      writePiecesAtomicSync(join(dir, ANSWERS_FILE), answerPieces(used.values()));
    },
    async prefetchBatch(requests) {
      if (!client || requests.length === 0) return;
      if (!store || refresh) {
        // The batch engine answers into the store and reads what it holds: without a store, or when every answer is to be asked again, normal calls do the work.
        console.warn(`${own}: batch mode is off ${store ? `under ${REFRESH_ENV}` : 'with --no-store'}: normal calls at normal price.`);
        return;
      }
      const cap = ctx.analysis.budget.max_cost_usd;
      const { runBatch, pendingMessage } = await import('../../stages/llm/batch/engine.ts');
      const result = await runBatch({
        settings,
        requests,
        store,
        workspaceRoot: ctx.workspaceRoot,
        signal: interruptSignal(),
        // Its own spend file in the invocation's budget folder (the engine records its spend itself).
        budget: cap === null ? null : invocationBudget(cap, resolve(ctx.workspaceRoot, '.cache/budget')),
        pollIntervalMs: settings.batch_poll_seconds * 1000,
        maxWaitMs: settings.batch_wait_minutes * 60_000,
        onEvent: (e) => {
          if (e.type === 'submitted') console.log(`${own}: batch ${e.batchId}: ${plural(e.count, 'request', 'requests')} submitted at batch price (manifest ${e.manifest})`);
          else if (e.type === 'resumed') console.log(`${own}: batch ${e.batchId}: ${plural(e.count, 'request', 'requests')} submitted by an earlier run; polling it, nothing resubmitted`);
          else if (e.type === 'status') console.log(`${own}: batch ${e.batchId}: ${e.detail}`);
          else if (e.type === 'warning') console.warn(`${own}: batch: ${e.message}`);
        },
      });
      let bought = 0;
      for (const [hash, ans] of result.answered) {
        if (ans.cached) continue;
        boughtInBatch.add(hash);
        bought += 1;
      }
      const fallback = result.failed.length + result.overBudget.length;
      console.log(
        `${own}: batch: ${plural(bought, 'answer', 'answers')} bought at batch price, ${result.answered.size - bought} already stored` +
          `${fallback ? `, ${fallback} left to normal calls (${result.failed.length} errored, expired or invalid; ${result.overBudget.length} over the budget)` : ''}.`,
      );
      if (result.pending.length > 0) {
        throw new PendingBatchError(
          `${result.pending.map(pendingMessage).join('; ')}. The stage stops here and is not cached; every answer received is stored. ` +
            `Run the same command again to poll the batch (nothing is resubmitted).`,
        );
      }
    },
    totals: () => {
      const { abandoned, abandonedUsd } = client?.totals() ?? { abandoned: 0, abandonedUsd: 0 };
      return {
        computed,
        reused,
        carried: store?.carriedHits ?? 0,
        paid,
        paidCostUsd: addCost(paidCost, abandonedUsd),
        abandoned,
        abandonedCostUsd: abandonedUsd,
        answers,
        answersCostUsd: answersCost,
      };
    },
    progressLine: (failed) => {
      if (settings.provider === 'offline') return `reused ${reused}, computed ${computed}, failed ${failed}`;
      const { abandoned, abandonedUsd } = client?.totals() ?? { abandoned: 0, abandonedUsd: 0 };
      return `reused ${reused}, computed ${computed}, failed ${failed}, spent ${formatUsd(addCost(paidCost, abandonedUsd))}${abandoned ? ` (${abandoned} abandoned at worst case)` : ''}`;
    },
  };
}
