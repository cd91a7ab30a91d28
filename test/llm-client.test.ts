// The client over real SDK clients and the fake server: the response store,
// re-asking invalid answers, retries, budget, abort, accounting.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { canonicalRequest, createLlmClient, extractJson, reaskMessage, schemaJson, validateAnswer } from '../stages/llm/client.ts';
import { endpointIdentity } from '../stages/llm/endpoint.ts';
import { createEnvLookup } from '../stages/llm/env.ts';
import type { LlmClientOptions, LlmEvent } from '../stages/llm/client.ts';
import { AbortedError, BudgetExceededError, InvalidAnswerError, ProviderError } from '../stages/llm/errors.ts';
import { openStore, requestHash } from '../stages/llm/store.ts';
import type { ResponseStore } from '../stages/llm/store.ts';
import type { LlmRequest, LlmSettings, ProviderName } from '../stages/llm/types.ts';
import { startFakeProviderServer } from './helpers/fake-provider-server.ts';
import type { FakeProviderServer } from './helpers/fake-provider-server.ts';
import { fakeBaseUrl, testLlmSettings } from './helpers/llm-over-fake.ts';

const Category = z.object({ name: z.string(), count: z.number().int().min(0) });
const schema = { name: 'category', zod: Category };
const GOOD = '{"name":"dialogs","count":3}';
const KEYS = { OPENAI_API_KEY: 'sk-test-client-0123456789', ANTHROPIC_API_KEY: 'sk-ant-client-0123456789' };

let server: FakeProviderServer;
let dir: string;
let store: ResponseStore;
let sleeps: number[];

beforeAll(async () => {
  server = await startFakeProviderServer();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'llm-client-'));
  store = openStore(join(dir, 'store'));
  sleeps = [];
});
afterEach(() => {
  server.reset();
  rmSync(dir, { recursive: true, force: true });
});
afterAll(async () => {
  await server.close();
});

function settings(extra: Partial<LlmSettings> = {}, provider: ProviderName = 'openai'): LlmSettings {
  return testLlmSettings(provider, provider === 'anthropic' ? 'claude-opus-4-6' : 'gpt-5-mini', { concurrency: 4, base_url: fakeBaseUrl(server, provider), max_retries: 2, ...extra });
}

function client(s: LlmSettings = settings(), extra: Partial<LlmClientOptions> = {}) {
  return createLlmClient(s, {
    store,
    env: KEYS,
    workspaceRoot: dir,
    retry: { sleep: async (ms) => void sleeps.push(ms), random: () => 0.5 },
    ...extra,
  });
}

/** The hash the client computes for a request (endpoint read from settings and KEYS). */
function hashOf(s: LlmSettings, r: LlmRequest): string {
  return requestHash(canonicalRequest(s, r, endpointIdentity(s, createEnvLookup({ env: KEYS, workspaceRoot: dir }))));
}

const req = (content = 'Categorize this run.'): LlmRequest<z.infer<typeof Category>> => ({
  step: 'categorize',
  messages: [{ role: 'user', content }],
  schema,
});

function storedFiles(): string[] {
  const root = join(dir, 'store');
  const out: string[] = [];
  const walk = (d: string) => {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      return;
    }
    for (const n of names) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(root);
  return out;
}

