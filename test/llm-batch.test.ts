// The batch engine over the real OpenAI and Anthropic SDK clients and the
// fake provider's batch endpoints: answers stored once under the request
// hash (so a normal run is a pure store hit), batch price, restart after a
// kill without resubmitting, partial failures through fallback, results out
// of order, invalid results not stored, splitting, budget, unsupported providers.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createBatchBackend } from '../stages/llm/batch/backend.ts';
import { batchSupported } from '../stages/llm/types.ts';
import { pendingMessage, runBatch } from '../stages/llm/batch/engine.ts';
import type { BatchEvent, RunBatchOptions } from '../stages/llm/batch/engine.ts';
import { manifestDir, readManifests } from '../stages/llm/batch/manifest.ts';
import { createLlmClient, estimateInputTokens, providerRequest, schemaJson } from '../stages/llm/client.ts';
import { createEnvLookup } from '../stages/llm/env.ts';
import { AbortedError, LlmConfigError } from '../stages/llm/errors.ts';
import { invocationBudget } from '../stages/llm/budget.ts';
import { batchCostUsd, costUsd } from '../stages/llm/pricing.ts';
import { openStore } from '../stages/llm/store.ts';
import type { ResponseStore } from '../stages/llm/store.ts';
import { defaultOutputTokens } from '../stages/llm/tokens.ts';
import type { LlmRequest, LlmSettings, ProviderName } from '../stages/llm/types.ts';
import { analyst } from './helpers/analyst-fake.ts';
import { startFakeProviderServer } from './helpers/fake-provider-server.ts';
import type { FakeProviderServer, RecordedRequest } from './helpers/fake-provider-server.ts';
import { fakeBaseUrl, testLlmSettings } from './helpers/llm-over-fake.ts';

const Category = z.object({ name: z.string(), count: z.number().int().min(0) });
const schema = { name: 'category', zod: Category };
const KEYS = { OPENAI_API_KEY: 'sk-test-batch-0123456789', ANTHROPIC_API_KEY: 'sk-ant-batch-0123456789' };
const PROVIDERS = ['openai', 'anthropic'] as const;

let server: FakeProviderServer;
let dir: string;
let store: ResponseStore;
/** store.put calls per request hash. */
let puts: Map<string, number>;

beforeAll(async () => {
  server = await startFakeProviderServer();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'llm-batch-'));
  const inner = openStore(join(dir, 'store'));
  puts = new Map();
  // Every write counts, whichever way it is made (the batch engine puts, normal calls save).
  const count = (hash: string) => puts.set(hash, (puts.get(hash) ?? 0) + 1);
  store = {
    dir: inner.dir,
    get: (hash, request) => inner.get(hash, request),
    put: (hash, answer) => {
      count(hash);
      inner.put(hash, answer);
    },
    save: (hash, answer) => {
      count(hash);
      return inner.save(hash, answer);
    },
  };
  // Each request is answered with a valid category named after the run in its prompt.
  server.handle(answerByRun);
});
afterEach(() => {
  server.reset();
  rmSync(dir, { recursive: true, force: true });
});
afterAll(async () => {
  await server.close();
});

function answerByRun(r: RecordedRequest) {
  const user = (r.body?.messages as { role: string; content: string }[] | undefined)?.find((m) => m.role === 'user')?.content ?? '';
  const run = /run (\d+)/.exec(user)?.[1] ?? 'none';
  return { text: JSON.stringify({ name: `run-${run}`, count: Number(run) || 0 }), usage: { input: 100, output: 20 } };
}

function settings(provider: ProviderName, extra: Partial<LlmSettings> = {}): LlmSettings {
  return testLlmSettings(provider, provider === 'anthropic' ? 'claude-haiku-4-5' : 'gpt-5-mini', { concurrency: 4, base_url: fakeBaseUrl(server, provider), ...extra });
}

const request = (i: number): LlmRequest<z.infer<typeof Category>> => ({
  step: 'categorize',
  messages: [
    { role: 'system', content: 'You sort runs into categories.' },
    { role: 'user', content: `Categorize run ${i}.` },
  ],
  schema,
});
const requests = (n: number) => Array.from({ length: n }, (_, i) => request(i + 1));

