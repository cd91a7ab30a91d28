// The categorize target with `strategy: induce_assign`, in process, against
// the scripted analyst behind the loopback OpenAI endpoint: the output says
// what each phase did, every run is accounted for, --stability still works,
// and the assignment prompt is a named input only when the strategy reads it.
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import categorize from '../executors/categorize/executor.ts';
import plan from '../executors/plan/executor.ts';
import { planAssignCalls } from '../stages/categorize/assign.ts';
import { namedFiles } from '../stages/config.ts';
import summarize from '../executors/summarize/executor.ts';
import taskList from '../executors/task-list/executor.ts';
import { parsePipeline, resolveAnalysis, stagePromptFiles } from '../stages/config.ts';
import { analyst } from './helpers/analyst-fake.ts';
import type { Analyst } from './helpers/analyst-fake.ts';
import { startFakeProviderServer } from './helpers/fake-provider-server.ts';
import type { FakeProviderServer } from './helpers/fake-provider-server.ts';

const REPO = resolve(import.meta.dirname, '..');
const NAME = 'small';
const HAIKU = 'claude-haiku-4-5-20251001';
const OPUS = 'claude-opus-4-5-20251101';

let server: FakeProviderServer;
let fake: Analyst;
let root: string;
const errors: string[] = [];

function pipeline(categorizeSettings: Record<string, unknown>) {
  return {
    data: { root: 'data' },
    defaults: { provider: 'openai', model: 'gpt-5-mini', base_url: `${server.url}/v1`, concurrency: 4, max_retries: 0, timeout_s: 20 },
    // The held-out check (its own assign calls) is off: the strategy's calls are counted here, the check's in categorize-heldout-executor.test.ts.
    stages: { categorize: { initial_batch_size: 4, iterative_batch_size: 3, heldout: { enabled: false }, ...categorizeSettings } },
    analyses: [{ name: NAME, agents: [HAIKU, OPUS], domains: ['os'] }],
  };
}

const ctx = () => ({ root, projectName: NAME });
const categorization = () => JSON.parse(readFileSync(join(root, 'out', NAME, 'categorize', 'categorization.json'), 'utf8'));