describe('response store', () => {
  it('stores a valid answer at once; a second run makes zero HTTP requests', async () => {
    server.reply({ text: GOOD, usage: { input: 100, output: 10 } });
    const first = await client().complete(req());
    expect(first).toMatchObject({ cached: false, attempts: 1, value: { name: 'dialogs', count: 3 } });
    expect(storedFiles()).toHaveLength(1);
    expect(server.requests).toHaveLength(1);

    const again = client(); // a new run
    const second = await again.complete(req());
    expect(second).toMatchObject({ cached: true, attempts: 0, value: { name: 'dialogs', count: 3 }, requestHash: first.requestHash });
    expect(second.usage).toEqual(first.usage);
    expect(second.costUsd).toBe(first.costUsd);
    expect(server.requests).toHaveLength(1);
    expect(again.totals()).toMatchObject({ cached: 1, paid: 0, attempts: 0, spentUsd: 0 });
  });

  it('refresh calls again and overwrites the stored answer (once per request: a repeat in the same run is served fresh)', async () => {
    server.reply({ text: GOOD }, { text: '{"name":"forms","count":1}' });
    await client().complete(req());
    const refreshing = client(settings(), { refresh: true });
    const fresh = await refreshing.complete(req());
    expect(fresh).toMatchObject({ cached: false, value: { name: 'forms', count: 1 } });
    expect(server.requests).toHaveLength(2);
    expect(await refreshing.complete(req())).toMatchObject({ cached: true, value: { name: 'forms', count: 1 } });
    expect(server.requests).toHaveLength(2);
    const hit = await client().complete(req());
    expect(hit).toMatchObject({ cached: true, value: { name: 'forms', count: 1 } });
    expect(server.requests).toHaveLength(2);
  });

  it('store: null neither reads nor writes', async () => {
    server.reply({ text: GOOD }, { text: GOOD });
    await client(settings(), { store: null }).complete(req());
    await client(settings(), { store: null }).complete(req());
    expect(server.requests).toHaveLength(2);
    expect(storedFiles()).toHaveLength(0);
  });

  it('hashes the canonical request with its endpoint; not keys, timeouts, retries or concurrency', () => {
    const a = hashOf(settings(), req());
    expect(hashOf(settings({ timeout_s: 99, api_key_env: 'OTHER', max_retries: 7, concurrency: 1, max_cost_usd: 3 }), req())).toBe(a);
    const canonical = canonicalRequest(settings(), req(), endpointIdentity(settings(), createEnvLookup({ env: KEYS })));
    expect(Object.keys(canonical).sort()).toEqual(['endpoint', 'max_tokens', 'messages', 'model', 'provider', 'schema', 'temperature']);
    expect(canonical.endpoint).toEqual({ base_url: `${server.url}/v1` });
    expect(hashOf(settings({ base_url: 'http://elsewhere/v1' }), req())).not.toBe(a);
    expect(hashOf(settings({ temperature: 0.5 }), req())).not.toBe(a);
    expect(hashOf(settings(), { ...req(), schema: undefined })).not.toBe(a);
    expect(hashOf(settings({}, 'anthropic'), req())).not.toBe(a);
  });

  it('stored files and thrown errors never contain the key', async () => {
    server.reply({ text: GOOD }, { status: 401, error: `bad key ${KEYS.OPENAI_API_KEY}` });
    await client().complete(req());
    const err = await client().complete(req('other')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect((err as Error).message).not.toContain(KEYS.OPENAI_API_KEY);
    const files = storedFiles();
    expect(files).toHaveLength(1);
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      expect(text).not.toContain(KEYS.OPENAI_API_KEY);
      // The endpoint is part of the request (which server answered); the key never is.
      expect(JSON.parse(text).request.endpoint).toEqual({ base_url: `${server.url}/v1` });
    }
  });
});

