// The quality section on the bundled sample, through the real nx (offline
// analyzer, two agents): report.md and report-data.json compare both agents
// cluster by cluster and category by category, and report.html's comparison
// view renders in headless Chromium with no console error and no request
// beyond the file itself.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveChromium, launchChromium, skipBrowser, CHROMIUM } from './browser.ts';
import { tempWorkspace } from './workspace.ts';
import type { TempWorkspace } from './workspace.ts';

const AGENTS = ['claude-haiku-4-5-20251001', 'claude-opus-4-5-20251101'];

interface Row {
  name: string;
  count_a: number;
  count_b: number;
  lower: number;
  upper: number;
  excludes_zero: boolean;
}

describe('quality section on the sample', () => {
  let ws: TempWorkspace;
  let data: {
    coverage: { categorized: number; clustered: number; in_task_list: number };
    quality: {
      comparisons: { dimension: string; a: string; b: string; runs_a: number; runs_b: number; clusters: Row[]; categories: Row[] }[];
      placement: { categories: number; placed_by_model: number; placed_by_fallback: unknown[] };
      agreement: Record<string, unknown>;
    };
  };
  let clusters: { clusters: unknown[] };
  let categories: { categorization: { categories: unknown[] } };

  beforeAll(async () => {
    ws = tempWorkspace({ prefix: 'meta-analysis-quality-' });
    const res = await ws.nxAsync(['run', 'analysis:report']);
    expect(res.code, res.out).toBe(0);
    data = JSON.parse(ws.read('out/analysis/report/report-data.json'));
    clusters = JSON.parse(ws.read('out/analysis/cluster/clusters.json'));
    categories = JSON.parse(ws.read('out/analysis/categorize/categorization.json'));
  });
  afterAll(() => ws?.dispose());

  it('report-data.json compares the two agents over every cluster and category', () => {
    const agents = data.quality.comparisons.filter((c) => c.dimension === 'agent');
    expect(agents).toHaveLength(1);
    const [pair] = agents;
    expect([pair!.a, pair!.b]).toEqual(AGENTS);
    expect(pair!.runs_a + pair!.runs_b).toBe(data.coverage.categorized);
    expect(pair!.clusters).toHaveLength(clusters.clusters.length);
    expect(pair!.categories).toHaveLength(categories.categorization.categories.length);
    for (const row of [...pair!.clusters, ...pair!.categories]) {
      expect(row.lower).toBeLessThanOrEqual(row.upper);
      expect(row.excludes_zero).toBe(row.lower > 0 || row.upper < 0);
    }
    // Every run of a slice is in some category: the category counts add up to the slice.
    expect(pair!.categories.reduce((n, r) => n + r.count_a, 0)).toBe(pair!.runs_a);
    expect(data.quality.comparisons.map((c) => c.dimension)).toContain('refinement_model');
  });

  it('the offline clusterer places every category itself, and the coverage agrees', () => {
    expect(data.quality.placement.placed_by_fallback).toEqual([]);
    expect(data.quality.placement.placed_by_model).toBe(data.quality.placement.categories);
    expect(data.coverage.clustered).toBe(data.coverage.in_task_list);
    // No --stability run; the held-out check ran (offline: the nearest-category rule) on a sample of 10%.
    expect(data.quality.agreement.stability).toBeNull();
    expect(data.quality.agreement.held_out).toMatchObject({ enabled: true, method: 'nearest-category', sampled_runs: 12 });
  });

  it('report.md ends with the quality section, both agents compared', () => {
    const md = ws.read('out/analysis/report/report.md');
    const at = md.indexOf('\n## Quality of the taxonomy\n');
    expect(at).toBeGreaterThan(0);
    const section = md.slice(at);
    expect(section).toContain(`#### Agent: ${AGENTS[0]} (n=`);
    expect(section).toContain(`) vs ${AGENTS[1]} (n=`);
    for (const h of ['### Placement in clusters', '### Prevalence with 95% intervals', '### Comparisons', '### Summary health', '### Category health', '### Agreement']) {
      expect(section).toContain(`\n${h}\n`);
    }
    // Added after the report's own sections, which are unchanged before it.
    expect(md.slice(0, at)).toContain('\n## By agent\n');
    expect(md.slice(0, at)).not.toContain('Wilson');
  });

  describe.skipIf(skipBrowser)('report.html in headless Chromium', () => {
    let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
    let page: Page;
    let fileUrl = '';
    const requests: string[] = [];
    const consoleErrors: string[] = [];

    beforeAll(async () => {
      if (!haveChromium) throw new Error(`Chromium not found at ${CHROMIUM}`);
      fileUrl = pathToFileURL(join(ws.root, 'out/analysis/report/report.html')).href;
      browser = await launchChromium();
      browser.context.on('request', (req) => requests.push(req.url()));
      page = browser.context.pages()[0] ?? (await browser.context.newPage());
      page.on('console', (msg) => {
        if (msg.type() === 'error') consoleErrors.push(msg.text());
      });
      page.on('pageerror', (err) => consoleErrors.push(String(err)));
      await page.goto(fileUrl, { waitUntil: 'load' });
    });
    afterAll(async () => {
      await browser?.close();
    });

    it('renders the comparison view next to the chart: side-by-side bars with intervals, per agent pair', async () => {
      // The comparison follows the cluster chart directly.
      expect(await page.$eval('#overview', (el) => (el.nextElementSibling as { id?: string } | null)?.id)).toBe('compare');
      const figure = page.locator('#compare figure.compare[data-dimension="agent"]');
      expect(await figure.count()).toBe(1);
      expect(await figure.locator('figcaption').textContent()).toContain(`${AGENTS[0]} vs ${AGENTS[1]}`);
      const rows = figure.locator('#compare-agent-1-clusters g.compare-row');
      expect(await rows.count()).toBe(clusters.clusters.length);
      expect(await rows.first().locator('rect.side').count()).toBe(2);
      expect(await rows.first().locator('path.whisker').count()).toBe(2);
      const box = await page.locator('#compare-agent-1-clusters').boundingBox();
      expect(box?.width ?? 0).toBeGreaterThan(400);
      expect(box?.height ?? 0).toBeGreaterThan(100);
      // Categories open on demand.
      const categoriesChart = figure.locator('#compare-agent-1-categories');
      expect(await categoriesChart.isVisible()).toBe(false);
      await figure.locator('details > summary').click();
      await expect.poll(() => categoriesChart.isVisible()).toBe(true);
      expect(await categoriesChart.locator('g.compare-row').count()).toBe(categories.categorization.categories.length);
      // The rows whose interval excludes 0 are the ones report-data.json marks.
      const marked = data.quality.comparisons[0]!.categories.filter((r) => r.excludes_zero).length;
      expect(await categoriesChart.locator('g.compare-row.excludes-zero').count()).toBe(marked);
    });

    it('links the section from the navigation, with no console error and no request but the file', async () => {
      await page.click('nav a[href="#quality"]');
      expect(await page.locator('#quality h2').isVisible()).toBe(true);
      expect(consoleErrors).toEqual([]);
      expect(requests).toEqual([fileUrl]);
    });
  });
});
