// The first hour with an LLM, through the real nx: switching the sample from
// the offline analyzer to a provider whose key is not set is a configuration
// error before any request, not 117 provider failures.
import { cpSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProviderServer } from '../helpers/fake-provider-server.ts';
import type { FakeProviderServer } from '../helpers/fake-provider-server.ts';
import { fakeOpenAiPipeline } from '../helpers/trees.ts';
import { analyst } from '../helpers/analyst-fake.ts';
import { executedTargets, tempWorkspace } from './workspace.ts';
import type { TempWorkspace } from './workspace.ts';

const LOCK = 'analyses/analysis/taxonomy.lock.json';

describe('switching to an LLM provider', () => {
  let ws: TempWorkspace;
  let server: FakeProviderServer;
  let offlinePipeline: string;

  beforeAll(async () => {
    server = await startFakeProviderServer({ maxLifetimeMs: 240_000 });
    ws = tempWorkspace({ prefix: 'meta-analysis-first-hour-' });
    offlinePipeline = ws.read('pipeline.yaml');
    const first = await ws.nxAsync(['run', 'analysis:report']);
    expect(first.code, first.out).toBe(0);
  });
  afterAll(async () => {
    await server?.close();
    ws?.dispose();
  });

  it('without its key: exit non-zero, no request, one message naming the variable and the stages, the previous report intact', async () => {
    const report = ws.read('out/analysis/report/report.md');
    const html = ws.read('out/analysis/report/report.html');
    ws.write('pipeline.yaml', fakeOpenAiPipeline(server.url));
    server.reset();
    const res = await ws.nxAsync(['run', 'analysis:report']);
    expect(res.code, res.out).not.toBe(0);
    expect(server.requests).toHaveLength(0);
    const lines = res.out.split('\n').filter((l) => l.includes('OPENAI_API_KEY'));
    expect(lines, res.out).toHaveLength(1);
    expect(lines[0]).toMatch(/^summarize failed: stopped before any request, nothing written: OPENAI_API_KEY is not set \(provider openai\).*\(needed by summarize, categorize, cluster\)$/);
    expect(res.out).not.toContain('failed at the provider');
    expect(executedTargets(res.out)).toContain('summarize');
    expect(ws.read('out/analysis/report/report.md')).toBe(report);
    expect(ws.read('out/analysis/report/report.html')).toBe(html);
  });

  it('an offline lock meets the LLM: the locked taxonomy is kept, every run is assigned to it, the report lists the runs that moved', async () => {
    ws.write('pipeline.yaml', offlinePipeline);
    const locked = await ws.nxAsync(['run', 'analysis:lock-taxonomy']);
    expect(locked.code, locked.out).toBe(0);
    const lock = JSON.parse(ws.read(LOCK)) as { built_with: Record<string, unknown>; categories: { category_id: string; category_name: string; runs: { run_id: string }[] }[] };
    // The lock says truthfully what built it: the offline analyzer, no model.
    expect(lock.built_with).toMatchObject({ provider: 'offline', model: null });
    expect(lock.built_with['analyzer']).toMatch(/^offline analyzer/);

    // The analyst puts each run where the lock has it, but three runs of the largest category go to the second largest.
    const offline = JSON.parse(ws.read('out/analysis/categorize/categorization.json')) as { categorization: { categories: { category_name: string; examples: { id: string; run_id: string }[] }[] } };
    const bySize = [...offline.categorization.categories].sort((a, b) => b.examples.length - a.examples.length);
    const [big, second] = [bySize[0]!, bySize[1]!];
    expect(big.examples.length).toBeGreaterThan(3);
    const moving = new Set(big.examples.slice(0, 3).map((e) => e.id));
    const nameOf = new Map(offline.categorization.categories.flatMap((c) => c.examples.map((e) => [e.id, c.category_name] as const)));
    const a = analyst({ label: (r) => (moving.has(r.id) ? second.category_name : (nameOf.get(r.id) ?? `unknown prompt id ${r.id}`)) });
    server.reset();
    server.handle(a.handler);
    ws.write('pipeline.yaml', fakeOpenAiPipeline(server.url));
    const res = await ws.nxAsync(['run', 'analysis:report'], { OPENAI_API_KEY: 'sk-e2e-first-hour' });
    expect(res.code, res.out).toBe(0);
    const runs = lock.categories.reduce((n, c) => n + c.runs.length, 0);
    const notice = res.out.split('\n').filter((l) => l.includes('was built by'));
    expect(notice, res.out).toEqual([
      `categorize: ${LOCK} was built by the offline analyzer; openai:gpt-5-mini keeps its ${lock.categories.length} categories and assigns the ${runs} runs not kept to them (delete ${LOCK} to build a new taxonomy from scratch)`,
    ]);
    expect(a.counts.create).toBe(0);
    const cat = JSON.parse(ws.read('out/analysis/categorize/categorization.json'));
    expect(cat.metadata.mode).toBe('locked');
    expect(cat.metadata.mode_reason).toBe(`the ${lock.categories.length} categories of ${LOCK}, built by the offline analyzer, kept; runs: 0 kept, ${runs} with a changed summary`);
    expect(cat.metadata.taxonomy_lock.runs_changed).toHaveLength(runs);
    // Every locked category is there, with its id and name; no new one.
    expect(cat.categorization.categories.map((c: { category_id: string; category_name: string }) => [c.category_id, c.category_name]).sort())
      .toEqual(lock.categories.map((c) => [c.category_id, c.category_name]).sort());
    const md = ws.read('out/analysis/report/report.md');
    expect(md).toContain('### Runs in another category (3)');
    expect(md).toContain(`: ${big.category_name} \u2192 ${second.category_name}`);
    expect(md).not.toContain('Removed categories');
    expect(md).not.toContain('New categories');
  });
});

