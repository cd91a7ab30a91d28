// The batch engine: many LLM requests through a provider's own batch API, at
// batch price, into the same response store the normal client reads. It
// sends only what the store cannot answer, under the same keys (custom_id =
// the request hash), with the same bodies (the provider module builds them),
// validates every result like a normal answer and stores the valid ones at
// once, so a later normal run of the stage is a pure store hit.
//
// Crash safety: a manifest per batch (manifest.ts) is written as soon as the
// provider accepts the batch and before any waiting; on start, requests an
// open manifest covers are polled in that batch, never submitted again.
//
// What it does not do: retry failed requests (errored, expired, canceled,
// invalid results come back in `failed`: the caller asks for them with normal
// calls), or wait forever (past `maxWaitMs` the open batches come back in
// `pending`, with a message for the stage to end on).
import { estimateInputTokens, lookupStored, providerRequest, requestKey, validateAnswer } from '../client.ts';
import type { CanonicalRequest } from '../client.ts';
import type { InvocationBudget } from '../budget.ts';
import { endpointIdentity } from '../endpoint.ts';
import type { EndpointIdentity } from '../endpoint.ts';
import { createEnvLookup } from '../env.ts';
import { AbortedError, BudgetExceededError, ProviderError, formatIssues } from '../errors.ts';
import { batchCostUsd } from '../pricing.ts';
import { sleep } from '../retry.ts';
import type { ResponseStore } from '../store.ts';
import { defaultOutputTokens } from '../tokens.ts';
import type { LlmRequest, LlmResult, LlmSettings, Usage } from '../types.ts';
import { addCost, addUsage, ZERO_USAGE } from '../usage.ts';
import { createBatchBackend, splitByLimits } from './backend.ts';
import type { BatchBackend, BatchLimits, BatchResult, BatchStatus } from './backend.ts';
import { closeManifest, MANIFEST_FORMAT, readManifests, sameTarget, writeManifest } from './manifest.ts';
import type { BatchManifest } from './manifest.ts';

export const DEFAULT_POLL_INTERVAL_MS = 30_000;
export const DEFAULT_MAX_WAIT_MS = 30 * 60_000;
export const DEFAULT_RECHECK_AFTER_MS = 15 * 60_000;
/** Reads of an ended batch's results that may fail (transiently) before its waiting requests are given up. */
export const MAX_RESULT_READS = 3;

export type BatchEvent =
  /** A new batch was accepted and its manifest written. */
  | { type: 'submitted'; batchId: string; count: number; manifest: string }
  /** An open batch of an earlier run covers `count` of this run's requests: it is polled, not resubmitted. */
  | { type: 'resumed'; batchId: string; count: number }
  | { type: 'status'; batchId: string; state: 'running' | 'ended'; detail: string }
  | { type: 'answered'; batchId: string; requestHash: string }
  | { type: 'failed'; batchId: string | null; requestHash: string; reason: string }
  /** Every result of the batch is stored or given up: its manifest is deleted. */
  | { type: 'closed'; batchId: string }
  | { type: 'warning'; message: string };

export interface RunBatchOptions {
  settings: LlmSettings;
  requests: LlmRequest[];
  /** The response store (its `dir` also holds the manifests, under batches/). */
  store: ResponseStore;
  /** Environment to read keys and endpoints from (default process.env), before `<workspaceRoot>/.env`. */
  env?: NodeJS.ProcessEnv;
  workspaceRoot?: string;
  /** Replaces global fetch in the SDK clients (tests). */
  fetch?: typeof fetch;
  /** Between two status checks of the open batches (default 30 s). */
  pollIntervalMs?: number;
  /** How long to wait for open batches before returning them as pending (default 30 min; 0: one check). */
  maxWaitMs?: number;
  /** `checkAfter` of a pending batch: this long after the engine returns (default 15 min). */
  recheckAfterMs?: number;
  onEvent?: (e: BatchEvent) => void;
  /** Aborting stops submitting and waiting (AbortedError); manifests written so far stay, so a restart polls them. */
  signal?: AbortSignal;
  /**
   * The invocation's budget. Give the engine its own InvocationBudget (it
   * records its own spend file). Requests are submitted while their expected
   * cost at batch price fits; the rest come back in `overBudget`. A submitted
   * batch counts at its expected cost until its results arrive (a process
   * killed meanwhile leaves that estimate in its file for the rest of the
   * invocation: an overestimate, never an underestimate). The stage's
   * max_cost_usd is applied to the engine's own spend only.
   */
  budget?: InvocationBudget | null;
  /** Per-batch limits below the provider's (tests). */
  limits?: Partial<BatchLimits>;
  /** Use this backend instead of the provider's (tests, other batch APIs). */
  backend?: BatchBackend;
}