describe('structured answers', () => {
  it('re-asks an invalid answer with the validation errors, then stores the valid one under the original hash', async () => {
    server.reply({ text: '{"name":"dialogs","count":"three"}', usage: { input: 10, output: 5 } }, { text: GOOD, usage: { input: 30, output: 5 } });
    const events: LlmEvent[] = [];
    const c = client(settings(), { onEvent: (e) => events.push(e) });
    const res = await c.complete(req());
    expect(res.value).toEqual({ name: 'dialogs', count: 3 });
    expect(res.attempts).toBe(2);
    expect(res.usage).toEqual({ input_tokens: 40, output_tokens: 10, total_tokens: 50 });
    const second = server.requests[1]!.body.messages;
    expect(second).toHaveLength(3);
    expect(second[1]).toEqual({ role: 'assistant', content: '{"name":"dialogs","count":"three"}' });
    expect(second[2].role).toBe('user');
    expect(second[2].content).toContain('- count: ');
    expect(events.filter((e) => e.type === 'reask')).toHaveLength(1);
    // Stored under the hash of the request as the stage asked it.
    expect(res.requestHash).toBe(hashOf(settings(), req()));
    expect(c.plan(req()).cached).toBe(true);
    expect(await client().complete(req())).toMatchObject({ cached: true, value: { name: 'dialogs', count: 3 } });
    expect(server.requests).toHaveLength(2);
  });

  it('re-asks answers that are not JSON at all (anthropic)', async () => {
    server.reply({ text: 'I think the category is dialogs.' }, { text: GOOD });
    const res = await client(settings({}, 'anthropic')).complete(req());
    expect(res.value).toEqual({ name: 'dialogs', count: 3 });
    const reask = server.requests[1]!.body.messages;
    expect(reask.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(reask[2].content).toContain('not valid JSON');
  });

  it('gives up after maxValidationRetries re-asks with InvalidAnswerError carrying the issues; nothing is stored', async () => {
    server.handle(() => ({ text: '{"name":"dialogs","count":-1}' }));
    const c = client(settings(), { maxValidationRetries: 2 });
    const err = await c.complete(req()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidAnswerError);
    const e = err as InvalidAnswerError;
    expect(e.issues[0]!.path).toBe('count');
    expect(e.attempts).toBe(3);
    expect(e.lastAnswer).toBe('{"name":"dialogs","count":-1}');
    expect(server.requests).toHaveLength(3);
    expect(storedFiles()).toHaveLength(0);
    expect(c.totals()).toMatchObject({ failed: 1, paid: 0, reasks: 2, attempts: 3 });
    expect(c.totals().spentUsd).toBeGreaterThan(0); // invalid answers were paid for
  });

  it('asks in JSON mode when strict structured output cannot express the schema (optional fields)', async () => {
    const Loose = z.object({ name: z.string(), note: z.string().optional() });
    server.reply({ text: '{"name":"x"}' });
    const res = await client().complete({ step: 's', messages: [{ role: 'user', content: 'q' }], schema: { name: 'loose', zod: Loose } });
    expect(res.value).toEqual({ name: 'x' });
    const body = server.requests[0]!.body;
    expect(body.response_format).toEqual({ type: 'json_object' });
    expect(body.messages.at(-1).content).toContain('"note"');
  });

  it('re-asks an answer cut off at max_tokens (the parse helper throws; the paid text is kept)', async () => {
    server.reply({ text: '{"name":"dia', finishReason: 'length', usage: { input: 10, output: 1000 } }, { text: GOOD });
    const res = await client().complete(req());
    expect(res.value).toEqual({ name: 'dialogs', count: 3 });
    expect(res.usage.output_tokens).toBe(1005);
    expect(server.requests[1]!.body.messages[1]).toEqual({ role: 'assistant', content: '{"name":"dia' });
  });

  it('treats a stored answer that no longer validates as a miss, with a warning', async () => {
    const hash = hashOf(settings(), req());
    store.put(hash, { request: {}, text: 'not json', usage: { input_tokens: 1, output_tokens: 1, total_tokens: 2 }, cost_usd: 0 });
    server.reply({ text: GOOD });
    const events: LlmEvent[] = [];
    const res = await client(settings(), { onEvent: (e) => events.push(e) }).complete(req());
    expect(res).toMatchObject({ cached: false, value: { name: 'dialogs', count: 3 } });
    expect(events.some((e) => e.type === 'warning')).toBe(true);
    expect(await client().complete(req())).toMatchObject({ cached: true });
  });

  it('extracts JSON around prose and fences, and reports issues by path', () => {
    expect(extractJson('Here: {"a":1} done')).toEqual({ ok: true, value: { a: 1 } });
    expect(extractJson('```json\n{"a":[1,2]}\n```')).toEqual({ ok: true, value: { a: [1, 2] } });
    expect(extractJson('nothing here').ok).toBe(false);
    const bad = validateAnswer('{"name":1,"count":1.5}', undefined, Category);
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.issues.map((i) => i.path)).toEqual(['name', 'count']);
    const many = Array.from({ length: 8 }, (_, i) => ({ path: `items.${i}`, message: 'Required' }));
    const msg = reaskMessage(many);
    expect(msg).toContain('- items.4: Required');
    expect(msg).not.toContain('items.5');
    expect(msg).toContain('and 3 more');
  });
});

