// The shared response store (stages/llm/remote-store.ts) against a loopback
// server that implements Nx's remote cache specification, run in a worker
// thread (the store blocks this thread while it waits for a read): entries
// and their verification, the layering after the local store and the carried
// answers, read-only tokens, servers that are down, slow or failing, bounded
// flushes, the exit safety net, the stage answerer end to end with the real
// openai SDK, and the health check of the nx:shared entry point.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { createStageAnswerer } from '../executors/lib/answerer.ts';
import type { StageContext } from '../executors/lib/context.ts';
import { loadPipeline, resolveAnalysis } from '../stages/config.ts';
import { withCarriedAnswers } from '../stages/llm/carried.ts';
import {
  decodeEntry,
  encodeEntry,
  ENTRY_FORMAT,
  MAX_GENERATION,
  openRemoteStore,
  remoteConfigFromEnv,
  remoteKey,
  USER_AGENT,
} from '../stages/llm/remote-store.ts';
import type { RemoteConfig, RemoteStore } from '../stages/llm/remote-store.ts';
import { openStore, requestHash } from '../stages/llm/store.ts';
import type { StoredAnswer } from '../stages/llm/store.ts';
import type { LlmRequest } from '../stages/llm/types.ts';
import { checkBudget } from '../scripts/check-budget.ts';
import { checkSharedCache, main as sharedMain, PROBE_KEY } from '../scripts/nx-shared-cache.ts';
import { startFakeProviderServer } from './helpers/fake-provider-server.ts';
import type { FakeProviderServer } from './helpers/fake-provider-server.ts';
import { startNxCacheServerThread } from './helpers/nx-cache-server.ts';
import type { NxCacheServerThread } from './helpers/nx-cache-server.ts';

const RW = 'rw-token-unit-5f1c0e';
const RO = 'ro-token-unit-9a7b22';
const KEY = 'sk-unit-remote-store-4411';