beforeAll(async () => {
  server = await startFakeProviderServer({ maxLifetimeMs: 120_000 });
  fake = analyst();
  server.handle(fake.handler);
  root = mkdtempSync(join(tmpdir(), 'categorize-assign-executor-'));
  cpSync(join(REPO, 'examples/perturbed_queries/os'), join(root, 'data/os'), { recursive: true });
  cpSync(join(REPO, 'prompts'), join(root, 'prompts'), { recursive: true });
  mkdirSync(join(root, 'analyses', NAME), { recursive: true });
  writeFileSync(join(root, 'pipeline.yaml'), YAML.stringify(pipeline({ strategy: 'induce_assign', induce_sample_size: 12, assign_batch_size: 8 })));
  vi.stubEnv('OPENAI_API_KEY', 'sk-categorize-assign-test');
  vi.spyOn(console, 'log').mockImplementation(() => {});
  vi.spyOn(console, 'warn').mockImplementation(() => {});
  vi.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void errors.push(args.join(' ')));
  for (const run of [taskList, summarize]) {
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

describe('categorize with strategy induce_assign', () => {
  it('induces on a sample, assigns the rest in parallel, and accounts for every run', async () => {
    fake.reset();
    const res = await categorize({ analysis: NAME, outDir: 'out' }, ctx());
    expect(res.success, errors.join(' | ')).toBe(true);
    const out = categorization();
    const runs = JSON.parse(readFileSync(join(root, 'out', NAME, 'task-list', 'runs.json'), 'utf8')).runs.length as number;
    expect(runs).toBeGreaterThan(12);
    expect(out.statistics.categorized_runs + out.statistics.unassigned_runs).toBe(runs);
    expect(out.unassigned).toEqual([]);
    expect(out.metadata.strategy).toMatchObject({ name: 'induce_assign', induce_sample_size: 12, assign_batch_size: 8, sample_runs: 12, assigned_runs: runs - 12 });
    expect(out.metadata.strategy.placed_in_parallel + out.metadata.strategy.none_fits + out.metadata.strategy.unanswered).toBe(runs - 12);
    expect(out.metadata.prompts.assign.file).toBe('prompts/categorize-assign.md');
    expect(out.metadata.built_with).toMatchObject({ strategy: 'induce_assign', induce_sample_size: 12, assign_batch_size: 8 });
    expect(out.metadata.batches.filter((b: { kind: string }) => b.kind === 'assign').length).toBeGreaterThanOrEqual(Math.ceil((runs - 12) / 8));
    expect(fake.counts.assign).toBeGreaterThanOrEqual(Math.ceil((runs - 12) / 8));
    // No run is in two categories.
    const ids = out.categorization.categories.flatMap((c: { examples: { run_id: string }[] }) => c.examples.map((e) => e.run_id));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('the same run again is answered by the store and writes the same output', async () => {
    const before = readFileSync(join(root, 'out', NAME, 'categorize', 'categorization.json'), 'utf8');
    fake.reset();
    const res = await categorize({ analysis: NAME, outDir: 'out' }, ctx());
    expect(res.success).toBe(true);
    expect(fake.counts.assign + fake.counts.create + fake.counts.update).toBe(0);
    expect(readFileSync(join(root, 'out', NAME, 'categorize', 'categorization.json'), 'utf8')).toBe(before);
  });

  it('--stability passes draw another sample and compare the partitions', async () => {
    const res = await categorize({ analysis: NAME, outDir: 'out', stability: 2 } as never, ctx());
    expect(res.success, errors.join(' | ')).toBe(true);
    const st = categorization().metadata.stability;
    expect(st).toMatchObject({ runs: 3, seeds: ['stability-1', 'stability-2'] });
    expect(st.adjusted_rand_index.pairs).toHaveLength(3);
    // The keyword analyst does not depend on order or sample: the partitions agree.
    expect(st.adjusted_rand_index.mean).toBe(1);
  });

  it('batch: true sends the parallel assignment through the provider batch API, with the same categories at batch price', async () => {
    const before = categorization();
    writeFileSync(join(root, 'pipeline.yaml'), YAML.stringify(pipeline({ strategy: 'induce_assign', induce_sample_size: 12, assign_batch_size: 8, batch: true, batch_poll_seconds: 0.02 })));
    // Nothing stored or carried: every answer is bought again.
    rmSync(join(root, '.cache'), { recursive: true, force: true });
    rmSync(join(root, 'out', NAME, 'categorize'), { recursive: true, force: true });
    fake.reset();
    server.reset();
    server.handle(fake.handler);
    try {
      const res = await categorize({ analysis: NAME, outDir: 'out' }, ctx());
      expect(res.success, errors.join(' | ')).toBe(true);
      const out = categorization();
      expect(out.categorization.categories).toEqual(before.categorization.categories);
      expect(out.metadata.built_with).toMatchObject({ batch: true });
      // Every assignment answer came from a batch line; the induction's create/update calls are normal calls.
      expect(server.batches.counters.created).toBeGreaterThanOrEqual(1);
      expect(server.batches.counters.lines).toBe(fake.counts.assign);
      const normal = server.requests.filter((r) => r.protocol === 'chat').length;
      expect(normal).toBe(fake.counts.create + fake.counts.update);
    } finally {
      writeFileSync(join(root, 'pipeline.yaml'), YAML.stringify(pipeline({ strategy: 'induce_assign', induce_sample_size: 12, assign_batch_size: 8 })));
    }
  });

  it('a pending assignment batch fails the stage with the batch id, leaves the output, and the next run polls the same batch', async () => {
    const before = readFileSync(join(root, 'out', NAME, 'categorize', 'categorization.json'), 'utf8');
    // New assignment requests (another batch size), a batch that will not end within the wait.
    writeFileSync(join(root, 'pipeline.yaml'), YAML.stringify(pipeline({ strategy: 'induce_assign', induce_sample_size: 12, assign_batch_size: 6, batch: true, batch_poll_seconds: 0.02, batch_wait_minutes: 0 })));
    server.reset();
    server.handle(fake.handler);
    server.batches.configure({ completeAfterPolls: 1000 });
    errors.length = 0;
    try {
      expect((await categorize({ analysis: NAME, outDir: 'out' }, ctx())).success).toBe(false);
      expect(errors.join('\n')).toMatch(/pending: \d+ requests? in batch \S+, check again after/);
      expect(readFileSync(join(root, 'out', NAME, 'categorize', 'categorization.json'), 'utf8')).toBe(before);
      server.batches.configure({ completeAfterPolls: 0 });
      expect((await categorize({ analysis: NAME, outDir: 'out' }, ctx())).success, errors.join(' | ')).toBe(true);
      expect(server.batches.counters.created).toBe(1);
    } finally {
      writeFileSync(join(root, 'pipeline.yaml'), YAML.stringify(pipeline({ strategy: 'induce_assign', induce_sample_size: 12, assign_batch_size: 8 })));
    }
  });

  it('the plan counts the strategy\'s calls: the stored induction, and the parallel assignment as lower bound', async () => {
    writeFileSync(join(root, 'pipeline.yaml'), YAML.stringify(pipeline({ strategy: 'induce_assign', induce_sample_size: 12, assign_batch_size: 5 })));
    const logs = vi.mocked(console.log);
    try {
      logs.mockClear();
      server.reset();
      server.handle(fake.handler);
      expect((await plan({ analysis: NAME, outDir: 'out', json: true } as never, ctx())).success).toBe(true);
      expect(server.requests).toHaveLength(0);
      const planned = JSON.parse(logs.mock.calls.flat().join('\n')).stages.find((x: { stage: string }) => x.stage === 'categorize');
      const runs = JSON.parse(readFileSync(join(root, 'out', NAME, 'task-list', 'runs.json'), 'utf8')).runs.length as number;
      const induce = planAssignCalls(runs, { initialBatchSize: 4, iterativeBatchSize: 3, induceSampleSize: 12, assignBatchSize: 5, start: false });
      // The induction's answers are stored (same sample, same prompts); every assignment request is new.
      expect(planned).toMatchObject({ reused: induce.sequentialCalls, toPay: induce.parallelCalls, exact: false });
      fake.reset();
      expect((await categorize({ analysis: NAME, outDir: 'out' }, ctx())).success, errors.join(' | ')).toBe(true);
      expect(fake.counts.assign).toBeGreaterThanOrEqual(planned.toPay);
      expect(fake.counts.create).toBe(0);
    } finally {
      writeFileSync(join(root, 'pipeline.yaml'), YAML.stringify(pipeline({ strategy: 'induce_assign', induce_sample_size: 12, assign_batch_size: 8 })));
    }
  });

  it('the assignment prompt is a named file of categorize only under induce_assign or with the held-out check of a model', () => {
    const files = readdirSync(join(root, 'prompts'));
    expect(files).toContain('categorize-assign.md');
    const of = (settings: Record<string, unknown>) => resolveAnalysis(parsePipeline(YAML.stringify(pipeline(settings)), 'pipeline.yaml'), NAME);
    expect(namedFiles(of({ strategy: 'induce_assign' }), 'categorize')).toContain('prompts/categorize-assign.md');
    expect(stagePromptFiles(of({}), 'categorize')).not.toContain('prompts/categorize-assign.md');
    expect(stagePromptFiles(of({ heldout: { enabled: true } }), 'categorize')).toContain('prompts/categorize-assign.md');
    expect(namedFiles(of({ strategy: 'induce_assign' }), 'summarize')).not.toContain('prompts/categorize-assign.md');
  });
});