describe('retries', () => {
  it('honours Retry-After on 429 and counts the attempts', async () => {
    server.reply({ status: 429, headers: { 'retry-after': '7' } }, { text: GOOD });
    const events: LlmEvent[] = [];
    const c = client(settings(), { onEvent: (e) => events.push(e) });
    const res = await c.complete(req());
    expect(res.attempts).toBe(2);
    expect(sleeps).toEqual([7000]);
    expect(server.requests).toHaveLength(2);
    expect(events.find((e) => e.type === 'retry')).toMatchObject({ attempt: 1, delayMs: 7000 });
    expect(c.totals().attempts).toBe(2);
  });

  it('honours retry-after-ms (anthropic)', async () => {
    server.reply({ status: 429, headers: { 'retry-after-ms': '250', 'retry-after': '9' } }, { text: GOOD });
    const res = await client(settings({}, 'anthropic')).complete(req());
    expect(res.attempts).toBe(2);
    expect(sleeps).toEqual([250]);
  });

  it('retries a 500 with jittered backoff, then succeeds', async () => {
    server.reply({ status: 500 }, { status: 503 }, { text: GOOD });
    const res = await client(settings({ max_retries: 3 })).complete(req());
    expect(res.attempts).toBe(3);
    // full jitter with random() = 0.5: half of 1 s, then half of 2 s
    expect(sleeps).toEqual([500, 1000]);
  });

  it('does not retry a 400', async () => {
    server.reply({ status: 400, error: 'bad request' });
    const err = await client().complete(req()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ status: 400, retryable: false, attempts: 1 });
    expect(server.requests).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it('stops after max_retries and stores nothing', async () => {
    server.handle(() => ({ status: 502 }));
    const c = client(settings({ max_retries: 2 }));
    const err = await c.complete(req()).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ProviderError', status: 502, attempts: 3 });
    expect(server.requests).toHaveLength(3);
    expect(storedFiles()).toHaveLength(0);
    expect(c.totals()).toMatchObject({ failed: 1, attempts: 3, paid: 0 });
  });

  it('retries a timeout and a dropped connection', async () => {
    server.reply({ delayMs: 2000, text: GOOD }, { hangUp: true }, { text: GOOD });
    const res = await client(settings({ timeout_s: 0.2 })).complete(req());
    expect(res.attempts).toBe(3);
    expect(res.value).toEqual({ name: 'dialogs', count: 3 });
  });

  it('retries a response body that is not JSON', async () => {
    server.reply({ raw: '<html>proxy error' }, { text: GOOD });
    const res = await client().complete(req());
    expect(res.attempts).toBe(2);
  });
});

describe('concurrency, budget, abort', () => {
  it('keeps at most `concurrency` calls in flight', async () => {
    let inFlight = 0;
    let peak = 0;
    server.handle(async () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, 30));
      inFlight--;
      return { text: GOOD };
    });
    const c = client(settings({ concurrency: 2 }));
    await Promise.all(Array.from({ length: 6 }, (_, i) => c.complete(req(`run ${i}`))));
    expect(peak).toBe(2);
    expect(c.totals()).toMatchObject({ paid: 6, requests: 6 });
  });

  it('refuses a call that could exceed max_cost_usd, before calling', async () => {
    // gpt-5-mini: 0.25 / 2 per 1M. After the first answer (1000 output tokens) the next is expected to cost about $0.002.
    server.handle(() => ({ text: GOOD, usage: { input: 1000, output: 1000 } })); // $0.00225 each
    const c = client(settings({ max_cost_usd: 0.004 }));
    await c.complete(req('one'));
    const err = await c.complete(req('two')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BudgetExceededError);
    expect((err as Error).message).toMatch(/max_cost_usd \$0\.0040/);
    expect(server.requests).toHaveLength(1);
    // Store hits stay free under a budget.
    expect(await c.complete(req('one'))).toMatchObject({ cached: true });
  });

  it('holds the expected cost of calls in flight against the budget', async () => {
    server.handle(async () => {
      await new Promise((r) => setTimeout(r, 30));
      return { text: GOOD, usage: { input: 1, output: 1 } };
    });
    // Before any answer, a call is expected to write the step's default (1000 tokens here: $0.002).
    const c = client(settings({ max_cost_usd: 0.003, concurrency: 4 }));
    const results = await Promise.allSettled([c.complete(req('a')), c.complete(req('b'))]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(server.requests).toHaveLength(1);
  });

  it('with a budget, an unpriced model is refused (its cost cannot be bounded)', async () => {
    const c = client(settings({ model: 'my-finetune', max_cost_usd: 1 }));
    const err = await c.complete(req()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BudgetExceededError);
    expect((err as BudgetExceededError).estimateUsd).toBeNull();
    expect(server.requests).toHaveLength(0);
  });

  it('reports unknown cost as null, not zero', async () => {
    server.reply({ text: GOOD });
    const c = client(settings({ model: 'my-finetune' }));
    const res = await c.complete(req());
    expect(res.costUsd).toBeNull();
    expect(c.totals()).toMatchObject({ spentUsd: 0, unknownCostAnswers: 1 });
    expect(c.plan(req('new')).estCostUsd).toBeNull();
  });

  it('abort stops scheduling, aborts the call in flight and stores nothing', async () => {
    server.handle(() => ({ delayMs: 5000, text: GOOD }));
    const controller = new AbortController();
    const c = client(settings({ concurrency: 1 }), { signal: controller.signal });
    const calls = [c.complete(req('a')), c.complete(req('b')), c.complete(req('c'))].map((p) => p.catch((e: unknown) => e));
    while (server.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    const errors = await Promise.all(calls);
    for (const e of errors) expect(e).toBeInstanceOf(AbortedError);
    expect(server.requests).toHaveLength(1);
    expect(storedFiles()).toHaveLength(0);
    await expect(c.complete(req('d'))).rejects.toBeInstanceOf(AbortedError);
    expect(server.requests).toHaveLength(1);
  });

  it('abort interrupts a retry wait', async () => {
    server.handle(() => ({ status: 429, headers: { 'retry-after': '60' } }));
    const controller = new AbortController();
    const c = createLlmClient(settings(), { store, env: KEYS, workspaceRoot: dir, signal: controller.signal, onEvent: (e) => e.type === 'retry' && controller.abort() });
    const started = Date.now();
    await expect(c.complete(req())).rejects.toBeInstanceOf(AbortedError);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(server.requests).toHaveLength(1);
  });
});

