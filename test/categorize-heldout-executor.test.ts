// The held-out agreement check in the categorize target, in process, against
// the scripted analyst behind the loopback OpenAI endpoint (the real openai
// SDK): the plan predicts its assign calls, the run makes exactly those, a
// second run makes none, categorization.json is the same with the check on
// or off, and turned off it asks nothing and says so in heldout.json.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import categorize from '../executors/categorize/executor.ts';
import plan from '../executors/plan/executor.ts';
import summarize from '../executors/summarize/executor.ts';
import taskList from '../executors/task-list/executor.ts';
import { heldoutDocument } from '../stages/categorize/heldout.ts';
import { analyst } from './helpers/analyst-fake.ts';
import type { Analyst } from './helpers/analyst-fake.ts';
import { startFakeProviderServer } from './helpers/fake-provider-server.ts';
import type { FakeProviderServer } from './helpers/fake-provider-server.ts';

const REPO = resolve(import.meta.dirname, '..');
const NAME = 'small';

let server: FakeProviderServer;
let fake: Analyst;
let root: string;
const errors: string[] = [];

function pipeline(heldout: Record<string, unknown>) {
  return {
    data: { root: 'data' },
    defaults: { provider: 'openai', model: 'gpt-5-mini', base_url: `${server.url}/v1`, concurrency: 4, max_retries: 0, timeout_s: 20 },
    stages: { categorize: { initial_batch_size: 4, iterative_batch_size: 3, assign_batch_size: 2, heldout } },
    analyses: [{ name: NAME, agents: ['claude-haiku-4-5-20251001', 'claude-opus-4-5-20251101'], domains: ['os'] }],
  };
}
const setPipeline = (heldout: Record<string, unknown>) => writeFileSync(join(root, 'pipeline.yaml'), YAML.stringify(pipeline(heldout)));
const ctx = () => ({ root, projectName: NAME });
const read = (file: string) => readFileSync(join(root, 'out', NAME, 'categorize', file), 'utf8');

async function planned() {
  const logs = vi.mocked(console.log);
  logs.mockClear();
  expect((await plan({ analysis: NAME, outDir: 'out', json: true } as never, ctx())).success, errors.join(' | ')).toBe(true);
  return JSON.parse(logs.mock.calls.flat().join('\n')).stages.find((x: { stage: string }) => x.stage === 'categorize') as { reused: number; toPay: number; exact: boolean; note: string };
}

beforeAll(async () => {
  server = await startFakeProviderServer({ maxLifetimeMs: 120_000 });
  fake = analyst();
  server.handle(fake.handler);
  root = mkdtempSync(join(tmpdir(), 'categorize-heldout-executor-'));
  cpSync(join(REPO, 'examples/perturbed_queries/os'), join(root, 'data/os'), { recursive: true });
  cpSync(join(REPO, 'prompts'), join(root, 'prompts'), { recursive: true });
  mkdirSync(join(root, 'analyses', NAME), { recursive: true });
  setPipeline({ enabled: false });
  vi.stubEnv('OPENAI_API_KEY', 'sk-categorize-heldout-test');
  vi.spyOn(console, 'log').mockImplementation(() => {});
  vi.spyOn(console, 'warn').mockImplementation(() => {});
  vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void errors.push(args.join(' ')));
  for (const run of [taskList, summarize, categorize]) {
    const res = await run({ analysis: NAME, outDir: 'out' }, ctx());
    if (!res.success) throw new Error(errors.join(' | '));
  }
}, 60_000);

afterAll(async () => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  await server?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('the held-out check in categorize (a model behind the fake endpoint)', () => {
  it('turned off: no assign call, heldout.json says it is off', () => {
    expect(fake.counts.assign).toBe(0);
    expect(heldoutDocument.parse(JSON.parse(read('heldout.json')))).toMatchObject({ enabled: false });
  });

  it('turned on: the plan predicts the assign calls, the run makes exactly those, and categorization.json keeps its bytes', async () => {
    const off = read('categorization.json');
    setPipeline({ fraction: 0.5, seed: 'test-seed' });
    server.reset();
    server.handle(fake.handler);
    fake.reset();
    const p = await planned();
    expect(server.requests).toHaveLength(0);
    // The taxonomy's answers are stored: only the check's requests are to pay, each looked up.
    expect(p.exact).toBe(true);
    expect(p.note).toMatch(/held-out check: \d+ runs? in \d+ assign calls?/);
    const [, runs, calls] = /held-out check: (\d+) runs? in (\d+) assign/.exec(p.note)!.map(Number);
    expect(calls).toBe(Math.ceil(runs! / 2));
    expect(p.toPay).toBe(calls);

    expect((await categorize({ analysis: NAME, outDir: 'out' }, ctx())).success, errors.join(' | ')).toBe(true);
    expect(fake.counts).toMatchObject({ assign: calls, create: 0, update: 0 });
    const h = heldoutDocument.parse(JSON.parse(read('heldout.json')));
    if (!h.enabled) throw new Error('the check is on');
    expect(h).toMatchObject({ method: 'assign-prompt', sampled_runs: runs, requests: calls, settings: { fraction: 0.5, seed: 'test-seed' } });
    expect(h.sampled_runs).toBe(Math.ceil(h.categorized_runs * 0.5));
    expect(h.agreed + h.other_category + h.none_fits + h.unanswered).toBe(h.sampled_runs);
    // The analyst labels a run by its own words, so it puts every sampled run back where it was.
    expect(h.agreement).toBe(1);
    expect(h.runs.map((r) => r.run_id)).toEqual(h.runs.map((r) => r.run_id).sort());
    expect(read('categorization.json')).toBe(off);
    // Counted with the stage's other answers: the run log's plan_vs_actual.
    const log = JSON.parse(readFileSync(join(root, 'out', NAME, 'logs', 'categorize.json'), 'utf8'));
    expect(log.plan_vs_actual).toMatchObject({ planned: { calls }, actual: { calls } });
    expect(log.heldout).toMatchObject({ sampled_runs: runs, requests: calls });
  });

  it('a second run asks nothing and writes the same heldout.json', async () => {
    const before = read('heldout.json');
    const p = await planned();
    expect(p).toMatchObject({ toPay: 0 });
    fake.reset();
    expect((await categorize({ analysis: NAME, outDir: 'out' }, ctx())).success, errors.join(' | ')).toBe(true);
    expect(fake.counts.assign + fake.counts.create + fake.counts.update).toBe(0);
    expect(read('heldout.json')).toBe(before);
  });
});
