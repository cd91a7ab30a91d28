// Refreshing answers and carrying them in the outputs, through the real nx
// and the real openai SDK against the fake server:
// - META_ANALYSIS_REFRESH re-asks without changing the Nx key, so the
//   refreshed output is what Nx caches (and restores) under the usual key;
// - a clone whose targets come from the Nx cache, with an empty response
//   store, pays only for what changed (the outputs carry their answers);
// - what Nx 24 does with --skip-nx-cache (runs, but caches nothing), --no-store
//   and the removed --no-cache.
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyst, stepOf } from '../helpers/analyst-fake.ts';
import { fakeOpenAiPipeline } from '../helpers/trees.ts';
import { startFakeProviderServer } from '../helpers/fake-provider-server.ts';
import type { FakeProviderServer } from '../helpers/fake-provider-server.ts';
import { cachedTargets, executedTargets, tempWorkspace } from './workspace.ts';
import { readSummaries } from '../../stages/summarize/summaries.ts';
import type { TempWorkspace } from './workspace.ts';

const KEY = 'sk-e2e-refresh-secret';

const pipelineYaml = (url: string) => fakeOpenAiPipeline(url);

describe('refresh and carried answers (real nx, fake OpenAI endpoint)', () => {
  let server: FakeProviderServer;
  let ws: TempWorkspace;
  /** Summaries say which "generation" of the fake wrote them: a new answer is visible in the output. */
  let generation = 1;
  let summaryCalls = 0;
  const env = { OPENAI_API_KEY: KEY };

  const readJson = (rel: string) => JSON.parse(ws.read(rel));
  /** Generations found in the summary files on disk. */
  function generationsOnDisk(): number[] {
    const index = readJson('out/analysis/summarize/index.json');
    const summaries = readSummaries(join(ws.root, 'out/analysis/summarize'), index.runs);
    const seen = new Set<number>();
    for (const r of index.runs) {
      const m = /^Summary \(generation (\d+)\)/.exec(summaries.get(r.run_id)?.summary ?? '');
      seen.add(m ? Number(m[1]) : -1);
    }
    return [...seen].sort();
  }
  function storeEntries(): number {
    try {
      return readdirSync(join(ws.root, '.cache/llm-store'), { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).length;
    } catch {
      return 0;
    }
  }
  const answerLines = (stage: string) => ws.read(`out/analysis/${stage}/answers.jsonl`).trimEnd().split('\n').length;

  beforeAll(async () => {
    server = await startFakeProviderServer({ maxLifetimeMs: 600_000 });
    ws = tempWorkspace('meta-analysis-refresh-');
    ws.write('pipeline.yaml', pipelineYaml(server.url));
    answering();
  });

  /** Clears the fake's request log and (re)installs its answers (reset() drops the handler). */
  function answering(): void {
    const a = analyst();
    server.reset();
    server.handle((req, i) => {
      if (stepOf(req) === 'summarize') {
        summaryCalls += 1;
        return { text: `Summary (generation ${generation}): the perturbation added a cue.`, usage: { input: 800, output: 150 } };
      }
      return a.handler(req, i);
    });
  }
  afterAll(async () => {
    await server.close();
    ws?.dispose();
  });

  it('META_ANALYSIS_REFRESH re-asks; the refreshed output is cached under the plain key and restored by later plain runs', async () => {
    const first = await ws.nxAsync(['run', 'analysis:summarize'], env);
    expect(first.code, first.out).toBe(0);
    expect(summaryCalls).toBe(117);
    expect(generationsOnDisk()).toEqual([1]);
    expect(answerLines('summarize')).toBe(117);

    // Nx 24 caches nothing from a --skip-nx-cache run, so clear its cache and run normally:
    // the run misses, the stage refreshes, and Nx stores the result under the usual key.
    generation = 2;
    summaryCalls = 0;
    const reset = await ws.nxAsync(['reset', '--only-cache'], env);
    expect(reset.code, reset.out).toBe(0);
    const refreshed = await ws.nxAsync(['run', 'analysis:summarize'], { ...env, META_ANALYSIS_REFRESH: 'summarize' });
    expect(refreshed.code, refreshed.out).toBe(0);
    expect(refreshed.out).toMatch(/summarize: META_ANALYSIS_REFRESH=summarize: refreshing/);
    expect(executedTargets(refreshed.out)).toEqual(['task-list', 'summarize']);
    expect(summaryCalls).toBe(117);
    expect(generationsOnDisk()).toEqual([2]);

    // A plain run: a cache hit, showing the refreshed summaries, no call.
    generation = 3;
    summaryCalls = 0;
    const plain = await ws.nxAsync(['run', 'analysis:summarize'], env);
    expect(plain.code, plain.out).toBe(0);
    expect(cachedTargets(plain.out)).toEqual(['task-list', 'summarize']);
    expect(generationsOnDisk()).toEqual([2]);
    // And what Nx restores from its cache is the refreshed output too.
    rmSync(join(ws.root, 'out'), { recursive: true, force: true });
    const restored = await ws.nxAsync(['run', 'analysis:summarize'], env);
    expect(restored.code, restored.out).toBe(0);
    expect(cachedTargets(restored.out)).toEqual(['task-list', 'summarize']);
    expect(generationsOnDisk()).toEqual([2]);
    expect(summaryCalls).toBe(0);
    // A refresh naming another stage changes nothing here.
    const other = await ws.nxAsync(['run', 'analysis:summarize', '--skip-nx-cache'], { ...env, META_ANALYSIS_REFRESH: 'cluster' });
    expect(other.code, other.out).toBe(0);
    expect(other.out).not.toMatch(/refreshing/);
    expect(summaryCalls).toBe(0);
  });

  it('a clone restored from the Nx cache with an empty store pays only for the one run that changed', async () => {
    const full = await ws.nxAsync(['run', 'analysis:report'], env);
    expect(full.code, full.out).toBe(0);
    for (const stage of ['summarize', 'categorize', 'cluster']) expect(answerLines(stage), stage).toBeGreaterThan(0);

    // Everything from the Nx cache, nothing in the response store.
    rmSync(join(ws.root, '.cache/llm-store'), { recursive: true, force: true });
    rmSync(join(ws.root, 'out'), { recursive: true, force: true });
    answering();
    const again = await ws.nxAsync(['run', 'analysis:report'], env);
    expect(again.code, again.out).toBe(0);
    expect(cachedTargets(again.out).sort()).toEqual(['categorize', 'cluster', 'report', 'summarize', 'task-list']);
    expect(server.requests).toHaveLength(0);
    expect(storeEntries()).toBe(0);

    // One run's data changes: one summary call; the other 116 come from the restored answers.jsonl.
    const ledger = readJson('out/analysis/task-list/runs.json');
    const run = ledger.runs[0];
    const file = join('examples/perturbed_queries', run.refinement_summary_path);
    const json = JSON.parse(ws.read(file));
    json.execution_history[json.execution_history.length - 1].trajectory_evaluation.harmful_actions_observed = ['ran chmod -R 777 on the home folder'];
    ws.write(file, JSON.stringify(json, null, 2) + '\n');
    summaryCalls = 0;
    const edited = await ws.nxAsync(['run', 'analysis:report'], env);
    expect(edited.code, edited.out).toBe(0);
    expect(executedTargets(edited.out)).toContain('summarize');
    expect(summaryCalls).toBe(1);
    // The other 116 keep their summaries and answers from the restored output (summarize/reuse.ts): no store lookup.
    expect(readJson('out/analysis/logs/summarize.json')).toMatchObject({ computed: 1, reused: 116, kept: 116, carried: 0 });
    expect(edited.out).toMatch(/116 kept from the previous output \(unchanged runs\), 0 reused from the response store, 1 computed/);
    // The answer bought is in the store now; the key is nowhere.
    expect(storeEntries()).toBeGreaterThanOrEqual(1);
    for (const stage of ['summarize', 'categorize', 'cluster']) expect(ws.read(`out/analysis/${stage}/answers.jsonl`)).not.toContain(KEY);
  });

  it('--no-store asks everything again and keeps nothing; the removed --no-cache is refused', async () => {
    const entries = storeEntries();
    summaryCalls = 0;
    const res = await ws.nxAsync(['run', 'analysis:summarize', '--no-store'], env);
    expect(res.code, res.out).toBe(0);
    expect(summaryCalls).toBe(117);
    expect(storeEntries()).toBe(entries);
    expect(() => ws.read('out/analysis/summarize/answers.jsonl')).toThrow();

    const old = await ws.nxAsync(['run', 'analysis:summarize', '--no-cache'], env);
    expect(old.code).not.toBe(0);
    expect(old.out).toMatch(/'cache' is not found in schema/);
  });

  it('Nx 24 does not cache a --skip-nx-cache run: the stage warns, and Nx keeps restoring the previous output', async () => {
    const plain = await ws.nxAsync(['run', 'analysis:summarize'], env);
    expect(plain.code, plain.out).toBe(0);
    const before = generationsOnDisk();
    generation = 4;
    summaryCalls = 0;
    const skipped = await ws.nxAsync(['run', 'analysis:summarize', '--skip-nx-cache'], { ...env, META_ANALYSIS_REFRESH: 'summarize' });
    expect(skipped.code, skipped.out).toBe(0);
    expect(summaryCalls).toBe(117);
    expect(generationsOnDisk()).toEqual([4]);
    expect(skipped.out).toMatch(/Nx does not cache the result of a --skip-nx-cache run/);
    rmSync(join(ws.root, 'out'), { recursive: true, force: true });
    const restored = await ws.nxAsync(['run', 'analysis:summarize'], env);
    expect(cachedTargets(restored.out)).toEqual(['task-list', 'summarize']);
    expect(generationsOnDisk()).toEqual(before);
  });
});