describe('real data with a run copied by hand', () => {
  let ws: TempWorkspace;
  afterAll(() => ws?.dispose());

  it('a run folder whose perturbed query file was not renamed: a selection problem with its file, in the report, never a summarize failure', async () => {
    ws = tempWorkspace({ prefix: 'meta-analysis-copied-run-' });
    const pm = join(ws.root, 'examples/perturbed_queries/os');
    const task = readdirSync(pm).sort()[0]!;
    const models = join(pm, task, 'o4-mini-2025-04-16');
    const pq = readdirSync(models).sort()[0]!;
    // Copied as perturbed_query_copy1, the query file still named after the original.
    cpSync(join(models, pq), join(models, 'perturbed_query_copy1'), { recursive: true });
    const inner = readdirSync(join(models, 'perturbed_query_copy1')).find((f) => f.endsWith('.json'))!;
    expect(inner).toBe(`${pq}.json`);
    const res = await ws.nxAsync(['run', 'analysis:report']);
    expect(res.code, res.out).toBe(0);
    const file = `os/${task}/o4-mini-2025-04-16/perturbed_query_copy1/perturbed_query_copy1.json`;
    expect(res.out).toContain(`task-list: ${file}: not found (summarize needs this run's perturbed query, named after its folder); run left out of the analysis`);
    expect(res.out).toMatch(/summarize: \d+\/\d+ summarized \(\d+ reused from the response store, \d+ computed, 0 failed\)/);
    expect(ws.read('out/analysis/report/report.md')).toContain('perturbed_query_copy1.json');
  });
});

describe("the reference script's one-off query", () => {
  let ws: TempWorkspace;
  afterAll(() => ws?.dispose());

  it('works on a fresh clone, writes only its file, leaves git status clean and out/ absent; an empty query writes the empty list', async () => {
    const { spawnSync } = await import('node:child_process');
    const { existsSync, mkdtempSync, readFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    ws = tempWorkspace({ prefix: 'meta-analysis-one-off-' });
    const git = (...args: string[]) => spawnSync('git', ['-c', 'user.email=e2e@example.invalid', '-c', 'user.name=e2e', ...args], { cwd: ws.root, encoding: 'utf8' });
    git('init', '-q');
    git('add', '-A');
    git('commit', '-qm', 'fresh clone');
    const away = mkdtempSync(join(tmpdir(), 'one-off-'));
    try {
      const file = join(away, 'my_list.json');
      const res = await ws.nxAsync(['run', 'analysis:task-list', '--agent', 'claude-haiku-4-5-20251001', '--domain', 'os', '--output', file, '--skip-nx-cache']);
      expect(res.code, res.out).toBe(0);
      expect(res.out).not.toMatch(/failed|flaky/i);
      const list = JSON.parse(readFileSync(file, 'utf8'));
      expect(list.metadata.agent).toBe('claude-haiku-4-5-20251001');
      expect(list.metadata.total_successful_runs).toBeGreaterThan(0);
      expect(existsSync(join(ws.root, 'out'))).toBe(false);
      expect(git('status', '--porcelain').stdout).toBe('');
      // A query that selects nothing: the reference's empty list, and a warning.
      const empty = join(away, 'empty.json');
      const none = await ws.nxAsync(['run', 'analysis:task-list', '--agent', 'computer-use-preview', '--domain', 'os', '--output', empty, '--skip-nx-cache']);
      expect(none.code, none.out).toBe(0);
      expect(none.out).toContain('the query selects no successful run');
      const emptyList = JSON.parse(readFileSync(empty, 'utf8'));
      expect(emptyList.metadata.total_successful_runs).toBe(0);
      expect(existsSync(join(ws.root, 'out'))).toBe(false);
    } finally {
      rmSync(away, { recursive: true, force: true });
    }
  });
});