describe('abandoned calls (timed out or aborted after they were sent)', () => {
  // gpt-5-mini: $0.25 / $2 per 1M tokens. The worst case of an abandoned call:
  // its prompt (characters / 4, schema included) and max_tokens of output.
  const worstUsd = (content: string, maxTokens: number) => (Math.ceil((content.length + JSON.stringify(schemaJson(Category)).length) / 4) * 0.25 + maxTokens * 2) / 1e6;

  it('charges each timed-out attempt at its worst case in the spend, and counts it', async () => {
    // 10 calls; the server answers 3 of them only after the client gave up.
    server.handle((r) => {
      const late = /late/.test(String(r.body?.messages?.[0]?.content));
      return { delayMs: late ? 4000 : 0, text: GOOD, usage: { input: 100, output: 50 } };
    });
    const c = client(settings({ timeout_s: 1, max_retries: 0, max_tokens: 1000 }));
    const contents = Array.from({ length: 10 }, (_, i) => `run ${i}${i % 3 === 1 ? ' late' : ''}`);
    const results = await Promise.allSettled(contents.map((content) => c.complete(req(content))));
    expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason)).toEqual([
      expect.objectContaining({ kind: 'timeout' }),
      expect.objectContaining({ kind: 'timeout' }),
      expect.objectContaining({ kind: 'timeout' }),
    ]);
    const late = contents.filter((x) => x.endsWith('late'));
    const abandonedUsd = late.reduce((sum, x) => sum + worstUsd(x, 1000), 0);
    const answeredUsd = 7 * (100 * 0.25 + 50 * 2) / 1e6;
    const t = c.totals();
    expect(t).toMatchObject({ paid: 7, failed: 3, abandoned: 3 });
    expect(t.abandonedUsd).toBeCloseTo(abandonedUsd, 12);
    expect(t.spentUsd).toBeCloseTo(answeredUsd + abandonedUsd, 12);
    // A timed-out call is at most the output cap: far more than an answered one.
    expect(abandonedUsd / 3).toBeGreaterThan(10 * (answeredUsd / 7));
  });

  it('charges a timed-out attempt that a retry then answers', async () => {
    server.reply({ delayMs: 4000, text: GOOD }, { text: GOOD, usage: { input: 100, output: 50 } });
    const c = client(settings({ timeout_s: 1, max_retries: 1, max_tokens: 1000 }));
    const res = await c.complete(req('once late'));
    expect(res.attempts).toBe(2);
    // The answer's own cost is what it used; the spend holds the abandoned attempt too.
    expect(res.costUsd).toBeCloseTo((100 * 0.25 + 50 * 2) / 1e6, 12);
    expect(c.totals()).toMatchObject({ paid: 1, abandoned: 1 });
    expect(c.totals().spentUsd).toBeCloseTo((100 * 0.25 + 50 * 2) / 1e6 + worstUsd('once late', 1000), 12);
  });

  it('a budget cannot be overrun by abandoned calls: the retry after a timeout is checked against it', async () => {
    server.handle(() => ({ delayMs: 4000, text: GOOD }));
    // Before any answer a call is expected to cost its prompt plus 1000 output tokens (~$0.002): one fits in $0.003, two do not.
    const c = client(settings({ timeout_s: 1, max_retries: 3, max_tokens: 1000, max_cost_usd: 0.003 }));
    const err = await c.complete(req('slow')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BudgetExceededError);
    expect((err as Error).message).toMatch(/\$0\.0020 already spent or committed, limit max_cost_usd \$0\.0030/);
    expect(server.requests).toHaveLength(1);
    expect(c.totals()).toMatchObject({ abandoned: 1, failed: 1 });
    expect(c.totals().spentUsd).toBeCloseTo(worstUsd('slow', 1000), 12);
    await expect(c.complete(req('another'))).rejects.toBeInstanceOf(BudgetExceededError);
    expect(server.requests).toHaveLength(1);
  });

  it('charges a call aborted in flight, not the calls that were never sent', async () => {
    server.handle(() => ({ delayMs: 5000, text: GOOD }));
    const controller = new AbortController();
    const c = client(settings({ concurrency: 1, max_tokens: 1000 }), { signal: controller.signal });
    const calls = ['a', 'b', 'c'].map((content) => c.complete(req(content)).catch((e: unknown) => e));
    while (server.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    for (const e of await Promise.all(calls)) expect(e).toBeInstanceOf(AbortedError);
    expect(server.requests).toHaveLength(1);
    expect(c.totals()).toMatchObject({ abandoned: 1 });
    expect(c.totals().spentUsd).toBeCloseTo(worstUsd('a', 1000), 12);
  });

  it('an abandoned call of an unpriced model has an unknown cost, not zero', async () => {
    server.reply({ delayMs: 4000, text: GOOD });
    const c = client(settings({ model: 'my-finetune', timeout_s: 1, max_retries: 0 }));
    await expect(c.complete(req())).rejects.toMatchObject({ kind: 'timeout' });
    expect(c.totals()).toMatchObject({ abandoned: 1, abandonedUsd: null, spentUsd: 0 });
  });
});

describe('plan (dry run)', () => {
  it('estimates without any request: cached or not, tokens ~ chars/4, cost with output at max_tokens', async () => {
    const content = 'x'.repeat(4000);
    const c = client(settings({ model: 'gpt-5-2025-08-07', max_tokens: 2000 }));
    const noSchema = { step: 's', messages: [{ role: 'user' as const, content }] };
    const p = c.plan(noSchema);
    expect(p).toMatchObject({ cached: false, estInputTokens: 1000 });
    expect(p.estCostUsd).toBeCloseTo((1000 * 1.25 + 2000 * 10) / 1e6, 12);
    expect(server.requests).toHaveLength(0);
    server.reply({ text: 'summary' });
    await c.complete(noSchema);
    expect(c.plan(noSchema)).toMatchObject({ cached: true, estCostUsd: 0, requestHash: p.requestHash });
    expect(client(settings({ model: 'gpt-5-2025-08-07', max_tokens: 2000 }), { refresh: true }).plan(noSchema).cached).toBe(false);
  });
});
