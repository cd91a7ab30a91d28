// The answers a stage carries in its own output (answers.jsonl), through the
// stage answerer and the real openai SDK against the fake server: an empty
// store with the output restored makes no call, damaged lines are misses,
// the file is byte-identical between a paid and a cached run, --no-store and
// META_ANALYSIS_REFRESH turn it off.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { createStageAnswerer, parseRefresh } from '../executors/lib/answerer.ts';
import type { StageAnswerer } from '../executors/lib/answerer.ts';
import { stageContext } from '../executors/lib/context.ts';
import type { StageContext } from '../executors/lib/context.ts';
import { ANSWERS_FILE, formatAnswers, indexCarriedAnswers, parseAnswers, readCarriedAnswers } from '../stages/llm/carried.ts';
import type { LlmRequest } from '../stages/llm/types.ts';
import { startFakeProviderServer } from './helpers/fake-provider-server.ts';
import type { FakeProviderServer } from './helpers/fake-provider-server.ts';

const KEY = 'sk-test-carried-0123456789';
const Label = z.object({ label: z.string() });

let server: FakeProviderServer;
let root: string;
let warnings: string[];
let printed: string[];

function pipeline(provider: 'openai' | 'offline'): string {
  return `
data:
  root: data
defaults:
  provider: ${provider}
  model: gpt-5-mini
  base_url: ${server.url}/v1
  max_retries: 0
analyses:
  - name: small
    agents: [claude-haiku-4-5-20251001]
`;
}

function ctx(provider: 'openai' | 'offline' = 'openai'): StageContext {
  writeFileSync(join(root, 'pipeline.yaml'), pipeline(provider));
  return stageContext({ analysis: 'small' }, { root });
}

/** Three requests: two plain, one structured whose raw answer is fenced (the store keeps the raw text). */
const REQUESTS: LlmRequest[] = [
  { step: 'summarize', messages: [{ role: 'user', content: 'Summarize run A.' }] },
  { step: 'summarize', messages: [{ role: 'user', content: 'Summarize run B.' }] },
  { step: 'cluster', messages: [{ role: 'user', content: 'Label run C.' }], schema: { name: 'label', zod: Label } },
];

async function askAll(answerer: StageAnswerer) {
  const out = [];
  for (const r of REQUESTS) out.push(await answerer.complete(r));
  return out;
}

function storeFiles(): string[] {
  const dir = join(root, '.cache/llm-store');
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name));
}

/** Builds an output folder the way the executors do and returns answers.jsonl's bytes. */
function written(answerer: StageAnswerer): string {
  const dir = join(root, 'built');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  answerer.writeAnswers(dir);
  const file = join(dir, ANSWERS_FILE);
  return existsSync(file) ? readFileSync(file, 'utf8') : '(none)';
}

beforeAll(async () => {
  server = await startFakeProviderServer();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'carried-answers-'));
  // What pipeline.yaml names must exist (every stage checks before it starts).
  cpSync(join(import.meta.dirname, '../prompts'), join(root, 'prompts'), { recursive: true });
  mkdirSync(join(root, 'data'));
  warnings = [];
  printed = [];
  vi.stubEnv('OPENAI_API_KEY', KEY);
  vi.stubEnv('META_ANALYSIS_REFRESH', '');
  vi.stubEnv('META_ANALYSIS_STORE_DIR', join(root, '.cache/llm-store'));
  vi.spyOn(console, 'warn').mockImplementation((...a: unknown[]) => void warnings.push(a.join(' ')));
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void printed.push(a.join(' ')));
  n = 0;
  answering();
});

