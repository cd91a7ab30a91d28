// The taxonomy lock through the real nx and git: grow a taxonomy as a
// reviewed change, and show that outputs depend on the commit, not on the
// history of the workspace (or of whoever filled a shared Nx cache).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyst } from '../helpers/analyst-fake.ts';
import { fakeOpenAiPipeline, readTree, uniqueSampleRuns } from '../helpers/trees.ts';
import { startFakeProviderServer } from '../helpers/fake-provider-server.ts';
import type { FakeProviderServer } from '../helpers/fake-provider-server.ts';
import { cachedTargets, executedTargets, tempWorkspace } from './workspace.ts';
import type { TempWorkspace } from './workspace.ts';

const LOCK = 'analyses/analysis/taxonomy.lock.json';
const KEY = 'sk-e2e-taxonomy-lock';

interface Lock {
  categories: { category_id: string; category_name: string; definition: string; runs: { run_id: string; summary_digest: string }[] }[];
}
const runsOf = (lock: Lock) => new Map(lock.categories.flatMap((c) => c.runs.map((r) => [r.run_id, c.category_id] as const)));

const heldOutRuns = (root: string) => uniqueSampleRuns(root).slice(0, 10);

function hold(ws: TempWorkspace, rels: string[]): () => void {
  for (const rel of rels) {
    mkdirSync(dirname(join(ws.root, 'held', rel)), { recursive: true });
    renameSync(join(ws.root, rel), join(ws.root, 'held', rel));
  }
  return () => {
    for (const rel of rels) renameSync(join(ws.root, 'held', rel), join(ws.root, rel));
    rmSync(join(ws.root, 'held'), { recursive: true, force: true });
  };
}