/** An answer by request hash: from the store (cached) or read from a batch now. */
export interface BatchAnswer extends LlmResult<unknown> {
  /** The batch it came from; null for a store hit. */
  batchId: string | null;
}

export interface PendingBatch {
  batchId: string;
  /** This run's requests still waiting in it. */
  count: number;
  /** When it is worth running the stage again (ISO). */
  checkAfter: string;
  /** When the provider gives up on the batch (ISO), when known. */
  expiresAt: string | null;
  /** The provider's last status. */
  detail: string;
}

export interface BatchFailure {
  requestHash: string;
  /** The batch it failed in; null when it was never submitted (too large). */
  batchId: string | null;
  reason: string;
}

export interface RunBatchResult {
  /** Every request answered, by hash: store hits and valid batch results. */
  answered: Map<string, BatchAnswer>;
  /** Batches still running when maxWaitMs ran out. Their manifests stay. */
  pending: PendingBatch[];
  /** Requests with no valid answer (errored, expired, canceled, invalid, unreadable): ask with normal calls. */
  failed: BatchFailure[];
  /** Requests not submitted because the budget could not cover them, with the reason. */
  overBudget: { requestHash: string; reason: string }[];
  /** Batches created by this run, and batches of earlier runs polled by it. */
  submitted: string[];
  resumed: string[];
  /** Tokens and cost (at batch price) of every result read in this run, invalid ones included: they were paid. */
  usage: Usage;
  /** USD; null when the model has no price. */
  costUsd: number | null;
}

/** The line a stage ends on while a batch is in flight (Nx must not cache that run). */
export function pendingMessage(p: PendingBatch): string {
  return `pending: ${p.count} request${p.count === 1 ? '' : 's'} in batch ${p.batchId}, check again after ${p.checkAfter}` +
    (p.expiresAt ? ` (the provider finishes or expires it by ${p.expiresAt})` : '');
}

interface Item {
  hash: string;
  canonical: CanonicalRequest;
  req: LlmRequest;
  /** Expected cost at batch price (null: unknown price). */
  estUsd: number | null;
}

interface Tracked {
  manifest: BatchManifest;
  /** This run's requests still waiting for a result in this batch. */
  waiting: Map<string, Item>;
  detail: string;
  /** Failed reads of its results so far. */
  readFailures: number;
}

/** What one runBatch call works with and builds up. */
interface Run {
  opts: RunBatchOptions;
  settings: LlmSettings;
  store: ResponseStore;
  backend: BatchBackend;
  endpoint: EndpointIdentity | null;
  emit: (e: BatchEvent) => void;
  out: RunBatchResult;
  /** Every distinct request of this call, by hash. */
  known: Map<string, Item>;
  /** Open batches this call waits for, by batch id. */
  tracked: Map<string, Tracked>;
  /**
   * Spend is recorded with what this call's submitted batches are expected to
   * cost until their results arrive: a submitted batch is money committed, and
   * the other stages of the invocation must see it.
   */
  spend: { usd: number; reservedUsd: number; reserved: Set<string> };
}

export async function runBatch(opts: RunBatchOptions): Promise<RunBatchResult> {
  const run = startRun(opts);
  const deadline = Date.now() + (opts.maxWaitMs ?? DEFAULT_MAX_WAIT_MS);
  const missing = answerFromStore(run);
  resumeOpenBatches(run, missing);
  await submitMissing(run, missing);
  await waitForResults(run, deadline);
  const checkAfter = new Date(Date.now() + (opts.recheckAfterMs ?? DEFAULT_RECHECK_AFTER_MS)).toISOString();
  for (const t of run.tracked.values()) {
    run.out.pending.push({ batchId: t.manifest.batch_id, count: t.waiting.size, checkAfter, expiresAt: t.manifest.expires_at, detail: t.detail });
  }
  recordSpend(run);
  return run.out;
}