function batch(s: LlmSettings, reqs: LlmRequest[], extra: Partial<RunBatchOptions> = {}) {
  return runBatch({ settings: s, requests: reqs, store, env: KEYS, workspaceRoot: dir, pollIntervalMs: 5, maxWaitMs: 10_000, ...extra });
}

function client(s: LlmSettings) {
  return createLlmClient(s, { store, env: KEYS, workspaceRoot: dir, retry: { sleep: async () => {} } });
}

/** HTTP requests to the fake that are normal provider calls (not batch endpoints). */
const normalCalls = () => server.requests.filter((r) => r.protocol !== 'unknown').length;
const openManifests = () => readManifests(store.dir);

describe.each(PROVIDERS)('%s batches', (provider) => {
  it('answers every request, stores each once under its request hash, and a normal run is then a pure store hit', async () => {
    const s = settings(provider);
    const reqs = requests(6);
    const result = await batch(s, reqs);

    expect(result.failed).toEqual([]);
    expect(result.pending).toEqual([]);
    expect(result.answered.size).toBe(6);
    expect(server.batches.counters).toMatchObject({ created: 1, lines: 6 });
    expect(normalCalls()).toBe(0);
    expect([...puts.values()]).toEqual([1, 1, 1, 1, 1, 1]);
    // The manifest is closed once every result is stored.
    expect(openManifests()).toEqual([]);

    const c = client(s);
    const before = server.requests.length;
    for (const [i, r] of reqs.entries()) {
      const answer = await c.complete(r);
      expect(answer.cached).toBe(true);
      expect(answer.value).toEqual({ name: `run-${i + 1}`, count: i + 1 });
      expect(result.answered.get(answer.requestHash)?.value).toEqual(answer.value);
    }
    expect(server.requests.length).toBe(before);
    // custom_ids are the request hashes the client uses.
    expect(new Set(server.batches.list[0]!.customIds)).toEqual(new Set(result.answered.keys()));
  });

  it('sends each batch line exactly the body of the normal call', async () => {
    const s = settings(provider);
    await batch(s, [request(1)]);
    const line = server.batches.lines[0]!;
    // The same request through the normal client, with no store: its body on the wire.
    const normal = createLlmClient(s, { store: null, env: KEYS, workspaceRoot: dir });
    await normal.complete(request(1));
    const call = server.requests.find((r) => r.protocol !== 'unknown')!;
    expect(line.body).toEqual(call.body);
    expect(line.path).toBe(call.path);
  });

  it('stores the batch price: half the normal price', async () => {
    const s = settings(provider);
    const result = await batch(s, requests(2));
    const full = costUsd(s.model, { input_tokens: 100, output_tokens: 20 })!;
    for (const a of result.answered.values()) {
      expect(a.costUsd).toBeCloseTo(full / 2, 12);
      expect(store.get(a.requestHash)!.cost_usd).toBeCloseTo(full / 2, 12);
    }
    expect(result.costUsd).toBeCloseTo(full, 12);
    expect(result.usage).toEqual({ input_tokens: 200, output_tokens: 40, total_tokens: 240 });
  });

  it('after a kill it polls the same batch, submits nothing again, and stores every answer once', async () => {
    const s = settings(provider);
    const reqs = requests(5);
    server.batches.configure({ completeAfterPolls: 3 });

    // First process: stopped right after its batch was accepted.
    const stop = new AbortController();
    const first = batch(s, reqs, { signal: stop.signal, onEvent: (e) => e.type === 'submitted' && stop.abort() });
    await expect(first).rejects.toBeInstanceOf(AbortedError);
    const [manifest] = openManifests();
    expect(manifest).toMatchObject({ provider, model: s.model, custom_ids: expect.any(Array) });
    expect(manifest!.custom_ids).toHaveLength(5);
    const batchId = manifest!.batch_id;

    // Second process: gives up waiting at once and says what is pending.
    const events: BatchEvent[] = [];
    const second = await batch(s, reqs, { maxWaitMs: 0, onEvent: (e) => events.push(e) });
    expect(events).toContainEqual({ type: 'resumed', batchId, count: 5 });
    expect(second.resumed).toEqual([batchId]);
    expect(second.submitted).toEqual([]);
    expect(second.pending).toEqual([expect.objectContaining({ batchId, count: 5 })]);
    expect(pendingMessage(second.pending[0]!)).toMatch(new RegExp(`^pending: 5 requests in batch ${batchId}, check again after \\d{4}-\\d\\d-\\d\\dT`));
    expect(second.answered.size).toBe(0);

    // Third process: waits for it.
    const third = await batch(s, reqs);
    expect(third.answered.size).toBe(5);
    expect(third.resumed).toEqual([batchId]);
    expect(server.batches.counters).toMatchObject({ created: 1, lines: 5 });
    expect(puts.size).toBe(5);
    expect([...puts.values()].every((n) => n === 1)).toBe(true);
    expect(openManifests()).toEqual([]);

    // Fourth: everything is in the store; nothing is sent or polled.
    const polls = server.batches.counters.polls;
    const fourth = await batch(s, reqs);
    expect([...fourth.answered.values()].every((a) => a.cached)).toBe(true);
    expect(server.batches.counters).toMatchObject({ created: 1, polls });
  });

  it('with 10% errored and 5% expired requests, falling back to normal calls completes every request', async () => {
    const s = settings(provider);
    const reqs = requests(40);
    server.batches.configure({ errorFraction: 0.1, expireFraction: 0.05 });
    const result = await batch(s, reqs);

    expect(result.answered.size).toBe(34);
    expect(result.failed).toHaveLength(6);
    expect(result.failed.filter((f) => /^expired/.test(f.reason))).toHaveLength(2);
    expect(result.failed.filter((f) => /^errored/.test(f.reason))).toHaveLength(4);
    for (const f of result.failed) expect(store.get(f.requestHash)).toBeUndefined();
    expect(openManifests()).toEqual([]);

    // The caller asks for the failed ones with normal calls.
    const c = client(s);
    const byHash = new Map(reqs.map((r) => [c.plan(r).requestHash, r]));
    for (const f of result.failed) {
      const answer = await c.complete(byHash.get(f.requestHash)!);
      expect(answer.cached).toBe(false);
    }
    expect(normalCalls()).toBe(6);
    // Every request accounted for: one answer each, stored once.
    const all = new Set([...result.answered.keys(), ...result.failed.map((f) => f.requestHash)]);
    expect(all).toEqual(new Set(byHash.keys()));
    expect(puts.size).toBe(40);
    expect([...puts.values()].every((n) => n === 1)).toBe(true);
  });

  it('splits beyond the per-batch request limit', async () => {
    const s = settings(provider);
    const result = await batch(s, requests(8), { limits: { maxRequests: 3 } });
    expect(result.submitted).toHaveLength(3);
    expect(server.batches.list.map((b) => b.customIds.length)).toEqual([3, 3, 2]);
    expect(result.answered.size).toBe(8);
    expect(openManifests()).toEqual([]);
  });

  it('splits beyond the per-batch byte limit, and a request larger than the limit alone is failed unsent', async () => {
    const s = settings(provider);
    const small = requests(4);
    const big: LlmRequest = { ...request(99), messages: [{ role: 'user', content: `Categorize run 99. ${'x'.repeat(5000)}` }] };
    // Room for two of the small lines per batch (each line counts its newline).
    const backend = createBatchBackend(s, { env: createEnvLookup({ env: KEYS, workspaceRoot: dir }) });
    const line = await backend.line({ customId: 'f'.repeat(64), req: providerRequest(s, small[0]!.messages, small[0]!.schema) });
    const result = await batch(s, [...small, big], { limits: { maxBytes: 2 * (Buffer.byteLength(line) + 1) + 2 } });
    expect(server.batches.list.map((b) => b.customIds.length)).toEqual([2, 2]);
    expect(result.answered.size).toBe(4);
    expect(result.failed).toEqual([expect.objectContaining({ batchId: null, reason: expect.stringMatching(/too large for one batch/) })]);
  });

  it('keeps keys out of manifests and stored answers', async () => {
    const s = settings(provider);
    server.batches.configure({ completeAfterPolls: 5 });
    await batch(s, requests(2), { maxWaitMs: 0 });
    const files = readdirSync(manifestDir(store.dir));
    expect(files).toHaveLength(1);
    const text = readFileSync(join(manifestDir(store.dir), files[0]!), 'utf8');
    expect(text).not.toContain(KEYS.OPENAI_API_KEY);
    expect(text).not.toContain(KEYS.ANTHROPIC_API_KEY);
    expect(JSON.parse(text)).toMatchObject({ endpoint: { base_url: s.base_url }, api: provider === 'openai' ? '/v1/chat/completions' : '/v1/messages' });
    await batch(s, requests(2));
    const stored = readdirSync(store.dir, { recursive: true }).map(String).filter((f) => f.endsWith('.json'));
    for (const f of stored) expect(readFileSync(join(store.dir, f), 'utf8')).not.toMatch(/sk-(ant-)?test|sk-ant-batch|sk-test-batch/);
  });

  it('submits only what the budget covers and reports the rest', async () => {
    const one = request(1);
    const est = batchCostUsd(settings(provider).model, {
      input_tokens: estimateInputTokens(one.messages, schemaJson(Category)),
      output_tokens: Math.min(defaultOutputTokens('categorize'), 1000),
    })!;
    const s = settings(provider, { max_cost_usd: est * 2.5 });
    const result = await batch(s, requests(5));
    expect(server.batches.counters.lines).toBe(2);
    expect(result.answered.size).toBe(2);
    expect(result.overBudget).toHaveLength(3);
    expect(result.overBudget[0]!.reason).toMatch(/^budget: .*max_cost_usd/);
  });
});