/** The fake's answers: different on every call (a counter), a fenced JSON answer for the structured request. */
let n = 0;
function answering(): void {
  server.reset();
  server.handle((req) => {
    n += 1;
    const content = String(req.body?.messages?.[0]?.content ?? '');
    if (content.startsWith('Label')) return { text: `Here it is:\n\`\`\`json\n{"label": "cue ${n}"}\n\`\`\``, usage: { input: 300, output: 40 } };
    return { text: `Summary ${n} of: ${content}`, usage: { input: 1000, output: 200 } };
  });
}
afterEach(() => {
  server.reset();
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

describe('answers carried in the output (answers.jsonl)', () => {
  it('is byte-identical between a paid run and a fully cached run; an empty store with the file makes no call and fills the store', async () => {
    const c = ctx();
    const paidRun = await createStageAnswerer(c, c.analysis.summarize, {}, 'summarize');
    const paid = await askAll(paidRun);
    expect(server.requests).toHaveLength(3);
    expect(paid[2]!.value).toEqual({ label: expect.stringMatching(/^cue \d+$/) });
    const bytes = written(paidRun);

    // One line per answer, sorted by hash, only what does not vary between runs.
    const lines = bytes.trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(3);
    expect(lines.map((l) => l.request_hash)).toEqual(paid.map((a) => a.requestHash).sort());
    for (const l of lines) expect(Object.keys(l)).toEqual(['request_hash', 'text', 'usage', 'cost_usd']);
    // The structured answer is kept whole, as the store keeps it (fence included).
    expect(lines.find((l) => l.request_hash === paid[2]!.requestHash).text).toBe('Here it is:\n```json\n{"label": "cue 3"}\n```');
    expect(bytes).not.toContain(KEY);

    const cachedRun = await createStageAnswerer(c, c.analysis.summarize, {}, 'summarize');
    const cached = await askAll(cachedRun);
    expect(server.requests).toHaveLength(3);
    expect(cached.every((a) => a.cached)).toBe(true);
    expect(written(cachedRun)).toBe(bytes);

    // A clone restored from the Nx cache: the output is there, the store is empty.
    rmSync(join(root, '.cache'), { recursive: true, force: true });
    mkdirSync(c.outputOf('summarize'), { recursive: true });
    writeFileSync(join(c.outputOf('summarize'), ANSWERS_FILE), bytes);
    const restored = await createStageAnswerer(c, c.analysis.summarize, {}, 'summarize');
    const reused = await askAll(restored);
    expect(server.requests).toHaveLength(3);
    expect(reused.map((a) => a.value)).toEqual(paid.map((a) => a.value));
    expect(reused.map((a) => [a.usage, a.costUsd])).toEqual(paid.map((a) => [a.usage, a.costUsd]));
    expect(restored.totals()).toMatchObject({ computed: 0, reused: 3, carried: 3 });
    expect(written(restored)).toBe(bytes);
    // Copied into the store, with the canonical request and no key.
    const entries = storeFiles().map((f) => readFileSync(f, 'utf8'));
    expect(entries).toHaveLength(3);
    for (const e of entries) {
      expect(e).not.toContain(KEY);
      expect(JSON.parse(e).request).toMatchObject({ provider: 'openai', model: 'gpt-5-mini', endpoint: { base_url: `${server.url}/v1` } });
    }
    // The next run finds them in the store itself.
    rmSync(join(c.outputOf('summarize'), ANSWERS_FILE));
    const again = await createStageAnswerer(c, c.analysis.summarize, {}, 'summarize');
    await askAll(again);
    expect(again.totals()).toMatchObject({ computed: 0, reused: 3, carried: 0 });
    expect(server.requests).toHaveLength(3);
    expect(warnings).toEqual([]);
  });

  it('skips a damaged line with one warning: that answer is bought again, the others are not', async () => {
    const c = ctx();
    const first = await createStageAnswerer(c, c.analysis.summarize, {}, 'summarize');
    const paid = await askAll(first);
    const lines = written(first).trimEnd().split('\n');
    const damagedHash = JSON.parse(lines[1]!).request_hash as string;
    lines[1] = lines[1]!.slice(0, 40); // cut off mid-line
    rmSync(join(root, '.cache'), { recursive: true, force: true });
    mkdirSync(c.outputOf('summarize'), { recursive: true });
    writeFileSync(join(c.outputOf('summarize'), ANSWERS_FILE), `${lines.join('\n')}\n`);
    answering();

    const next = await createStageAnswerer(c, c.analysis.summarize, {}, 'summarize');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/skipped 1 damaged line\(s\) of .*answers\.jsonl \(line 2: not JSON/);
    const again = await askAll(next);
    expect(server.requests).toHaveLength(1);
    expect(again.find((a) => !a.cached)!.requestHash).toBe(damagedHash);
    expect(next.totals()).toMatchObject({ computed: 1, reused: 2, carried: 2 });
    // The rewritten file is whole again.
    const fixed = parseAnswers(written(next));
    expect(fixed.damaged).toEqual([]);
    expect([...fixed.answers.keys()].sort()).toEqual(paid.map((a) => a.requestHash).sort());
  });

  it('a carried answer that no longer validates is asked again, never served', async () => {
    const c = ctx();
    const first = await createStageAnswerer(c, c.analysis.summarize, {}, 'summarize');
    const paid = await askAll(first);
    const structured = paid[2]!.requestHash;
    // A well-formed line whose answer does not match the schema (label must be a string).
    const bytes = written(first).trimEnd().split('\n').map((line) => {
      const r = JSON.parse(line);
      return `${JSON.stringify(r.request_hash === structured ? { ...r, text: '{"label": 7}' } : r)}\n`;
    }).join('');
    rmSync(join(root, '.cache'), { recursive: true, force: true });
    mkdirSync(c.outputOf('summarize'), { recursive: true });
    writeFileSync(join(c.outputOf('summarize'), ANSWERS_FILE), bytes);
    answering();
    const next = await createStageAnswerer(c, c.analysis.summarize, {}, 'summarize');
    const again = await askAll(next);
    expect(server.requests).toHaveLength(1);
    expect(again[2]).toMatchObject({ cached: false, requestHash: structured });
    expect(warnings.some((w) => /no longer passes validation/.test(w)), warnings.join("\n")).toBe(true);
  });

  it('--no-store reads neither the store nor answers.jsonl, and writes neither', async () => {
    const c = ctx();
    const first = await createStageAnswerer(c, c.analysis.summarize, {}, 'summarize');
    await askAll(first);
    mkdirSync(c.outputOf('summarize'), { recursive: true });
    writeFileSync(join(c.outputOf('summarize'), ANSWERS_FILE), written(first));
    const before = storeFiles().map((f) => readFileSync(f, 'utf8'));
    answering();
    const none = await createStageAnswerer(c, c.analysis.summarize, { store: false }, 'summarize');
    expect(none.store).toBeNull();
    await askAll(none);
    expect(server.requests).toHaveLength(3);
    expect(written(none)).toBe('(none)');
    expect(storeFiles().map((f) => readFileSync(f, 'utf8'))).toEqual(before);
  });

  it('META_ANALYSIS_REFRESH naming the stage ignores store and carried answers and overwrites both; naming another stage changes nothing', async () => {
    const c = ctx();
    const first = await createStageAnswerer(c, c.analysis.summarize, {}, 'summarize');
    const old = await askAll(first);
    mkdirSync(c.outputOf('summarize'), { recursive: true });
    writeFileSync(join(c.outputOf('summarize'), ANSWERS_FILE), written(first));
    answering();

    vi.stubEnv('META_ANALYSIS_REFRESH', 'cluster');
    const other = await createStageAnswerer(c, c.analysis.summarize, {}, 'summarize');
    expect(other.refresh).toBe(false);
    await askAll(other);
    expect(server.requests).toHaveLength(0);
    expect(printed).toEqual([]);

    vi.stubEnv('META_ANALYSIS_REFRESH', 'summarize, cluster');
    const refreshing = await createStageAnswerer(c, c.analysis.summarize, {}, 'summarize');
    expect(printed).toHaveLength(1);
    expect(printed[0]).toMatch(/^summarize: META_ANALYSIS_REFRESH=summarize, cluster: refreshing/);
    const fresh = await askAll(refreshing);
    expect(server.requests).toHaveLength(3);
    expect(fresh.map((a) => a.value)).not.toEqual(old.map((a) => a.value));
    const refreshedBytes = written(refreshing);

    // The refreshed answers replaced the stored ones: a plain run serves them.
    vi.stubEnv('META_ANALYSIS_REFRESH', '');
    const plain = await createStageAnswerer(c, c.analysis.summarize, {}, 'summarize');
    expect((await askAll(plain)).map((a) => a.value)).toEqual(fresh.map((a) => a.value));
    expect(server.requests).toHaveLength(3);
    expect(written(plain)).toBe(refreshedBytes);
  });

  it('parses META_ANALYSIS_REFRESH: all, lists, unknown names (warned, ignored)', async () => {
    expect([...parseRefresh('all').stages].sort()).toEqual(['categorize', 'cluster', 'report', 'summarize', 'task-list']);
    expect([...parseRefresh(' summarize ,cluster,').stages].sort()).toEqual(['cluster', 'summarize']);
    expect(parseRefresh(undefined).stages.size).toBe(0);
    expect(parseRefresh('sumarize,cluster').unknown).toEqual(['sumarize']);
    vi.stubEnv('META_ANALYSIS_REFRESH', 'sumarize');
    const c = ctx();
    const a = await createStageAnswerer(c, c.analysis.summarize, {}, 'summarize');
    expect(a.refresh).toBe(false);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('"sumarize"');
  });

  it('offline answers take the same path (carried, copied into the store, refreshed)', async () => {
    const c = ctx('offline');
    const input = { step: 'x', items: [1, 2, 3] };
    let computed = 0;
    const compute = () => ({ groups: [[1, 2], [3]], n: ++computed });
    const first = await createStageAnswerer(c, c.analysis.cluster, {});
    expect(first.stage).toBe('cluster'); // told by the settings object
    const a = first.offline('cluster', input, compute);
    expect(a.cached).toBe(false);
    const bytes = written(first);
    expect(JSON.parse(bytes).text).toBe(JSON.stringify({ groups: [[1, 2], [3]], n: 1 }));

    rmSync(join(root, '.cache'), { recursive: true, force: true });
    mkdirSync(c.outputOf('cluster'), { recursive: true });
    writeFileSync(join(c.outputOf('cluster'), ANSWERS_FILE), bytes);
    const restored = await createStageAnswerer(c, c.analysis.cluster, {});
    expect(restored.offline('cluster', input, compute)).toMatchObject({ cached: true, value: { n: 1 } });
    expect(computed).toBe(1);
    expect(restored.totals()).toMatchObject({ reused: 1, carried: 1 });
    expect(storeFiles()).toHaveLength(1);
    expect(written(restored)).toBe(bytes);

    vi.stubEnv('META_ANALYSIS_REFRESH', 'all');
    const refreshing = await createStageAnswerer(c, c.analysis.cluster, {});
    expect(refreshing.offline('cluster', input, compute)).toMatchObject({ cached: false, value: { n: 2 } });
    vi.stubEnv('META_ANALYSIS_REFRESH', '');
    const plain = await createStageAnswerer(c, c.analysis.cluster, {});
    expect(plain.offline('cluster', input, compute)).toMatchObject({ cached: true, value: { n: 2 } });
  });

  it('formatAnswers writes each record as JSON.stringify writes it, a long text included', () => {
    const record = { request_hash: 'e'.repeat(64), text: `${'x'.repeat((1 << 16) - 1)}😀 "quoted" \ud800 é${'y'.repeat(1 << 17)}`, usage: { input_tokens: 1, output_tokens: 2, total_tokens: 3 }, cost_usd: 0.25 };
    expect(formatAnswers([record])).toBe(`${JSON.stringify(record)}\n`);
    expect(formatAnswers([{ ...record, cost_usd: null }])).toBe(`${JSON.stringify({ ...record, cost_usd: null })}\n`);
  });

  it('formatAnswers sorts, deduplicates and fixes the key order', () => {
    const r = (h: string, text: string) => ({ cost_usd: null, usage: { total_tokens: 3, output_tokens: 2, input_tokens: 1 }, text, request_hash: h.repeat(64) });
    const text = formatAnswers([r('b', 'second'), r('a', 'first'), r('b', 'ignored')]);
    expect(text).toBe(
      `{"request_hash":"${'a'.repeat(64)}","text":"first","usage":{"input_tokens":1,"output_tokens":2,"total_tokens":3},"cost_usd":null}\n` +
        `{"request_hash":"${'b'.repeat(64)}","text":"second","usage":{"input_tokens":1,"output_tokens":2,"total_tokens":3},"cost_usd":null}\n`,
    );
    expect(formatAnswers([])).toBe('');
  });
  it('the index of answers.jsonl finds what reading it whole finds: same answers, same warning, lines longer than a read block, no final newline', () => {
    const r = (h: string, text: string) => ({ cost_usd: 0.5, usage: { input_tokens: 1, output_tokens: 2, total_tokens: 3 }, text, request_hash: h.repeat(64) });
    const long = 'é'.repeat(1_500_000); // 3 MB of UTF-8: longer than the 1 MiB block, split inside a character
    const lines = formatAnswers([r('a', 'first'), r('b', long), r('c', 'third')]).split('\n');
    // A damaged line, a blank one, a duplicate of a (the first line of a hash wins) and no newline at the end.
    const text = [lines[0], '{"request_hash": "not a hash"}', '', lines[1], formatAnswers([r('a', 'duplicate')]).trim(), lines[2]].join('\n');
    const file = join(root, 'answers.jsonl');
    writeFileSync(file, text);
    const whole: string[] = [];
    const indexed: string[] = [];
    const all = readCarriedAnswers(file, (m) => whole.push(m));
    const index = indexCarriedAnswers(file, (m) => indexed.push(m));
    expect(indexed).toEqual(whole);
    expect(whole).toHaveLength(1);
    expect(whole[0]).toContain('skipped 1 damaged line(s)');
    expect(whole[0]).toContain('line 2: request_hash is not a sha256 hex digest');
    for (const h of ['a', 'b', 'c', 'd']) expect(index.get(h.repeat(64))).toEqual(all.get(h.repeat(64)));
    expect(index.get('b'.repeat(64))?.text).toBe(long);
    expect(index.get('a'.repeat(64))?.text).toBe('first');

    // The file replaced after it was indexed: a line that no longer holds its answer is a miss, never another answer.
    writeFileSync(file, formatAnswers([r('c', 'third'), r('a', 'first')]));
    expect(index.get('c'.repeat(64))).toBeUndefined();
    expect(indexCarriedAnswers(join(root, 'missing.jsonl'), (m) => indexed.push(m)).get('a'.repeat(64))).toBeUndefined();
    expect(indexed).toHaveLength(1);
  });
});