function startRun(opts: RunBatchOptions): Run {
  const env = createEnvLookup({ env: opts.env, workspaceRoot: opts.workspaceRoot });
  return {
    opts,
    settings: opts.settings,
    store: opts.store,
    backend: opts.backend ?? createBatchBackend(opts.settings, { env, fetch: opts.fetch }),
    // Read the way the client reads it, so custom_ids are the client's store keys.
    endpoint: endpointIdentity(opts.settings, env),
    emit: (e) => {
      try {
        opts.onEvent?.(e);
      } catch {
        // a broken progress printer must not break the batch
      }
    },
    out: { answered: new Map(), pending: [], failed: [], overBudget: [], submitted: [], resumed: [], usage: { ...ZERO_USAGE }, costUsd: 0 },
    known: new Map(),
    tracked: new Map(),
    spend: { usd: 0, reservedUsd: 0, reserved: new Set() },
  };
}

function checkAborted(run: Run): void {
  if (run.opts.signal?.aborted) throw new AbortedError('batch: aborted');
}

/** 1. Answers what the store holds (validated like a normal hit); returns the rest, by hash. */
function answerFromStore(run: Run): Map<string, Item> {
  const { settings, endpoint } = run;
  for (const req of run.opts.requests) {
    const { canonical, hash } = requestKey(settings, req, endpoint);
    if (!run.known.has(hash)) run.known.set(hash, { hash, canonical, req, estUsd: expectedUsd(settings, req, canonical) });
  }
  const missing = new Map<string, Item>();
  for (const item of run.known.values()) {
    const stored = lookupStored(run.store, item.hash, item.canonical, item.req);
    if (stored?.kind === 'hit') {
      const a = stored.answer;
      run.out.answered.set(item.hash, { text: a.text, value: stored.value, usage: a.usage, costUsd: a.cost_usd, cached: true, requestHash: item.hash, attempts: 0, batchId: null });
      continue;
    }
    if (stored?.kind === 'stale') {
      run.emit({ type: 'warning', message: `stored answer ${item.hash.slice(0, 12)} no longer passes validation (${formatIssues(stored.issues, 2)}); asking again` });
    }
    missing.set(item.hash, item);
  }
  return missing;
}

/** 2. Open batches of earlier runs that cover missing requests are polled, not resubmitted (taken out of `missing`). */
function resumeOpenBatches(run: Run, missing: Map<string, Item>): void {
  const target = { provider: run.settings.provider, model: run.settings.model, endpoint: run.endpoint };
  for (const manifest of readManifests(run.store.dir, (message) => run.emit({ type: 'warning', message }))) {
    if (!sameTarget(manifest, target)) continue;
    if (manifest.custom_ids.every((id) => run.out.answered.has(id))) {
      // Every result is stored (or was answered since by normal calls): nothing left to read.
      closeManifest(run.store.dir, manifest.batch_id);
      run.emit({ type: 'closed', batchId: manifest.batch_id });
      continue;
    }
    const waiting = new Map<string, Item>();
    for (const id of manifest.custom_ids) {
      const item = missing.get(id);
      if (!item) continue;
      waiting.set(id, item);
      missing.delete(id);
    }
    if (waiting.size === 0) continue;
    run.tracked.set(manifest.batch_id, { manifest, waiting, detail: 'submitted earlier', readFailures: 0 });
    run.out.resumed.push(manifest.batch_id);
    run.emit({ type: 'resumed', batchId: manifest.batch_id, count: waiting.size });
  }
}

