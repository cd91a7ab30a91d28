// The whole pipeline through the real nx, in a temporary copy of the
// workspace: first run, a no-change re-run, a prompt edit, a data edit.
import { mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { launchChromium, skipBrowser } from './browser.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedTargets, executedTargets, tempWorkspace } from './workspace.ts';
import type { TempWorkspace } from './workspace.ts';

const CACHEABLE = ['task-list', 'summarize', 'categorize', 'cluster', 'report'];

describe('nx run analysis:report on the bundled sample', () => {
  let ws: TempWorkspace;
  let first: { code: number; out: string };

  beforeAll(() => {
    ws = tempWorkspace();
    first = ws.nx(['run', 'analysis:report']);
  });
  afterAll(() => ws?.dispose());

  it('runs every stage and covers all 117 runs with at least 3 clusters', () => {
    expect(first.code, first.out).toBe(0);
    expect(executedTargets(first.out)).toEqual(['task-list', 'summarize', 'categorize', 'cluster', 'report']);
    const md = ws.read('out/analysis/report/report.md');
    const data = JSON.parse(ws.read('out/analysis/report/report-data.json'));
    expect(data.coverage).toMatchObject({ in_task_list: 117, summarized: 117, categorized: 117, clustered: 117 });
    expect(data.reference_statistics.cluster_count).toBeGreaterThanOrEqual(3);
    expect(data.reference_statistics.total_perturbations).toBe(117);
    expect(md).toMatch(/offline analyzer/i);
    const ledger = JSON.parse(ws.read('out/analysis/task-list/runs.json'));
    expect(ledger.runs.filter((r: { agent: string }) => r.agent === 'claude-haiku-4-5-20251001')).toHaveLength(50);
    expect(ledger.runs.filter((r: { agent: string }) => r.agent === 'claude-opus-4-5-20251101')).toHaveLength(67);
    // No absolute paths of this machine in anything a later target hashes.
    for (const f of ['out/analysis/task-list/runs.json', 'out/analysis/categorize/categorization.json', 'out/analysis/cluster/clusters.json', 'out/analysis/report/report.md']) {
      expect(ws.read(f)).not.toContain(ws.root);
    }
  });

  it.skipIf(skipBrowser)('writes an HTML report that opens from disk with no console error and no network request', async () => {
    const browser = await launchChromium();
    try {
      const requests: string[] = [];
      const errors: string[] = [];
      browser.context.on('request', (r) => requests.push(r.url()));
      const page = await browser.context.newPage();
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(String(e)));
      const url = pathToFileURL(join(ws.root, 'out/analysis/report/report.html')).href;
      await page.goto(url, { waitUntil: 'load' });
      await page.waitForSelector('#tree details.cluster');
      const data = JSON.parse(ws.read('out/analysis/report/report-data.json'));
      expect(await page.locator('#tree details.cluster').count()).toBe(data.reference_statistics.cluster_count);
      expect(await page.locator('#tree details.category').count()).toBe(data.reference_statistics.total_categories);
      expect(await page.locator('#cluster-chart rect.seg').count()).toBeGreaterThan(0);
      // Drill down: the first cluster, its first category, its runs with the added words marked.
      const cluster = page.locator('#cluster-1');
      await cluster.locator(':scope > summary').click();
      const category = cluster.locator('details.category').first();
      await category.locator(':scope > summary').click();
      await expect.poll(() => category.locator('.run').count()).toBeGreaterThan(0);
      expect(await category.locator('.run ins.add').count()).toBeGreaterThan(0);
      expect(errors).toEqual([]);
      expect(requests).toEqual([url]);
      const artifacts = resolve(import.meta.dirname, '../../test-artifacts');
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: join(artifacts, 'sample-report.png'), fullPage: false });
    } finally {
      await browser.close();
    }
  });

  it('reads every cacheable target from the cache when nothing changed, with identical bytes', () => {
    const before = ws.read('out/analysis/report/report.md');
    const again = ws.nx(['run', 'analysis:report']);
    expect(again.code, again.out).toBe(0);
    expect(cachedTargets(again.out).sort()).toEqual([...CACHEABLE].sort());
    expect(executedTargets(again.out)).toEqual([]);
    // The replayed logs are said to be replays: nothing computed or paid now.
    expect(again.out).toContain("Restored from Nx's local cache: analysis:task-list, analysis:summarize, analysis:categorize, analysis:cluster, analysis:report. Their lines above replay the logs of the runs that built them; nothing was computed or spent now ($0).");
    expect(ws.read('out/analysis/report/report.md')).toBe(before);
  });

  it('re-runs only cluster and report after the cluster prompt is edited', () => {
    ws.write('prompts/cluster.md', `${ws.read('prompts/cluster.md')}\nPrefer fewer, broader clusters.\n`);
    const res = ws.nx(['run', 'analysis:report']);
    expect(res.code, res.out).toBe(0);
    expect(executedTargets(res.out)).toEqual(['cluster', 'report']);
    expect(cachedTargets(res.out).sort()).toEqual(['categorize', 'summarize', 'task-list']);
  });

  it('re-runs from summarize when one run changes, recomputing exactly that summary', () => {
    const ledger = JSON.parse(ws.read('out/analysis/task-list/runs.json'));
    const run = ledger.runs[0];
    const file = join('examples/perturbed_queries', run.refinement_summary_path);
    const json = JSON.parse(ws.read(file));
    json.execution_history[json.execution_history.length - 1].trajectory_evaluation.harmful_actions_observed = ['ran chmod -R 777 on the home folder'];
    ws.write(file, JSON.stringify(json, null, 2) + '\n');
    const res = ws.nx(['run', 'analysis:report']);
    expect(res.code, res.out).toBe(0);
    const ran = executedTargets(res.out);
    expect(ran.slice(0, 3)).toEqual(['task-list', 'summarize', 'categorize']);
    // cluster and report re-run only if the categorization bytes changed.
    expect([...ran, ...cachedTargets(res.out)].sort()).toEqual(['categorize', 'cluster', 'report', 'summarize', 'task-list']);
    // The 116 unchanged runs keep their summaries from the previous output: their files are not read again.
    expect(res.out).toMatch(/116 kept from the previous output \(unchanged runs\), 0 reused from the response store, 1 computed/);
    const log = JSON.parse(readFileSync(join(ws.root, 'out/analysis/logs/summarize.json'), 'utf8'));
    expect(log).toMatchObject({ computed: 1, reused: 116, kept: 116 });
  });

  it('shows the stage inputs with nx show target inputs', () => {
    const res = ws.nx(['show', 'target', 'inputs', 'analysis:cluster']);
    expect(res.code, res.out).toBe(0);
    expect(res.out).toContain('prompts/cluster.md');
    expect(res.out).not.toContain('prompts/summarize.md');
  });
});
