// The whole pipeline with an LLM provider, through the real nx and the real
// openai SDK, against a loopback server that plays a (sometimes sloppy) analyst.
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyst } from '../helpers/analyst-fake.ts';
import { fakeOpenAiPipeline, uniqueSampleRuns } from '../helpers/trees.ts';
import { startFakeProviderServer } from '../helpers/fake-provider-server.ts';
import type { FakeProviderServer } from '../helpers/fake-provider-server.ts';
import { cachedTargets, executedTargets, tempWorkspace } from './workspace.ts';
import type { TempWorkspace } from './workspace.ts';

const KEY = 'sk-e2e-llm-pipeline-secret';

const pipelineYaml = fakeOpenAiPipeline;

const readJson = (ws: TempWorkspace, rel: string) => JSON.parse(ws.read(rel));

describe('pipeline with an LLM provider (fake OpenAI endpoint)', () => {
  let server: FakeProviderServer;
  let ws: TempWorkspace;
  let held: { from: string; to: string }[] = [];
  const env = { OPENAI_API_KEY: KEY };

  beforeAll(async () => {
    server = await startFakeProviderServer({ maxLifetimeMs: 280_000 });
    ws = tempWorkspace('meta-analysis-llm-');
    ws.write('pipeline.yaml', pipelineYaml(server.url));
  });
  afterAll(async () => {
    await server.close();
    ws?.dispose();
  });

  it('accounts for all 117 runs even when 20% of categorization batches are answered badly', async () => {
    const a = analyst({ badEvery: 5 });
    server.handle(a.handler);
    const res = await ws.nxAsync(['run', 'analysis:report'], { ...env, META_ANALYSIS_STORE_DIR: '.cache/store-sloppy' });
    expect(res.code, res.out).toBe(0);
    expect(a.sabotaged).toBeGreaterThanOrEqual(4);
    const data = readJson(ws, 'out/analysis/report/report-data.json');
    expect(data.coverage).toMatchObject({ in_task_list: 117, summarized: 117, categorized: 117, clustered: 117 });
    expect(ws.read('out/analysis/report/report.md')).toMatch(/\| Categorized \| 117 \| 100\.0% \|\n\| In a cluster \| 117 \| 100\.0% \|/);
    const cat = readJson(ws, 'out/analysis/categorize/categorization.json');
    expect(cat.metadata.mode).toBe('from-scratch');
    expect(cat.unassigned).toEqual([]);
    // Forgotten runs were repaired by re-asking (unknown names are caught earlier, by the schema's enum).
    expect(cat.metadata.batches.reduce((n: number, b: { repairs: number }) => n + b.repairs, 0)).toBeGreaterThanOrEqual(1);
    // Every trigger phrase of this analyst quotes the instruction: all verified, and the report says so.
    expect(cat.statistics.verified_trigger_phrases).toBe(117);
    expect(ws.read('out/analysis/report/report.md')).toContain("perturbed instruction: 117 of 117 (100.0%)");
    // The key went out as a header and was written nowhere.
    for (const f of ['out/analysis/categorize/categorization.json', 'out/analysis/cluster/clusters.json', 'out/analysis/report/report.md', 'out/analysis/report/report.html']) {
      expect(ws.read(f)).not.toContain(KEY);
    }
    expect(res.out).not.toContain(KEY);
  });

  it('categorizes 107 runs from scratch (a fresh store, 10 runs held out)', async () => {
    rmSync(join(ws.root, 'out'), { recursive: true, force: true });
    held = uniqueSampleRuns(ws.root).slice(0, 10).map((rel) => ({ from: join(ws.root, rel), to: join(ws.root, 'held', rel) }));
    for (const h of held) {
      mkdirSync(dirname(h.to), { recursive: true });
      renameSync(h.from, h.to);
    }
    const a = analyst();
    server.reset();
    server.handle(a.handler);
    const res = await ws.nxAsync(['run', 'analysis:report', '--skip-nx-cache'], env);
    expect(res.code, res.out).toBe(0);
    expect(a.counts.summarize).toBe(107);
    expect(readJson(ws, 'out/analysis/report/report-data.json').coverage).toMatchObject({ in_task_list: 107, categorized: 107, clustered: 107 });
  });

  it('adding 10 runs without a taxonomy lock rebuilds the taxonomy from scratch (growth against a lock: taxonomy-lock.test.ts)', async () => {
    for (const h of held) renameSync(h.to, h.from);
    const a = analyst();
    server.reset();
    server.handle(a.handler);
    const res = await ws.nxAsync(['run', 'analysis:report'], env);
    expect(res.code, res.out).toBe(0);
    // The 117-run outputs of the first test are restored from the Nx cache: same inputs, same key.
    expect(cachedTargets(res.out).sort()).toEqual(['categorize', 'cluster', 'report', 'summarize', 'task-list']);
    expect(a.counts).toMatchObject({ summarize: 0, create: 0, update: 0, cluster: 0 });
    const cat = readJson(ws, 'out/analysis/categorize/categorization.json');
    expect(cat.metadata.mode).toBe('from-scratch');
    expect(readJson(ws, 'out/analysis/report/report-data.json').coverage).toMatchObject({ in_task_list: 117, categorized: 117, clustered: 117 });
  });

  it('plans the whole chain (the plan target) from the store, and measures taxonomy stability with --stability', async () => {
    const a = analyst();
    server.reset();
    server.handle(a.handler);
    const plan = await ws.nxAsync(['run', 'analysis:plan'], env);
    expect(plan.code, plan.out).toBe(0);
    expect(plan.out).toMatch(/summarize\s+openai:gpt-5-mini \(provider from defaults, model from defaults\): 117 stored, 0 to pay/);
    expect(plan.out).toMatch(/categorize\s+openai:gpt-5-mini [^:]*: \d+ stored, 0 to pay; mode from-scratch/);
    expect(plan.out).toMatch(/cluster\s+openai:gpt-5-mini [^:]*: 1 stored, 0 to pay/);
    expect(plan.out).toMatch(/total\s+0 calls to pay/);
    expect(executedTargets(plan.out)).toEqual(['plan']);
    expect(server.requests).toHaveLength(0);

    const stab = await ws.nxAsync(['run', 'analysis:categorize', '--stability', '2'], env);
    expect(stab.code, stab.out).toBe(0);
    const cat = readJson(ws, 'out/analysis/categorize/categorization.json');
    // The test analyst labels each run by its own words, whatever the order: full agreement.
    expect(cat.metadata.stability).toMatchObject({ runs: 3, adjusted_rand_index: { mean: 1, min: 1 } });
    expect(a.counts.create).toBe(2);
  });

  it('changing the cluster prompt costs one clustering call and no categorization call', async () => {
    const a = analyst();
    server.reset();
    server.handle(a.handler);
    ws.write('prompts/cluster.md', `${ws.read('prompts/cluster.md')}\nKeep cluster names short.\n`);
    const res = await ws.nxAsync(['run', 'analysis:report'], env);
    expect(res.code, res.out).toBe(0);
    expect(a.counts).toMatchObject({ summarize: 0, create: 0, update: 0, cluster: 1 });
  });

  it('a categorization killed midway resumes without paying again for answered batches', async () => {
    // New categorization settings: a from-scratch pass of 1 + 22 batches.
    ws.write('pipeline.yaml', pipelineYaml(server.url, 'stages:\n  categorize: { temperature: 0.5 }'));
    const a = analyst();
    const answered = new Set<string>();
    let batches = 0;
    let reachedSeventh: () => void = () => {};
    const seventh = new Promise<void>((r) => (reachedSeventh = r));
    server.reset();
    server.handle((req, i) => {
      const isBatch = /The current categories:|Group the runs into/.test(String(req.body?.messages?.[0]?.content ?? ''));
      if (isBatch && (req.body?.messages ?? []).length === 1 && ++batches === 7) {
        reachedSeventh();
        return { text: '{}', delayMs: 60_000 }; // never answered: the process is killed while waiting
      }
      if (isBatch) answered.add(req.rawBody);
      return a.handler(req, i);
    });
    const run = ws.nxSpawn(['run', 'analysis:categorize'], env);
    await seventh;
    run.kill('SIGKILL');
    const crashed = await run.done;
    expect(crashed.code).not.toBe(0);
    expect(answered.size).toBeGreaterThanOrEqual(6);

    const resend: string[] = [];
    server.reset();
    server.handle((req, i) => {
      if (answered.has(req.rawBody)) resend.push(req.rawBody);
      return a.handler(req, i);
    });
    const resumed = await ws.nxAsync(['run', 'analysis:report'], env);
    expect(resumed.code, resumed.out).toBe(0);
    expect(resend).toHaveLength(0);
    expect(readJson(ws, 'out/analysis/report/report-data.json').coverage).toMatchObject({ categorized: 117, clustered: 117 });
    expect(readFileSync(join(ws.root, 'out/analysis/categorize/categorization.json'), 'utf8')).toContain('"mode": "from-scratch"');
    // The killed run's half-built folder is gone.
    expect(readdirSync(join(ws.root, 'out/analysis')).filter((f) => f.includes('.building-'))).toEqual([]);
  });
});