/** 3. Submits the missing requests, as far as the budget reaches, in batches within the limits; a manifest for each at once. */
async function submitMissing(run: Run, missing: Map<string, Item>): Promise<void> {
  const { backend, settings } = run;
  const affordable = withinBudget([...missing.values()], settings, run.opts.budget ?? null, run.out.overBudget);
  const lines: { item: Item; text: string; bytes: number }[] = [];
  for (const item of affordable) {
    const text = await backend.line({ customId: item.hash, req: providerRequest(settings, item.req.messages, item.req.schema) });
    lines.push({ item, text, bytes: Buffer.byteLength(text) + 1 });
  }
  const limits: BatchLimits = { ...backend.limits, ...run.opts.limits };
  const split = splitByLimits(lines, limits);
  for (const { item, bytes } of split.tooLarge) {
    fail(run, item, null, `the request is too large for one batch (${bytes} bytes; limit ${limits.maxBytes})`);
  }
  for (const chunk of split.batches) {
    checkAborted(run);
    const submitted = await backend.submit(chunk.map((l) => l.text));
    const manifest: BatchManifest = {
      format: MANIFEST_FORMAT,
      provider: backend.provider,
      endpoint: run.endpoint,
      api: backend.api,
      model: settings.model,
      batch_id: submitted.batchId,
      custom_ids: chunk.map((l) => l.item.hash),
      submitted_at: new Date().toISOString(),
      expires_at: submitted.expiresAt,
      extra: submitted.extra,
    };
    const file = writeManifest(run.store.dir, manifest);
    for (const l of chunk) reserve(run, l.item);
    recordSpend(run);
    run.tracked.set(submitted.batchId, { manifest, waiting: new Map(chunk.map((l) => [l.item.hash, l.item])), detail: 'submitted', readFailures: 0 });
    run.out.submitted.push(submitted.batchId);
    run.emit({ type: 'submitted', batchId: submitted.batchId, count: chunk.length, manifest: file });
  }
}

/** 4. Polls every open batch until all have ended (their results read) or the deadline passes. */
async function waitForResults(run: Run, deadline: number): Promise<void> {
  const pollIntervalMs = run.opts.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
  for (;;) {
    for (const t of [...run.tracked.values()]) {
      checkAborted(run);
      if (await poll(run, t)) run.tracked.delete(t.manifest.batch_id);
    }
    const left = deadline - Date.now();
    if (run.tracked.size === 0 || left <= 0) return;
    await sleep(Math.min(pollIntervalMs, left), run.opts.signal);
  }
}

/**
 * One status check; an ended batch has its results read. True when the batch
 * is done with. A transient failure (5xx, timeout, connection) is tried again
 * at the next check.
 */
async function poll(run: Run, t: Tracked): Promise<boolean> {
  const batchId = t.manifest.batch_id;
  let status: BatchStatus;
  try {
    status = await run.backend.status(batchId, run.opts.signal);
  } catch (err) {
    if (!isTransient(err)) throw err;
    run.emit({ type: 'warning', message: `batch ${batchId}: could not check the status (${(err as Error).message}); trying again at the next check` });
    return false;
  }
  t.detail = status.detail;
  run.emit({ type: 'status', batchId, state: status.state, detail: status.detail });
  return status.state === 'ended' && (await collect(run, t));
}

/**
 * Reads an ended batch's results, stores the valid answers, and closes its
 * manifest. False when a transient failure leaves requests to read at the next check.
 */
async function collect(run: Run, t: Tracked): Promise<boolean> {
  const batchId = t.manifest.batch_id;
  const seen = new Set<string>();
  let foreign = 0;
  try {
    for await (const r of run.backend.results(batchId, run.opts.signal)) {
      if (r.customId === null) {
        run.emit({ type: 'warning', message: `batch ${batchId}: ${r.reason}; skipped` });
        continue;
      }
      if (seen.has(r.customId)) continue; // the first result of a request counts
      seen.add(r.customId);
      const item = t.waiting.get(r.customId);
      if (!item) {
        if (!run.known.has(r.customId) && r.ok) foreign++;
        continue;
      }
      t.waiting.delete(r.customId);
      settle(run, item, batchId, r);
    }
  } catch (err) {
    if (err instanceof AbortedError || !(err instanceof Error)) throw err;
    const reason = `could not read the results of batch ${batchId}: ${err.message}`;
    if (isTransient(err) && ++t.readFailures < MAX_RESULT_READS) {
      run.emit({ type: 'warning', message: `${reason}; trying again at the next check` });
      return false;
    }
    // The manifest stays, so a later run reads the results again; the caller asks for these now.
    for (const item of t.waiting.values()) fail(run, item, batchId, reason);
    t.waiting.clear();
    return true;
  }
  for (const item of t.waiting.values()) fail(run, item, batchId, `no result in batch ${batchId} (${t.detail})`);
  t.waiting.clear();
  if (foreign > 0) {
    run.emit({ type: 'warning', message: `batch ${batchId}: ${foreign} answers are for requests this run does not make; not stored (nothing can validate them)` });
  }
  closeManifest(run.store.dir, batchId);
  run.emit({ type: 'closed', batchId });
  return true;
}