const tmp = mkdtempSync(join(tmpdir(), 'remote-store-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => join(tmp, `d${++dirs}`);

/** A loopback URL where nothing listens (connections are refused). */
async function closedPortUrl(): Promise<string> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

function req(i: number | string): { provider: string; model: string; messages: { role: string; content: string }[] } {
  return { provider: 'openai', model: 'gpt-5-mini', messages: [{ role: 'user', content: `Summarize run ${i}.` }] };
}
function answer(request: unknown, text: string): StoredAnswer {
  return { request, text, usage: { input_tokens: 10, output_tokens: 5, total_tokens: 15 }, cost_usd: 0.00125 };
}

interface Printed { warnings: string[]; info: string[] }
function open(server: { url: string }, token: string | null, over: Partial<RemoteConfig> = {}): { store: RemoteStore } & Printed {
  const p: Printed = { warnings: [], info: [] };
  const store = openRemoteStore(
    { url: server.url, token, timeoutMs: 2_000, writeConcurrency: 2, writeTimeoutMs: 2_000, flushTimeoutMs: 2_000, ...over },
    { warn: (m) => p.warnings.push(m), info: (m) => p.info.push(m) },
  );
  return { store, ...p };
}

describe('entries', () => {
  const r = req('A');
  const h = requestHash(r);

  it('carry the canonical request, the answer and a digest; decode back to the answer', () => {
    const body = encodeEntry(h, answer(r, 'hello'));
    expect(body).not.toBeNull();
    const parsed = JSON.parse(body as string);
    expect(parsed).toMatchObject({ format: ENTRY_FORMAT, request_hash: h, text: 'hello', request: r });
    expect(parsed.answer_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(decodeEntry(h, Buffer.from(body as string))).toEqual({ answer: answer(r, 'hello') });
    expect(remoteKey(h)).toMatch(/^llm-[0-9a-f]{64}$/);
    expect(remoteKey(h).length).toBeLessThanOrEqual(128);
  });

  it('are not made for answers whose request does not hash to the key (offline answers keep a shortened request)', () => {
    expect(encodeEntry(h, answer({ provider: 'offline', step: 'summarize' }, 'x'))).toBeNull();
    expect(encodeEntry(h, answer(null, 'x'))).toBeNull();
    expect(encodeEntry('not-a-hash', answer(r, 'x'))).toBeNull();
  });

  it('damaged or mismatched entries are refused with the reason', () => {
    const good = encodeEntry(h, answer(r, 'hello')) as string;
    const other = req('B');
    const otherBody = encodeEntry(requestHash(other), answer(other, 'other')) as string;
    const tampered = JSON.stringify({ ...JSON.parse(good), text: 'a different answer' });
    const cases: [Buffer, RegExp][] = [
      [Buffer.from(''), /empty/],
      [Buffer.from(good.slice(0, 40)), /not JSON/],
      [Buffer.from([0xff, 0xfe, 0x00]), /not JSON/],
      [Buffer.from('[1,2]'), /not a JSON object/],
      [Buffer.from(JSON.stringify({ ...JSON.parse(good), format: 'v0' })), /unknown format/],
      [Buffer.from(otherBody), /mismatched: it holds the answer to another request/],
      [Buffer.from(JSON.stringify({ ...JSON.parse(good), request: other })), /mismatched: the request it carries/],
      [Buffer.from(JSON.stringify({ ...JSON.parse(good), usage: { input_tokens: -1 } })), /invalid text, usage/],
      [Buffer.from(tampered), /digest does not match/],
    ];
    for (const [body, reason] of cases) {
      const res = decodeEntry(h, body);
      expect('damaged' in res && res.damaged, body.toString().slice(0, 60)).toMatch(reason);
    }
  });
});

describe('configuration from the environment Nx reads', () => {
  it('is on with the server set, off when Nx is told to skip its remote cache or the store is turned off', () => {
    expect(remoteConfigFromEnv({})).toBeNull();
    expect(remoteConfigFromEnv({ NX_SELF_HOSTED_REMOTE_CACHE_SERVER: '' })).toBeNull();
    const on = remoteConfigFromEnv({ NX_SELF_HOSTED_REMOTE_CACHE_SERVER: 'https://cache.example.org/', NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN: RW });
    expect(on).toMatchObject({ url: 'https://cache.example.org', token: RW, timeoutMs: 5_000 });
    expect(remoteConfigFromEnv({ NX_SELF_HOSTED_REMOTE_CACHE_SERVER: 'http://x', NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN: '' })?.token).toBeNull();
    expect(remoteConfigFromEnv({ NX_SELF_HOSTED_REMOTE_CACHE_SERVER: 'http://x', NX_SKIP_REMOTE_CACHE: 'true' })).toBeNull();
    expect(remoteConfigFromEnv({ NX_SELF_HOSTED_REMOTE_CACHE_SERVER: 'http://x', NX_DISABLE_REMOTE_CACHE: 'true' })).toBeNull();
    expect(remoteConfigFromEnv({ NX_SELF_HOSTED_REMOTE_CACHE_SERVER: 'http://x', META_ANALYSIS_REMOTE_STORE: 'off' })).toBeNull();
    expect(remoteConfigFromEnv({ NX_SELF_HOSTED_REMOTE_CACHE_SERVER: 'http://x', META_ANALYSIS_REMOTE_TIMEOUT_MS: '250' })?.timeoutMs).toBe(250);
  });
});

describe('against a server implementing the specification', () => {
  let server: NxCacheServerThread;
  beforeAll(async () => {
    server = await startNxCacheServerThread({ readWriteTokens: [RW], readOnlyTokens: [RO], maxLifetimeMs: 120_000 });
  });
  afterAll(() => server.close());
  afterEach(async () => {
    await server.misbehave({ kind: 'none' });
    await server.clearRequests();
  });

  it('a written answer is read back, verified, by another machine; the token is only in the Authorization header', async () => {
    const a = open(server, RW);
    const r = req('round-trip');
    const h = requestHash(r);
    expect(a.store.get(h, r)).toBeUndefined();
    a.store.put(h, answer(r, 'the answer'));
    a.store.flush();
    expect(a.warnings).toEqual([]);
    expect(a.info).toEqual([expect.stringMatching(/shared response store http:\/\/127\.0\.0\.1:\d+: 0 answer\(s\) read, 1 written$/)]);
    const entries = await server.entries();
    const body = entries.get(remoteKey(h));
    expect(body).toBeDefined();
    expect(body!.toString()).not.toContain(RW);

    const b = open(server, RW);
    expect(b.store.get(h, r)).toEqual(answer(r, 'the answer'));
    const requests = await server.requests();
    expect(requests.map((q) => [q.method, q.key, q.status, q.role])).toEqual([
      ['GET', remoteKey(h), 404, 'read-write'],
      ['PUT', remoteKey(h), 200, 'read-write'],
      ['GET', remoteKey(h), 200, 'read-write'],
    ]);
    expect(requests.every((q) => q.agent === USER_AGENT)).toBe(true);
  });

  it('layers: local store, then carried answers, then the server; a hit from below is copied into the local store', async () => {
    const r1 = req('layer-1');
    const r2 = req('layer-2');
    const r3 = req('layer-3');
    const [h1, h2, h3] = [requestHash(r1), requestHash(r2), requestHash(r3)];
    const seed = open(server, RW);
    for (const [h, r] of [[h1, r1], [h2, r2], [h3, r3]] as const) seed.store.put(h, answer(r, `remote ${h.slice(0, 4)}`));
    seed.store.flush();
    await server.clearRequests();

    const local = openStore(freshDir());
    local.put(h1, answer(r1, 'local'));
    const carried = new Map([[h2, { request_hash: h2, text: 'carried', usage: answer(r2, '').usage, cost_usd: 0.00125 }]]);
    const { store: remote } = open(server, RW);
    const layered = withCarriedAnswers(local, carried, remote);
    expect(layered.get(h1, r1)?.text).toBe('local');
    expect(layered.get(h2, r2)?.text).toBe('carried');
    expect(layered.get(h3, r3)?.text).toBe(`remote ${h3.slice(0, 4)}`);
    expect([layered.carriedHits, layered.remoteHits]).toEqual([1, 1]);
    // Only the lookup the local layers could not answer went to the server, once.
    expect(layered.get(h3, r3)?.text).toBe(`remote ${h3.slice(0, 4)}`);
    expect((await server.requests()).map((q) => q.key)).toEqual([remoteKey(h3)]);
    expect(local.get(h3)?.text).toBe(`remote ${h3.slice(0, 4)}`);
    // A lookup without its canonical request (offline answers) never goes to the server.
    const r4 = req('layer-4');
    expect(layered.get(requestHash(r4))).toBeUndefined();
    expect(layered.get(requestHash(r4), { provider: 'offline', step: 'x' })).toBeUndefined();
    expect(await server.requests()).toHaveLength(1);
    // Writes go to both; offline-style answers stay local.
    layered.put(requestHash(r4), answer(r4, 'bought'));
    layered.put(requestHash(req('offline')), answer({ provider: 'offline', step: 'summarize' }, '{}'));
    layered.flush();
    expect(local.get(requestHash(r4))?.text).toBe('bought');
    expect((await server.requests()).filter((q) => q.method === 'PUT').map((q) => q.key)).toEqual([remoteKey(requestHash(r4))]);
  });

  it('a read-only token reads, and its writes are refused (403): kept locally, said once, not retried', async () => {
    const r = req('ro-seed');
    const seed = open(server, RW);
    seed.store.put(requestHash(r), answer(r, 'seeded'));
    seed.store.flush();
    const before = await server.entries();
    await server.clearRequests();

    const ro = open(server, RO);
    expect(ro.store.get(requestHash(r), r)?.text).toBe('seeded');
    for (const i of [1, 2, 3]) ro.store.put(requestHash(req(`ro-${i}`)), answer(req(`ro-${i}`), `mine ${i}`));
    ro.store.flush();
    expect(ro.warnings).toEqual([]);
    expect(ro.info.join('\n')).toMatch(/1 answer\(s\) read, 0 written, 3 kept locally \(read-only token\)/);
    const after = await server.entries();
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    const puts = (await server.requests()).filter((q) => q.method === 'PUT');
    expect(puts.length).toBeGreaterThanOrEqual(1);
    expect(puts.length).toBeLessThan(3 + 1);
    expect(puts.every((q) => q.status === 403)).toBe(true);
  });

  it('a damaged or mismatched entry is a miss, reported once; the answer is written as the next generation, which the next reader uses', async () => {
    const r1 = req('damaged');
    const r2 = req('mismatched');
    const r3 = req('donor');
    const [h1, h2] = [requestHash(r1), requestHash(r2)];
    const donor = encodeEntry(requestHash(r3), answer(r3, 'donor')) as string;
    await server.setEntry(remoteKey(h1), (encodeEntry(h1, answer(r1, 'x')) as string).slice(0, 50));
    await server.setEntry(remoteKey(h2), donor);
    const p = open(server, RW);
    for (let i = 0; i < 3; i++) {
      expect(p.store.get(h1, r1)).toBeUndefined();
      expect(p.store.get(h2, r2)).toBeUndefined();
    }
    expect(p.warnings).toHaveLength(2);
    expect(p.warnings[0]).toContain(`ignoring entry ${remoteKey(h1)}: not JSON. It counts as a miss: the answer is asked again and shared as ${remoteKey(h1, 1)}`);
    expect(p.warnings[1]).toContain(`ignoring entry ${remoteKey(h2)}: mismatched`);
    expect((await server.requests()).filter((q) => q.method === 'GET').map((q) => [q.key, q.status])).toEqual([
      [remoteKey(h1), 200],
      [remoteKey(h1, 1), 404],
      [remoteKey(h2), 200],
      [remoteKey(h2, 1), 404],
    ]);
    expect(p.store.stats()).toMatchObject({ damaged: 2, hits: 0, off: null });
    // The first reader pays and writes the next generation (the damaged key cannot be overwritten: 409).
    p.store.put(h1, answer(r1, 'repaired 1'));
    p.store.put(h2, answer(r2, 'repaired 2'));
    p.store.flush();
    expect(p.info.at(-1)).toMatch(/0 answer\(s\) read, 2 written, 2 damaged entries ignored$/);
    const entries = await server.entries();
    expect(decodeEntry(h1, entries.get(remoteKey(h1, 1)) as Buffer)).toEqual({ answer: answer(r1, 'repaired 1') });
    // The next reader gets it with one more GET, and no warning.
    await server.clearRequests();
    const q = open(server, RW);
    expect(q.store.get(h1, r1)?.text).toBe('repaired 1');
    expect(q.store.get(h2, r2)?.text).toBe('repaired 2');
    q.store.flush();
    expect(q.warnings).toEqual([]);
    expect(q.info).toEqual([expect.stringMatching(/2 answer\(s\) read, 2 damaged entries ignored, 2 read from a later generation$/)]);
    expect((await server.requests()).map((r) => r.key)).toEqual([remoteKey(h1), remoteKey(h1, 1), remoteKey(h2), remoteKey(h2, 1)]);
    // The store goes on: other entries are still read.
    await server.setEntry(remoteKey(requestHash(r3)), donor);
    expect(q.store.get(requestHash(r3), r3)?.text).toBe('donor');
  });

  it('generations are bounded: when every one is damaged the answer stays local, said once, and nothing is written', async () => {
    const r = req('all-damaged');
    const h = requestHash(r);
    for (let g = 0; g <= MAX_GENERATION; g++) await server.setEntry(remoteKey(h, g), 'garbage');
    const p = open(server, RW);
    expect(p.store.get(h, r)).toBeUndefined();
    expect(p.store.get(h, r)).toBeUndefined();
    p.store.put(h, answer(r, 'mine'));
    p.store.flush();
    expect(p.warnings).toHaveLength(1);
    expect(p.warnings[0]).toMatch(new RegExp(`Every generation is damaged: the answer is asked again and kept locally; delete ${remoteKey(h)}\\* on the server`));
    const requests = await server.requests();
    expect(requests.map((q) => q.method)).toEqual(Array(MAX_GENERATION + 1).fill('GET'));
  });

  it('a server answering 500 turns the store off with one warning; nothing fails', async () => {
    await server.misbehave({ kind: 'error500' });
    const p = open(server, RW);
    expect(p.store.get(requestHash(req('x1')), req('x1'))).toBeUndefined();
    expect(p.store.get(requestHash(req('x2')), req('x2'))).toBeUndefined();
    p.store.put(requestHash(req('x3')), answer(req('x3'), 'x'));
    p.store.flush();
    expect(p.warnings).toEqual([expect.stringMatching(/HTTP 500 on a read; using the local store only for the rest of this run/)]);
    expect(await server.requests()).toHaveLength(1);
  });

  it('a slow server: the read gives up after the timeout, once, and the run goes on locally', async () => {
    await server.misbehave({ kind: 'slow', delayMs: 3_000 });
    const p = open(server, RW, { timeoutMs: 300 });
    p.store.get(requestHash(req('warm')), req('warm')); // starts the worker; times out
    const t0 = performance.now();
    expect(p.store.get(requestHash(req('s2')), req('s2'))).toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(50);
    expect(p.warnings).toEqual([expect.stringMatching(/no answer within 0\.3 s; using the local store only/)]);
  });

  it('writes that fail (500) are reported once at the flush, which never throws', async () => {
    await server.misbehave({ kind: 'put500' });
    const p = open(server, RW);
    for (const i of [1, 2, 3, 4, 5]) p.store.put(requestHash(req(`f${i}`)), answer(req(`f${i}`), 'x'));
    expect(() => p.store.flush()).not.toThrow();
    expect(p.warnings).toEqual([expect.stringMatching(/5 answer\(s\) not written \(writing stopped: 3 writes in a row failed \(HTTP 500\)\); they are kept locally only/)]);
    const puts = (await server.requests()).filter((q) => q.method === 'PUT');
    expect(puts.length).toBeLessThanOrEqual(4);
  });

  it('the flush waits a bounded time for slow writes', async () => {
    await server.misbehave({ kind: 'slow', delayMs: 4_000 });
    const p = open(server, RW, { flushTimeoutMs: 300 });
    p.store.put(requestHash(req('slow-w')), answer(req('slow-w'), 'x'));
    const t0 = performance.now();
    p.store.flush();
    expect(performance.now() - t0).toBeLessThan(3_500);
    expect(p.warnings.join('\n')).toMatch(/1 write\(s\) still unfinished after 0 s|did not finish within/);
  });

  it('a server that is down: one warning, then local only', async () => {
    const p = open({ url: await closedPortUrl() }, RW);
    expect(p.store.get(requestHash(req('d1')), req('d1'))).toBeUndefined();
    expect(p.store.get(requestHash(req('d2')), req('d2'))).toBeUndefined();
    p.store.put(requestHash(req('d3')), answer(req('d3'), 'x'));
    p.store.flush();
    expect(p.warnings).toEqual([expect.stringMatching(/http:\/\/127\.0\.0\.1:\d+: unreachable \(.*ECONNREFUSED.*\); using the local store only/)]);
  });

  it('a process that ends without flushing still writes its answers (bounded, at exit)', async () => {
    const r = req('exit-hook');
    const script = [
      `import { openRemoteStore } from ${JSON.stringify(pathToFileURL(join(import.meta.dirname, '../stages/llm/remote-store.ts')).href)};`,
      `const s = openRemoteStore({ url: ${JSON.stringify(server.url)}, token: ${JSON.stringify(RW)}, timeoutMs: 2000, writeConcurrency: 2, writeTimeoutMs: 2000, flushTimeoutMs: 2000 }, { warn: console.error });`,
      `s.put(${JSON.stringify(requestHash(r))}, ${JSON.stringify(answer(r, 'from a child'))});`,
    ].join('\n');
    const res = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(res.status, res.stderr).toBe(0);
    expect((await server.entries()).has(remoteKey(requestHash(r)))).toBe(true);
  });
});

describe('the stage answerer with a shared store (real openai SDK, fake endpoint)', () => {
  let cache: NxCacheServerThread;
  let provider: FakeProviderServer;
  beforeAll(async () => {
    cache = await startNxCacheServerThread({ readWriteTokens: [RW], readOnlyTokens: [RO], maxLifetimeMs: 120_000 });
    provider = await startFakeProviderServer({ maxLifetimeMs: 120_000 });
  });
  afterAll(async () => {
    await cache.close();
    await provider.close();
    vi.unstubAllEnvs();
  });

  function workspace(): string {
    const root = freshDir();
    mkdirSync(join(root, 'data'), { recursive: true });
    writeFileSync(
      join(root, 'pipeline.yaml'),
      `data:\n  root: data\ndefaults:\n  provider: openai\n  model: gpt-5-mini\n  base_url: ${provider.url}/v1\n  max_retries: 0\nanalyses:\n  - name: small\n    agents: [claude-haiku-4-5-20251001]\n`,
    );
    return root;
  }
  const Label = z.object({ label: z.string() });
  const REQUESTS: LlmRequest[] = [
    { step: 'summarize', messages: [{ role: 'user', content: 'Summarize run A.' }] },
    { step: 'summarize', messages: [{ role: 'user', content: 'Summarize run B.' }] },
    { step: 'cluster', messages: [{ role: 'user', content: 'Label run C.' }], schema: { name: 'label', zod: Label } },
  ];

  it("one machine's answers serve another with an empty store and no outputs: no call, identical answers.jsonl", async () => {
    vi.stubEnv('OPENAI_API_KEY', KEY);
    vi.stubEnv('NX_SELF_HOSTED_REMOTE_CACHE_SERVER', cache.url);
    vi.stubEnv('NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN', RW);
    provider.reset();
    provider.handle((r) => (String(r.body?.messages?.[0]?.content).startsWith('Label') ? { text: '```json\n{"label":"c"}\n```' } : { text: `summary of ${r.body.messages[0].content}` }));
    const logs: string[] = [];
    const spy = vi.spyOn(console, 'log').mockImplementation((m) => void logs.push(String(m)));
    const warn = vi.spyOn(console, 'warn').mockImplementation((m) => void logs.push(String(m)));
    try {
      const a = workspace();
      const ctxA = contextOf(a);
      const ansA = await createStageAnswerer(ctxA, ctxA.analysis.summarize, {}, 'summarize');
      const first = [];
      for (const r of REQUESTS) first.push(await ansA.complete(r));
      mkdirSync(join(a, 'outA'));
      ansA.writeAnswers(join(a, 'outA'));
      expect(provider.requests).toHaveLength(3);
      expect(logs.join('\n')).toMatch(/shared response store http:\/\/127\.0\.0\.1:\d+: 0 answer\(s\) read, 3 written/);

      const b = workspace();
      const ctxB = contextOf(b);
      const ansB = await createStageAnswerer(ctxB, ctxB.analysis.summarize, {}, 'summarize');
      const second = [];
      for (const r of REQUESTS) second.push(await ansB.complete(r));
      mkdirSync(join(b, 'outB'));
      ansB.writeAnswers(join(b, 'outB'));
      expect(provider.requests).toHaveLength(3);
      expect(second.map((x) => [x.value, x.cached])).toEqual(first.map((x) => [x.value, true]));
      expect(ansB.totals()).toMatchObject({ computed: 0, reused: 3, carried: 0 });
      expect(readFileSync(join(b, 'outB/answers.jsonl'), 'utf8')).toBe(readFileSync(join(a, 'outA/answers.jsonl'), 'utf8'));
      // Neither the provider key nor the token is in any entry.
      for (const body of (await cache.entries()).values()) {
        expect(body.toString()).not.toContain(KEY);
        expect(body.toString()).not.toContain(RW);
      }
      expect(existsSync(join(b, '.cache/llm-store'))).toBe(true);
    } finally {
      spy.mockRestore();
      warn.mockRestore();
      vi.unstubAllEnvs();
    }
  });

  /** A stage context built by hand (no writer lock: this test writes no stage output). */
  function contextOf(root: string): StageContext {
    const analysis = resolveAnalysis(loadPipeline(root), 'small');
    const resolvePath = (p: string) => join(root, p);
    return {
      workspaceRoot: root,
      analysis,
      outputOf: (stage) => join(root, 'out/small', stage),
      logDir: join(root, 'out/small/logs'),
      dataRoot: join(root, 'data'),
      storeDir: join(root, '.cache/llm-store'),
      resolvePath,
    };
  }
});

describe('the health check of npm run nx:shared', () => {
  let server: NxCacheServerThread;
  beforeAll(async () => {
    server = await startNxCacheServerThread({ readWriteTokens: [RW], readOnlyTokens: [RO], maxLifetimeMs: 120_000 });
  });
  afterAll(() => server.close());
  afterEach(() => server.misbehave({ kind: 'none' }));
  const env = (token: string, extra: Record<string, string> = {}) => ({
    NX_SELF_HOSTED_REMOTE_CACHE_SERVER: server.url,
    NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN: token,
    META_ANALYSIS_REMOTE_TIMEOUT_MS: '500',
    ...extra,
  });

  it('says what it finds, never the token', async () => {
    expect(await checkSharedCache({})).toMatchObject({ state: 'none' });
    expect(await checkSharedCache(env(RW, { NX_SKIP_REMOTE_CACHE: 'true' }))).toMatchObject({ state: 'none' });
    expect(await checkSharedCache(env(RW))).toMatchObject({ state: 'ok', access: 'read-write' });
    expect(await checkSharedCache(env(RW))).toMatchObject({ state: 'ok', access: 'unknown' }); // the probe entry exists now (409)
    expect(await checkSharedCache(env(RO))).toMatchObject({ state: 'ok', access: 'read-only' });
    expect(await checkSharedCache(env('wrong'))).toMatchObject({ state: 'down', reason: 'the server refuses the token (HTTP 401 on a read)' });
    await server.setEntry(PROBE_KEY, null);
    await server.misbehave({ kind: 'put202' });
    expect(await checkSharedCache(env(RW))).toMatchObject({ state: 'ok', note: expect.stringMatching(/HTTP 202; Nx 24 expects 200/) });
    await server.misbehave({ kind: 'error500' });
    expect(await checkSharedCache(env(RW))).toMatchObject({ state: 'down', reason: 'HTTP 500 on a read' });
    await server.misbehave({ kind: 'put500' });
    expect(await checkSharedCache(env(RW))).toMatchObject({ state: 'down', reason: 'HTTP 500 on a write' });
    await server.misbehave({ kind: 'slow', delayMs: 2_000 });
    expect(await checkSharedCache(env(RW))).toMatchObject({ state: 'down', reason: 'no answer to a read within 0.5 s' });
    expect(await checkSharedCache({ ...env(RW), NX_SELF_HOSTED_REMOTE_CACHE_SERVER: await closedPortUrl() })).toMatchObject({
      state: 'down',
      reason: 'unreachable (ECONNREFUSED)',
    });

    const out: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((m) => void out.push(String(m)));
    const err = vi.spyOn(console, 'error').mockImplementation((m) => void out.push(String(m)));
    try {
      await server.misbehave({ kind: 'none' });
      expect(await sharedMain(['--check'], env(RW))).toBe(0);
      const userinfo = { ...env(RW), NX_SELF_HOSTED_REMOTE_CACHE_SERVER: server.url.replace('http://', `http://user:${RW}@`) };
      await sharedMain(['--check'], userinfo);
      await server.misbehave({ kind: 'error500' });
      expect(await sharedMain(['--check'], env(RW))).toBe(1);
    } finally {
      log.mockRestore();
      err.mockRestore();
    }
    expect(out.join('\n')).toMatch(/healthy/);
    expect(out.join('\n')).toMatch(/not usable: HTTP 500 on a read/);
    expect(out.join('\n')).not.toContain(RW);
  });
});

describe('budget:check', () => {
  const pipeline = (defaults: string) =>
    `data:\n  root: data\ndefaults:\n${defaults}\nanalyses:\n  - name: a\n    agents: [x]\n  - name: b\n    agents: [y]\n    stages:\n      cluster: { provider: offline }\n`;
  const check = (defaults: string, max: number) => {
    const root = freshDir();
    mkdirSync(root, { recursive: true });
    writeFileSync(join(root, 'pipeline.yaml'), pipeline(defaults));
    return checkBudget(root, max);
  };

  it('passes offline pipelines, refuses unbounded stages and a sum above the limit', () => {
    expect(check('  provider: offline', 0)).toMatchObject({ ok: true, totalUsd: 0 });
    const unbounded = check('  provider: openai', 100);
    expect(unbounded.ok).toBe(false);
    expect(unbounded.lines.join('\n')).toMatch(/a:summarize, a:categorize, a:cluster, b:summarize, b:categorize may pay without a limit/);
    // 5 paying stages (b's cluster is offline) at $2 each.
    expect(check('  provider: openai\n  max_cost_usd: 2', 10)).toMatchObject({ ok: true, totalUsd: 10 });
    const over = check('  provider: openai\n  max_cost_usd: 2', 9.5);
    expect(over.ok).toBe(false);
    expect(over.lines.join('\n')).toMatch(/up to \$10\.00 together, more than the \$9\.50 allowed/);
  });
});