describe('a killed process', () => {
  it('leaves a manifest (SIGKILL after submission); the next process polls that batch and submits nothing', async () => {
    const s = settings('openai');
    // Requests without a schema, so the child can take them as JSON.
    const reqs: LlmRequest[] = [1, 2, 3].map((i) => ({ step: 'summarize', messages: [{ role: 'user', content: `Summarize run ${i}.` }] }));
    server.batches.configure({ completeAfterPolls: 1_000_000 });
    const code = `
      const { runBatch } = await import(${JSON.stringify(new URL('../stages/llm/batch/engine.ts', import.meta.url).href)});
      const { openStore } = await import(${JSON.stringify(new URL('../stages/llm/store.ts', import.meta.url).href)});
      const input = JSON.parse(process.env.BATCH_INPUT);
      await runBatch({ ...input, store: openStore(input.storeDir), pollIntervalMs: 10, maxWaitMs: 60000 });
    `;
    const input = { settings: s, requests: reqs, storeDir: store.dir, env: KEYS, workspaceRoot: dir };
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], { env: { ...process.env, BATCH_INPUT: JSON.stringify(input) }, stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const started = Date.now();
      while (openManifests().length === 0 && Date.now() - started < 20_000) await new Promise((r) => setTimeout(r, 10));
    } finally {
      child.kill('SIGKILL');
    }
    await exited;
    const [manifest] = openManifests();
    expect(manifest?.custom_ids).toHaveLength(3);

    server.batches.configure({ completeAfterPolls: 0 });
    const result = await batch(s, reqs);
    expect(result.resumed).toEqual([manifest!.batch_id]);
    expect(result.submitted).toEqual([]);
    expect(result.answered.size).toBe(3);
    expect(server.batches.counters).toMatchObject({ created: 1, lines: 3 });
    expect([...puts.values()]).toEqual([1, 1, 1]);
    expect(openManifests()).toEqual([]);
  });
});

