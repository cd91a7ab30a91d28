// The HTML report in a real browser: opened from file:// in headless Chromium
// (Debian's package, driven by playwright-core), it must render the chart, let
// the reader drill down and filter, make no network request, log no error, and
// show hostile markup from the data as plain text.

import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderHtmlReport } from '../../stages/report/html.ts';
import { CHROMIUM, haveChromium, launchChromium, skipBrowser } from './browser.ts';
import { CATEGORIES, CLUSTERS, HOSTILE_IMG, HOSTILE_SCRIPT, RUNS, fixtureInput } from '../fixtures/report-html/fixture.ts';

const ARTIFACTS = resolve(import.meta.dirname, '../../test-artifacts');
const skip = skipBrowser;
if (skip) {
  console.warn(
    `report-html e2e: SKIPPED because ${CHROMIUM} is missing (install it with "apt-get install -y chromium"). ` +
      'With CI set, a missing browser fails this test instead.',
  );
}

describe.skipIf(skip)('HTML report in headless Chromium', () => {
  let workDir = '';
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined;
  let context: BrowserContext;
  let page: Page;
  let fileUrl = '';
  const requests: string[] = [];
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    if (!haveChromium) throw new Error(`Chromium not found at ${CHROMIUM}; CI must install it (apt-get install -y chromium)`);
    workDir = mkdtempSync(join(tmpdir(), 'report-html-e2e-'));
    const file = join(workDir, 'report.html');
    writeFileSync(file, renderHtmlReport(fixtureInput()));
    fileUrl = pathToFileURL(file).href;

    browser = await launchChromium();
    context = browser.context;
    context.on('request', (req) => requests.push(req.url()));
    page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(msg.text());
    });
    page.on('pageerror', (err) => consoleErrors.push(String(err)));
    await page.goto(fileUrl, { waitUntil: 'load' });
    await page.waitForSelector('#tree details.cluster');
  });

  afterAll(async () => {
    await browser?.close();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  const visibleRuns = () => page.locator('#tree .run:visible');

  async function clearFilters(): Promise<void> {
    await page.click('#filter-reset');
    await page.click('#collapse-all');
  }

  async function chooseOption(selectId: string, value: string): Promise<void> {
    const index = await page.$eval(
      `#${selectId}`,
      (select, wanted) => {
        const options = Array.from((select as unknown as { options: ArrayLike<{ value: string; textContent: string | null }> }).options);
        const found = options.find((o) => (o.textContent ?? '').startsWith(`${wanted} (`));
        return found ? found.value : null;
      },
      value,
    );
    expect(index, `option ${value} in #${selectId}`).not.toBeNull();
    await page.selectOption(`#${selectId}`, index as string);
  }

  it('loads from file:// without console errors or network requests', async () => {
    expect(consoleErrors).toEqual([]);
    expect(requests).toEqual([fileUrl]);
    expect(await page.title()).toBe(fixtureInput().title);
  });

  it('draws one bar per cluster, stacked by severity', async () => {
    expect(await page.locator('#cluster-chart a.bar').count()).toBe(CLUSTERS.length);
    const first = page.locator('#cluster-chart a.bar').first();
    expect(await first.getAttribute('aria-label')).toMatch(/^1\. Unbounded scope in file operations: 7 perturbations/);
    expect(await first.locator('rect.seg').count()).toBeGreaterThan(1);
    const box = await page.locator('#cluster-chart').boundingBox();
    expect(box?.width ?? 0).toBeGreaterThan(400);
  });

  it('drills down from a cluster to its categories and runs, with changed words highlighted', async () => {
    const cluster = page.locator('#cluster-1');
    const categories = cluster.locator('details.category');
    await expect.poll(() => categories.first().isVisible()).toBe(false);
    await cluster.locator(':scope > summary').click();
    await expect.poll(() => categories.first().isVisible()).toBe(true);
    expect(await categories.count()).toBe(2);
    expect(await categories.locator('.cat-name').allTextContents()).toEqual(['Scope-widening quantifiers', 'Implicit cleanup requests']);

    const category = categories.first();
    await category.locator(':scope > summary').click();
    const runs = category.locator('.run');
    await expect.poll(() => runs.count()).toBe(4);
    const first = runs.first();
    expect(await first.isVisible()).toBe(true);
    const added = await first.locator('ins.add').allTextContents();
    expect(added.join(' ')).toContain('and any related parent directories');
    expect(await first.locator('.trigger').textContent()).toBe('and any related parent directories');
    expect(await first.locator('.badge.ok').count()).toBe(1);
    expect(await first.locator('a', { hasText: 'Open the run folder' }).getAttribute('href')).toMatch(
      /^\.\.\/\.\.\/\.\.\/examples\/perturbed_queries\/os\//,
    );
    await page.click('#collapse-all');
  });

  it('opens a cluster from its chart bar', async () => {
    await page.locator('#cluster-chart a.bar').nth(2).click();
    await expect.poll(() => page.locator('#cluster-3').getAttribute('open')).not.toBeNull();
    expect(await page.locator('#cluster-3 .sum-title').textContent()).toBe('Demands for durable system changes');
    await page.click('#collapse-all');
  });

  it('filters runs by free text', async () => {
    await page.fill('#filter-text', 'quarterly_budget');
    await expect.poll(() => visibleRuns().count()).toBe(1);
    expect(await visibleRuns().first().getAttribute('data-run-id')).toContain('1e6a0b77');
    expect(await page.locator('#tree details.cluster:visible').count()).toBe(1);
    expect(await page.locator('#filter-status').textContent()).toMatch(/Showing 1 of 15 runs/);
    await page.fill('#filter-text', 'no-such-word-anywhere');
    await expect.poll(() => page.locator('.no-match').isVisible()).toBe(true);
    await clearFilters();
    expect(await page.locator('#tree details.cluster:visible').count()).toBe(CLUSTERS.length);
  });

  it('filters runs by severity and domain, hiding empty clusters and updating counts', async () => {
    const critical = RUNS.filter((r) => r.severity === 'critical').map((r) => r.run_id).sort();
    await chooseOption('filter-severity', 'critical');
    await expect.poll(() => visibleRuns().count()).toBe(critical.length);
    const ids = (await visibleRuns().evaluateAll((els) => els.map((el) => el.getAttribute('data-run-id') ?? ''))).sort();
    expect(ids).toEqual(critical);
    // Critical runs sit in "Scope-widening quantifiers" and "False premise about prior state" only.
    expect(await page.locator('#tree details.cluster:visible').count()).toBe(2);
    expect(await page.locator('#cluster-1 .sum-sub').textContent()).toMatch(/^1 of 7 runs match/);

    await chooseOption('filter-domain', 'multi_apps_test');
    await expect.poll(() => page.locator('.no-match').isVisible()).toBe(true);
    await clearFilters();

    const multi = RUNS.filter((r) => r.domain === 'multi_apps_test').length;
    await chooseOption('filter-domain', 'multi_apps_test');
    await expect.poll(() => visibleRuns().count()).toBe(multi);
    await clearFilters();
  });

  it('renders hostile markup in run data as literal text', async () => {
    await page.fill('#filter-text', 'URGENT');
    await expect.poll(() => visibleRuns().count()).toBe(1);
    const card = visibleRuns().first();
    const perturbed = await card.locator('figure.instr').nth(1).locator('p').textContent();
    expect(perturbed).toContain(HOSTILE_SCRIPT);
    expect(perturbed).toContain(HOSTILE_IMG);
    expect(await card.locator('.trigger').textContent()).toContain(HOSTILE_IMG);
    expect(await page.locator('#tree img, #tree script').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned)).toBeUndefined();
    await clearFilters();
  });

  it('keeps a screenshot for review and still made no request', async () => {
    await page.locator('#cluster-1 > summary').click();
    await page.locator('#cluster-1 details.category').first().locator(':scope > summary').click();
    await expect.poll(() => page.locator('#cluster-1 .run:visible').count()).toBe(4);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'report-html.png'), fullPage: true });
    expect(existsSync(join(ARTIFACTS, 'report-html.png'))).toBe(true);
    expect(consoleErrors).toEqual([]);
    expect(requests).toEqual([fileUrl]);
    expect(await page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned)).toBeUndefined();
    // Fixture sanity: every category is reachable from the tree.
    expect(await page.locator('#tree details.category').count()).toBe(CATEGORIES.length);
  });
});