const git = (ws: TempWorkspace, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=test', '-c', 'user.email=test@example.invalid', '-c', 'commit.gpgsign=false', ...args], { cwd: ws.root, encoding: 'utf8' });

/** Every file under out/<analysis>/ except the run logs (timestamps on purpose, never an Nx output). */
const outputs = (root: string) => readTree(join(root, 'out/analysis'), ['logs']);

describe('taxonomy lock with an LLM analyst (fake OpenAI endpoint)', () => {
  let server: FakeProviderServer;
  let ws: TempWorkspace;
  let restore: () => void;
  const env = { OPENAI_API_KEY: KEY };

  beforeAll(async () => {
    server = await startFakeProviderServer({ maxLifetimeMs: 280_000 });
    ws = tempWorkspace({ prefix: 'meta-analysis-lock-' });
    ws.write('pipeline.yaml', fakeOpenAiPipeline(server.url));
    restore = hold(ws, heldOutRuns(ws.root));
    git(ws, 'init', '-q');
    git(ws, 'add', '-A');
    git(ws, 'commit', '-q', '-m', 'workspace');
  });
  afterAll(async () => {
    await server.close();
    ws?.dispose();
  });

  it('builds from scratch without a lock, and lock-taxonomy writes the lock', async () => {
    const a = analyst();
    server.handle(a.handler);
    const res = await ws.nxAsync(['run', 'analysis:lock-taxonomy'], env);
    expect(res.code, res.out).toBe(0);
    expect(a.counts.summarize).toBe(107);
    const cat = JSON.parse(ws.read('out/analysis/categorize/categorization.json'));
    expect(cat.metadata).toMatchObject({ mode: 'from-scratch', taxonomy_lock: null });
    const lock = JSON.parse(ws.read(LOCK)) as Lock;
    expect(runsOf(lock).size).toBe(107);
    expect(res.out).toMatch(/new lock: \d+ categories, 107 runs/);
    git(ws, 'add', LOCK);
    git(ws, 'commit', '-q', '-m', 'lock the taxonomy');
    // No lock change, no "what changed" beyond the lock: the report compares with it.
    const report = await ws.nxAsync(['run', 'analysis:report'], env);
    expect(report.code, report.out).toBe(0);
    expect(ws.read('out/analysis/report/report.md')).toContain('taxonomy.lock.json');
  });

  it('10 new runs cost 10 summaries and 2 update batches; the lock diff holds exactly them', async () => {
    const before = JSON.parse(ws.read(LOCK)) as Lock;
    restore();
    const a = analyst();
    server.reset();
    server.handle(a.handler);
    const res = await ws.nxAsync(['run', 'analysis:categorize'], env);
    expect(res.code, res.out).toBe(0);
    expect(a.counts).toMatchObject({ summarize: 10, create: 0, update: 2 });
    const cat = JSON.parse(ws.read('out/analysis/categorize/categorization.json'));
    expect(cat.metadata.mode).toBe('locked');
    expect(cat.metadata.taxonomy_lock).toMatchObject({ runs_kept: 107, runs_changed: [], runs_removed: [] });
    expect(cat.metadata.taxonomy_lock.runs_added).toHaveLength(10);
    expect(cat.statistics.categorized_runs).toBe(117);
    expect(res.out).toMatch(/10 runs are not in analyses\/analysis\/taxonomy\.lock\.json yet/);

    const locked = await ws.nxAsync(['run', 'analysis:lock-taxonomy'], env);
    expect(locked.code, locked.out).toBe(0);
    // 10 summaries, 2 update batches and the held-out check's assign call; lock-taxonomy asks nothing.
    expect(a.counts.assign).toBe(1);
    expect(server.requests).toHaveLength(13);
    const after = JSON.parse(ws.read(LOCK)) as Lock;
    const was = runsOf(before);
    const now = runsOf(after);
    const added = [...now.keys()].filter((r) => !was.has(r)).sort();
    expect(added).toEqual([...cat.metadata.taxonomy_lock.runs_added].sort());
    // Every locked run keeps its category; every locked category keeps its id, name and definition.
    for (const [run, category] of was) expect(now.get(run)).toBe(category);
    for (const c of before.categories) expect(after.categories).toContainEqual(expect.objectContaining({ category_id: c.category_id, category_name: c.category_name, definition: c.definition }));
    // The git diff adds the new runs (and any new categories) and removes no run.
    const diff = git(ws, 'diff', '--', LOCK);
    for (const run of added) expect(diff).toContain(`+          "run_id": ${JSON.stringify(run)}`);
    expect(diff.split('\n').filter((l) => /^-\s+"(run_id|category_id|category_name)"/.test(l))).toEqual([]);
    const newCats = after.categories.filter((c) => !before.categories.some((b) => b.category_id === c.category_id));
    for (const c of newCats) expect(diff).toContain(`+      "category_name": ${JSON.stringify(c.category_name)}`);
  });

  it('a damaged lock is a clear error that names the file and the key, and leaves the outputs intact', async () => {
    const good = ws.read(LOCK);
    const before = ws.read('out/analysis/categorize/categorization.json');
    const bad = JSON.parse(good);
    bad.categories[0].runs[0].summary_digest = 'not-a-digest';
    ws.write(LOCK, JSON.stringify(bad, null, 2));
    try {
      const res = await ws.nxAsync(['run', 'analysis:categorize'], env);
      expect(res.code).not.toBe(0);
      expect(res.out).toContain(`${LOCK}: invalid configuration`);
      expect(res.out).toContain('categories[0].runs[0].summary_digest');
      expect(ws.read('out/analysis/categorize/categorization.json')).toBe(before);
    } finally {
      ws.write(LOCK, good);
    }
  });
});

describe('outputs depend on the commit, not on history (offline, two workspaces sharing one Nx cache)', () => {
  const shared = mkdtempSync(join(tmpdir(), 'meta-analysis-shared-nx-'));
  let a: TempWorkspace;
  let b: TempWorkspace;
  let c: TempWorkspace;
  afterAll(() => {
    for (const w of [a, b, c]) w?.dispose();
    rmSync(shared, { recursive: true, force: true });
  });

  it('a workspace with a history, one without, and a from-scratch build give identical bytes', () => {
    // A: 107 runs, lock them, then all 117 runs against that lock (its out/ and store hold history).
    a = tempWorkspace({ prefix: 'meta-analysis-hist-a-', nxDir: shared });
    const back = hold(a, heldOutRuns(a.root));
    let res = a.nx(['run', 'analysis:lock-taxonomy']);
    expect(res.code, res.out).toBe(0);
    back();
    res = a.nx(['run', 'analysis:report']);
    expect(res.code, res.out).toBe(0);
    expect(JSON.parse(a.read('out/analysis/categorize/categorization.json')).metadata.mode).toBe('offline-locked');
    const lockText = a.read(LOCK);

    // B: the same commit (117 runs and the same lock), no history, the same Nx cache: served from the cache.
    b = tempWorkspace({ prefix: 'meta-analysis-hist-b-', nxDir: shared });
    mkdirSync(join(b.root, 'analyses/analysis'), { recursive: true });
    b.write(LOCK, lockText);
    res = b.nx(['run', 'analysis:report']);
    expect(res.code, res.out).toBe(0);
    expect(cachedTargets(res.out).sort()).toEqual(['categorize', 'cluster', 'report', 'summarize', 'task-list']);

    // C: the same commit built from scratch with its own empty caches.
    c = tempWorkspace({ prefix: 'meta-analysis-hist-c-' });
    mkdirSync(join(c.root, 'analyses/analysis'), { recursive: true });
    c.write(LOCK, lockText);
    res = c.nx(['run', 'analysis:report']);
    expect(res.code, res.out).toBe(0);
    expect(executedTargets(res.out)).toEqual(['task-list', 'summarize', 'categorize', 'cluster', 'report']);

    const fromA = outputs(a.root);
    expect(Object.keys(fromA).length).toBeGreaterThan(100);
    expect(outputs(b.root)).toEqual(fromA);
    expect(outputs(c.root)).toEqual(fromA);
  });
});