describe('budget', () => {
  it('records the expected cost of a submitted batch as committed spend, then the actual batch cost', async () => {
    const s = settings('openai');
    const budgetDir = join(dir, 'budget');
    const own = invocationBudget(1, budgetDir, 'inv-1');
    const other = invocationBudget(1, budgetDir, 'inv-1');
    server.batches.configure({ completeAfterPolls: 2 });
    const pending = await batch(s, requests(3), { budget: own, maxWaitMs: 0 });
    expect(pending.pending).toHaveLength(1);
    // While the batch runs, the other budget users see its expected cost.
    expect(other.spentByOthers()).toBeGreaterThan(0);
    // A later invocation reads the results: it records what they actually cost.
    const done = await batch(s, requests(3), { budget: invocationBudget(1, budgetDir, 'inv-later') });
    expect(done.answered.size).toBe(3);
    expect(done.costUsd).toBeCloseTo(3 * batchCostUsd(s.model, { input_tokens: 100, output_tokens: 20 })!, 12);
    expect(invocationBudget(1, budgetDir, 'inv-later').spentByOthers()).toBeCloseTo(done.costUsd!, 12);
  });

  it('an invocation budget that is already spent submits nothing', async () => {
    const budgetDir = join(dir, 'budget');
    invocationBudget(0.001, budgetDir, 'inv-spent').record(0.001);
    const result = await batch(settings('anthropic'), requests(3), { budget: invocationBudget(0.001, budgetDir, 'inv-spent') });
    expect(server.batches.counters.created).toBe(0);
    expect(result.overBudget.map((o) => o.reason)).toEqual(Array(3).fill(expect.stringMatching(/budget\.max_cost_usd \(the whole invocation\)/)));
  });
});

