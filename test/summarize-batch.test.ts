// Summaries through the provider's batch API (`batch: true`), with the real
// OpenAI and Anthropic SDKs against the loopback fake: batch price, a pure
// store hit afterwards, fallback to normal calls for errored and expired
// requests, and a batch still running ends the stage as pending, to be
// polled (never resubmitted) by the next run.
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import summarize from '../executors/summarize/executor.ts';
import taskList from '../executors/task-list/executor.ts';
import { startFakeProviderServer } from './helpers/fake-provider-server.ts';
import type { FakeProviderServer } from './helpers/fake-provider-server.ts';

const REPO = resolve(import.meta.dirname, '..');

let server: FakeProviderServer;
let root: string;

function pipeline(url: string, provider: 'openai' | 'anthropic', extra = ''): string {
  const model = provider === 'openai' ? 'gpt-5-mini' : 'claude-haiku-4-5-20251001';
  return `
data:
  root: data
defaults:
  provider: ${provider}
  model: ${model}
  base_url: ${url}${provider === 'openai' ? '/v1' : ''}
  concurrency: 4
  max_retries: 0
stages:
  summarize:
    batch: true
    batch_poll_seconds: 0.02
    batch_wait_minutes: 1
${extra}
analyses:
  - name: small
    agents: [claude-haiku-4-5-20251001]
    domains: [os]
`;
}

const output = (rel: string) => readFileSync(join(root, 'out/small', rel), 'utf8');
const ctx = () => ({ root, projectName: 'small' });
/** Normal (not batch) model calls the fake received. */
const normalCalls = () => server.requests.filter((r) => r.protocol === 'chat' || r.protocol === 'messages').length;

beforeAll(async () => {
  server = await startFakeProviderServer();
});
afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'summarize-batch-'));
  cpSync(join(REPO, 'examples/perturbed_queries'), join(root, 'data'), { recursive: true });
  cpSync(join(REPO, 'prompts'), join(root, 'prompts'), { recursive: true });
  vi.stubEnv('OPENAI_API_KEY', 'sk-test-batch-openai');
  vi.stubEnv('ANTHROPIC_API_KEY', 'sk-ant-test-batch');
  vi.spyOn(console, 'log').mockImplementation(() => {});
  vi.spyOn(console, 'error').mockImplementation(() => {});
  vi.spyOn(console, 'warn').mockImplementation(() => {});
  server.reset();
  server.handle(() => ({ text: 'A summary.', usage: { input: 1000, output: 200 } }));
});
afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

describe.each(['openai', 'anthropic'] as const)('summarize with batch: true (%s)', (provider) => {
  it('buys every summary in one batch at half price; the next run is a pure store hit', async () => {
    writeFileSync(join(root, 'pipeline.yaml'), pipeline(server.url, provider));
    expect(await taskList({ analysis: 'small' }, ctx())).toEqual({ success: true });
    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: true });
    expect(server.batches.counters).toMatchObject({ created: 1, lines: 21 });
    expect(normalCalls()).toBe(0);
    const index = JSON.parse(output('summarize/index.json'));
    expect(index.statistics).toMatchObject({ summarized: 21, failed: 0, input_tokens: 21000, output_tokens: 4200 });
    // Half of the normal price: gpt-5-mini $0.25 / $2.00, claude-haiku-4-5 $1 / $5 per 1M tokens.
    const normal = provider === 'openai' ? (1000 * 0.25 + 200 * 2) / 1e6 : (1000 * 1 + 200 * 5) / 1e6;
    expect(Number(index.statistics.cost)).toBeCloseTo((21 * normal) / 2, 10);
    // Bought in this run, though read back from the store: counted as computed, with what they cost.
    const log = JSON.parse(output('logs/summarize.json'));
    expect(log).toMatchObject({ computed: 21, reused: 0 });
    expect(log.paid_cost_usd).toBeCloseTo((21 * normal) / 2, 10);
    // The manifest is closed once every result is stored.
    const manifests = join(root, '.cache/llm-store/batches');
    expect(existsSync(manifests) ? readdirSync(manifests) : []).toEqual([]);

    server.reset();
    rmSync(join(root, 'out/small/summarize'), { recursive: true });
    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: true });
    expect(server.requests).toHaveLength(0);
    expect(output('summarize/index.json')).toBe(`${JSON.stringify(index, null, 2)}\n`);
  });
});

describe('summarize with batch: true (openai): failures and waiting', () => {
  it('errored and expired requests fall back to normal calls; every run is summarized', async () => {
    writeFileSync(join(root, 'pipeline.yaml'), pipeline(server.url, 'openai'));
    server.batches.configure({ errorFraction: 0.1, expireFraction: 0.05 });
    expect(await taskList({ analysis: 'small' }, ctx())).toEqual({ success: true });
    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: true });
    expect(server.batches.counters).toMatchObject({ created: 1, lines: 21 });
    // floor(21 * 0.1) errored + floor(21 * 0.05) expired.
    expect(normalCalls()).toBe(3);
    expect(JSON.parse(output('summarize/index.json')).statistics).toMatchObject({ total_runs: 21, summarized: 21, failed: 0 });
    expect(JSON.parse(output('logs/summarize.json'))).toMatchObject({ computed: 21, reused: 0 });
  });

  it('a batch still running ends the stage as pending (outputs untouched); the next run polls the same batch and submits nothing', async () => {
    writeFileSync(join(root, 'pipeline.yaml'), pipeline(server.url, 'openai').replace('batch_wait_minutes: 1', 'batch_wait_minutes: 0'));
    server.batches.configure({ completeAfterPolls: 1000 });
    expect(await taskList({ analysis: 'small' }, ctx())).toEqual({ success: true });
    const errors = vi.mocked(console.error);
    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: false });
    expect(errors.mock.calls.flat().join('\n')).toMatch(/pending: 21 requests in batch \S+, check again after \S+.*Run the same command again to poll the batch/);
    expect(existsSync(join(root, 'out/small/summarize'))).toBe(false);
    expect(normalCalls()).toBe(0);

    server.batches.configure({ completeAfterPolls: 0 });
    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: true });
    expect(server.batches.counters).toMatchObject({ created: 1, lines: 21 });
    expect(normalCalls()).toBe(0);
    expect(JSON.parse(output('summarize/index.json')).statistics).toMatchObject({ summarized: 21, failed: 0 });
  });
});
