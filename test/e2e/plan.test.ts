// The plan through the real nx, against the fake OpenAI endpoint with a
// scripted analyst: before a run it says which targets will run and why and
// how many calls each stage will buy; the run then does exactly that. It
// calls no provider and Nx never serves it from its cache.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyst } from '../helpers/analyst-fake.ts';
import { fakeOpenAiPipeline, holdOut, uniqueSampleRuns } from '../helpers/trees.ts';
import { startFakeProviderServer } from '../helpers/fake-provider-server.ts';
import type { FakeProviderServer } from '../helpers/fake-provider-server.ts';
import { cachedTargets, executedTargets, tempWorkspace } from './workspace.ts';
import type { TempWorkspace } from './workspace.ts';

const env = { OPENAI_API_KEY: 'sk-e2e-plan' };

interface PlanJson {
  targets: { target: string; verdict: string; why: string[] }[];
  stages: { stage: string; reused: number; toPay: number; exact: boolean; output_tokens_source: string; note: string }[];
  total: { calls: number };
}

describe('plan: which targets run, and the calls they buy', () => {
  let server: FakeProviderServer;
  let ws: TempWorkspace;
  let restore: () => void;

  async function planJson(): Promise<PlanJson> {
    const res = await ws.nxAsync(['run', 'analysis:plan', '--json'], env);
    expect(res.code, res.out).toBe(0);
    expect(cachedTargets(res.out)).toEqual([]);
    return JSON.parse(res.out.slice(res.out.indexOf('{\n'), res.out.lastIndexOf('\n}') + 2)) as PlanJson;
  }
  const verdicts = (p: PlanJson) => Object.fromEntries(p.targets.map((t) => [t.target, t.verdict]));
  const toPay = (p: PlanJson) => Object.fromEntries(p.stages.map((s) => [s.stage, s.toPay]));

  beforeAll(async () => {
    server = await startFakeProviderServer({ maxLifetimeMs: 280_000 });
    ws = tempWorkspace({ prefix: 'meta-analysis-plan-' });
    ws.write('pipeline.yaml', fakeOpenAiPipeline(server.url));
    restore = holdOut(ws.root, uniqueSampleRuns(ws.root).slice(0, 10));
    const a = analyst({ usage: 'tokenized' });
    server.handle(a.handler);
    // The documented workflow: build, lock the taxonomy, report.
    const locked = await ws.nxAsync(['run', 'analysis:lock-taxonomy'], env);
    expect(locked.code, locked.out).toBe(0);
    const report = await ws.nxAsync(['run', 'analysis:report'], env);
    expect(report.code, report.out).toBe(0);
  });
  afterAll(async () => {
    await server.close();
    ws?.dispose();
  });

  it('after a full run: every target cached, nothing to pay', async () => {
    server.reset();
    const p = await planJson();
    expect(server.requests).toHaveLength(0);
    expect(verdicts(p)).toEqual({ 'task-list': 'cached', summarize: 'cached', categorize: 'cached', cluster: 'cached', report: 'cached' });
    expect(p.total.calls).toBe(0);
  });

  it('10 runs added: the plan names every target and its reason, predicts 10 summaries, 2 batches, 1 held-out assign call and 1 cluster call, and the run makes exactly those', async () => {
    restore();
    server.reset();
    const p = await planJson();
    expect(server.requests).toHaveLength(0);
    expect(verdicts(p)).toEqual({ 'task-list': 'runs', summarize: 'runs', categorize: 'runs', cluster: 'runs', report: 'runs' });
    expect(p.targets[0]!.why.join(' ')).toContain('the selection changed: 10 runs added (117 selected now)');
    expect(p.targets[1]!.why).toContain('the output of task-list changes');
    // Categorize: 2 update batches, and the held-out check's assign call (12 of 117 runs, 20 per call).
    expect(toPay(p)).toEqual({ summarize: 10, categorize: 3, cluster: 1 });
    expect(p.stages[1]!.note).toContain('held-out check: about 12 runs in 1 assign call');

    const a = analyst({ usage: 'tokenized' });
    server.handle(a.handler);
    const run = await ws.nxAsync(['run', 'analysis:report'], env);
    expect(run.code, run.out).toBe(0);
    expect(executedTargets(run.out).sort()).toEqual(['categorize', 'cluster', 'report', 'summarize', 'task-list']);
    expect(a.counts).toMatchObject({ summarize: 10, create: 0, update: 2, assign: 1, cluster: 1 });
    expect(JSON.parse(readFileSync(join(ws.root, 'out/analysis/categorize/heldout.json'), 'utf8'))).toMatchObject({ enabled: true, sampled_runs: 12, requests: 1 });
    // Each LLM stage's run log holds the plan made before it next to what it paid.
    const log = (stage: string) => JSON.parse(readFileSync(join(ws.root, 'out/analysis/logs', `${stage}.json`), 'utf8'));
    expect(log('summarize').plan_vs_actual).toMatchObject({ planned: { calls: 10, exact: true }, actual: { calls: 10 } });
    expect(log('categorize').plan_vs_actual).toMatchObject({ planned: { calls: 3 }, actual: { calls: 3 } });
    expect(log('cluster').plan_vs_actual).toMatchObject({ planned: { calls: 1 }, actual: { calls: 1 } });
    expect(run.out).toMatch(/summarize: the plan of \S+ said 10 calls, \$[\d.]+ to \$[\d.]+; this run made 10, \$[\d.]+\./);
    // The dollars: within the plan's stated range (output priced at half and twice the median of the
    // stage's stored answers) wherever the plan had stored answers to learn from; categorize's locked
    // run made no taxonomy call, but its held-out check's answer is carried in its output.
    const learnt = p.stages.filter((x) => x.output_tokens_source.startsWith('median')).map((x) => x.stage);
    expect(learnt).toEqual(['summarize', 'categorize', 'cluster']);
    expect(p.stages[1]!.output_tokens_source).toBe('median of 1 stored answer');
    for (const stage of learnt) {
      const { planned, actual } = log(stage).plan_vs_actual;
      expect(actual.cost_usd, stage).toBeGreaterThanOrEqual(planned.cost_usd_low);
      expect(actual.cost_usd, stage).toBeLessThanOrEqual(planned.cost_usd_high);
    }

    // Run again around the change: the plan is computed anew, never replayed from the Nx cache.
    server.reset();
    const again = await planJson();
    expect(server.requests).toHaveLength(0);
    expect(new Set(Object.values(verdicts(again)))).toEqual(new Set(['cached']));

    // Categorize again, not from Nx's cache: the held-out check's answer is a store hit.
    a.reset();
    server.reset();
    server.handle(a.handler);
    const rerun = await ws.nxAsync(['run', 'analysis:categorize', '--skip-nx-cache'], env);
    expect(rerun.code, rerun.out).toBe(0);
    expect(server.requests).toHaveLength(0);
    expect(a.counts).toMatchObject({ create: 0, update: 0, assign: 0 });
  });

  it('a cluster prompt edit: only cluster runs, and report only if the clusters change', async () => {
    const prompt = 'prompts/cluster.md';
    ws.write(prompt, `${ws.read(prompt)}\nKeep each theme name under eight words.\n`);
    const p = await planJson();
    expect(verdicts(p)).toEqual({ 'task-list': 'cached', summarize: 'cached', categorize: 'cached', cluster: 'runs', report: 'runs if upstream output changes' });
    expect(p.targets[3]!.why).toEqual([`${prompt} changed`]);
    expect(toPay(p)).toEqual({ summarize: 0, categorize: 0, cluster: 1 });
    const a = analyst({ usage: 'tokenized' });
    server.reset();
    server.handle(a.handler);
    const run = await ws.nxAsync(['run', 'analysis:report'], env);
    expect(run.code, run.out).toBe(0);
    expect(cachedTargets(run.out).sort()).toEqual(['categorize', 'summarize', 'task-list']);
    expect(executedTargets(run.out)).toContain('cluster');
    expect(a.counts).toMatchObject({ summarize: 0, create: 0, update: 0, cluster: 1 });
  });
});