describe('results', () => {
  it('Anthropic results out of order are matched by custom_id; malformed and invalid results are not stored', async () => {
    const s = settings('anthropic');
    const reqs = requests(6);
    server.batches.configure({ resultOrder: 'reverse' });
    server.handle((r, i) => {
      const user = (r.body?.messages as { content: string }[])[0]!.content;
      if (user.includes('run 2.')) return { text: '{"name": 5}' }; // fails the schema
      if (user.includes('run 4.')) return { json: { type: 'message', role: 'assistant' } }; // no content
      return answerByRun(r);
    });
    const result = await batch(s, reqs);
    expect(result.answered.size).toBe(4);
    for (const a of result.answered.values()) {
      const run = (a.value as { count: number }).count;
      // Matched by custom_id: the value belongs to the request with that hash.
      expect(client(s).plan(request(run)).requestHash).toBe(a.requestHash);
    }
    const reasons = result.failed.map((f) => f.reason).sort();
    expect(reasons).toEqual([expect.stringMatching(/^anthropic: malformed response/), expect.stringMatching(/^invalid answer: name/)]);
    for (const f of result.failed) expect(store.get(f.requestHash)).toBeUndefined();
    // The invalid answer was paid for, so it is in the accounting.
    expect(result.usage.output_tokens).toBeGreaterThan(4 * 20);
  });

  it('an OpenAI output line that is not JSON is skipped with a warning; its request fails and is not stored', async () => {
    const s = settings('openai');
    server.handle((r) => (JSON.stringify(r.body).includes('run 3.') ? { raw: '{"choices": [' } : answerByRun(r)));
    const events: BatchEvent[] = [];
    const result = await batch(s, requests(4), { onEvent: (e) => events.push(e) });
    expect(result.answered.size).toBe(3);
    expect(result.failed).toEqual([expect.objectContaining({ reason: expect.stringMatching(/^no result in batch batch_/) })]);
    expect(store.get(result.failed[0]!.requestHash)).toBeUndefined();
    expect(events).toContainEqual({ type: 'warning', message: expect.stringMatching(/a result line is not JSON/) });
  });

  it('an Anthropic results stream that breaks keeps what was read, gives up the rest after a few tries, and keeps the manifest', async () => {
    const s = settings('anthropic');
    const reqs = requests(4);
    server.handle((r) => (JSON.stringify(r.body).includes('run 3.') ? { raw: '{"broken' } : answerByRun(r)));
    const events: BatchEvent[] = [];
    const result = await batch(s, reqs, { onEvent: (e) => events.push(e) });
    expect(result.answered.size).toBe(2);
    expect(result.failed.map((f) => f.reason)).toEqual([expect.stringMatching(/^could not read the results of batch msgbatch_/), expect.any(String)]);
    expect(server.batches.counters.resultReads).toBe(3);
    expect(events.filter((e) => e.type === 'warning')).toHaveLength(2);
    expect(openManifests()).toHaveLength(1);

    // The caller answers the rest with normal calls; the next run finds everything stored and closes the manifest.
    server.handle(answerByRun);
    const c = client(s);
    const byHash = new Map(reqs.map((r) => [c.plan(r).requestHash, r]));
    for (const f of result.failed) await c.complete(byHash.get(f.requestHash)!);
    const again = await batch(s, reqs);
    expect(again.answered.size).toBe(4);
    expect(openManifests()).toEqual([]);
    expect(server.batches.counters.created).toBe(1);
    expect([...puts.values()].every((n) => n === 1)).toBe(true);
  });

  it('a status check that fails transiently is tried again at the next check', async () => {
    server.batches.configure({ statusErrors: 2 });
    const events: BatchEvent[] = [];
    const result = await batch(settings('openai'), requests(2), { onEvent: (e) => events.push(e) });
    expect(result.answered.size).toBe(2);
    expect(events.filter((e) => e.type === 'warning').map((e) => (e as { message: string }).message)).toEqual([
      expect.stringMatching(/could not check the status \(openai: HTTP 503/),
      expect.stringMatching(/could not check the status/),
    ]);
  });

  it('gpt-5-pro requests go to a /v1/responses batch with the Responses body', async () => {
    const s = settings('openai', { model: 'gpt-5-pro' });
    const result = await batch(s, [request(1)]);
    expect(result.answered.size).toBe(1);
    const line = server.batches.lines[0]!;
    expect(line.path).toBe('/v1/responses');
    await createLlmClient(s, { store: null, env: KEYS, workspaceRoot: dir }).complete(request(1));
    expect(line.body).toEqual(server.requests.find((r) => r.protocol === 'responses')!.body);
  });

  it('the scripted analyst answers batch lines like normal requests', async () => {
    const a = analyst();
    server.handle(a.handler);
    const summary: LlmRequest = { step: 'summarize', messages: [{ role: 'user', content: '## Original instruction\nclean up' }] };
    const result = await batch(settings('openai'), [summary]);
    expect([...result.answered.values()][0]!.text).toMatch(/^The perturbation added a cue/);
    expect(a.counts.summarize).toBe(1);
  });

  it('a cancelled batch ends with every request canceled, reported as failed', async () => {
    const s = settings('anthropic');
    server.batches.configure({ completeAfterPolls: 100 });
    const events: BatchEvent[] = [];
    const pending = await batch(s, requests(3), { maxWaitMs: 0, onEvent: (e) => events.push(e) });
    const batchId = pending.pending[0]!.batchId;
    await createBatchBackend(s, { env: createEnvLookup({ env: KEYS, workspaceRoot: dir }) }).cancel(batchId);
    const result = await batch(s, requests(3));
    expect(server.batches.counters.cancels).toBe(1);
    expect(result.failed.map((f) => f.reason)).toEqual(['canceled', 'canceled', 'canceled']);
    expect(existsSync(join(manifestDir(store.dir), `${batchId}.json`))).toBe(false);
  });
});

describe('providers without batch support', () => {
  it.each(['azure', 'anthropic_bedrock', 'openai_compatible', 'offline'] as const)('%s says so, and normal calls are used', (provider) => {
    expect(batchSupported(provider)).toBe(false);
    expect(() => createBatchBackend(settings(provider), { env: createEnvLookup({ env: KEYS, workspaceRoot: dir }) })).toThrow(LlmConfigError);
    expect(() => createBatchBackend(settings(provider), { env: createEnvLookup({ env: KEYS, workspaceRoot: dir }) })).toThrow(/^batch: /);
  });

  it('openai and anthropic are supported', () => {
    expect(batchSupported('openai')).toBe(true);
    expect(batchSupported('anthropic')).toBe(true);
  });
});