/** One result: accounted for (it was paid), validated like a normal answer, stored at once when valid. */
function settle(run: Run, item: Item, batchId: string, r: BatchResult): void {
  release(run, item);
  if (!r.ok) return fail(run, item, batchId, r.reason);
  const { text, usage } = r.answer;
  const cost = batchCostUsd(run.settings.model, usage);
  const out = run.out;
  out.usage = addUsage(out.usage, usage);
  out.costUsd = addCost(out.costUsd, cost);
  run.spend.usd += cost ?? 0;
  recordSpend(run);
  let value: unknown;
  if (item.req.schema) {
    const check = validateAnswer(text, r.answer.parsed, item.req.schema.zod);
    if (!check.ok) return fail(run, item, batchId, `invalid answer: ${formatIssues(check.issues, 3)}`);
    value = check.value;
  }
  run.store.put(item.hash, { request: item.canonical, text, usage, cost_usd: cost });
  out.answered.set(item.hash, { text, value, usage, costUsd: cost, cached: false, requestHash: item.hash, attempts: 1, batchId });
  run.emit({ type: 'answered', batchId, requestHash: item.hash });
}

function fail(run: Run, item: Item, batchId: string | null, reason: string): void {
  release(run, item);
  run.out.failed.push({ requestHash: item.hash, batchId, reason });
  run.emit({ type: 'failed', batchId, requestHash: item.hash, reason });
}

function reserve(run: Run, item: Item): void {
  run.spend.reserved.add(item.hash);
  run.spend.reservedUsd += item.estUsd ?? 0;
}

function release(run: Run, item: Item): void {
  if (run.spend.reserved.delete(item.hash)) run.spend.reservedUsd = Math.max(0, run.spend.reservedUsd - (item.estUsd ?? 0));
}

function recordSpend(run: Run): void {
  run.opts.budget?.record(run.spend.usd + run.spend.reservedUsd);
}

/** A request's expected cost at batch price: its input, and output at the step's typical size. */
function expectedUsd(settings: LlmSettings, req: LlmRequest, canonical: CanonicalRequest): number | null {
  const output = Math.min(defaultOutputTokens(req.step), settings.max_tokens);
  return batchCostUsd(settings.model, { input_tokens: estimateInputTokens(canonical.messages, canonical.schema), output_tokens: output });
}

/**
 * The requests, in order, whose expected cost fits under the stage's
 * max_cost_usd and the invocation's budget; the others go to `refused` with
 * the reason. A batch is paid for whole once submitted, so what does not fit
 * is not sent at all (the caller reports it as it reports any budget stop).
 */
function withinBudget(items: Item[], settings: LlmSettings, budget: InvocationBudget | null, refused: RunBatchResult['overBudget']): Item[] {
  const stageLimit = settings.max_cost_usd ?? null;
  if (stageLimit === null && budget === null) return items;
  const others = budget?.spentByOthers() ?? 0;
  let committed = 0;
  const fits: Item[] = [];
  for (const item of items) {
    const est = item.estUsd;
    let error: BudgetExceededError | null = null;
    if (stageLimit !== null && (est === null || committed + est > stageLimit)) {
      error = new BudgetExceededError(stageLimit, committed, est, settings.model, 'stage');
    } else if (budget !== null && (est === null || others + committed + est > budget.limitUsd)) {
      error = new BudgetExceededError(budget.limitUsd, others + committed, est, settings.model, 'invocation');
    }
    if (error) {
      refused.push({ requestHash: item.hash, reason: error.message });
      continue;
    }
    committed += est ?? 0;
    fits.push(item);
  }
  return fits;
}

/** A failure worth another try at the next check (the retry policy's notion of retryable). */
function isTransient(err: unknown): boolean {
  return err instanceof ProviderError && err.retryable;
}

