// The HTML report in a real browser: opened from file:// in headless Chromium
// (Debian's package, driven by playwright-core), it must render the chart, let
// the reader drill down and filter, make no network request, log no error, and
// show hostile markup from the data as plain text. What the sticky filter panel
// must not hide (a cluster opened from the chart, a run opened by its #run=
// link), search hits marked in the text, and run permalinks are checked here
// too, after scrolling has come to rest.

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

/** The little of the page's API the checks below call in the browser (the tests compile without DOM types). */
interface PageWindow {
  scrollY: number;
  innerHeight: number;
  location: { hash: string };
  scrollTo(x: number, y: number): void;
  requestAnimationFrame(fn: () => void): number;
  getComputedStyle(el: unknown): { scrollMarginTop: string };
  document: { querySelector(selector: string): PageElement | null; getElementById(id: string): PageElement | null };
}
interface PageElement {
  getBoundingClientRect(): { top: number; bottom: number; height: number };
  style: { paddingBottom: string };
}

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
  // Every page opened loads report.html once, and nothing else.
  let loads = 0;

  beforeAll(async () => {
    if (!haveChromium) throw new Error(`Chromium not found at ${CHROMIUM}; CI must install it (apt-get install -y chromium)`);
    workDir = mkdtempSync(join(tmpdir(), 'report-html-e2e-'));
    const file = join(workDir, 'report.html');
    writeFileSync(file, renderHtmlReport(fixtureInput()));
    fileUrl = pathToFileURL(file).href;

    browser = await launchChromium();
    context = browser.context;
    context.on('request', (req) => requests.push(req.url()));
    page = await openReport('', context.pages()[0]);
  });

  async function openReport(hash: string, reuse?: Page): Promise<Page> {
    const p = reuse ?? (await context.newPage());
    p.on('console', (msg) => {
      if (msg.type() === 'error') consoleErrors.push(msg.text());
    });
    p.on('pageerror', (err) => consoleErrors.push(String(err)));
    loads++;
    await p.goto(fileUrl + hash, { waitUntil: 'load' });
    await p.waitForSelector('#tree details.cluster');
    return p;
  }

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

  /** Waits until the page has stopped scrolling (the report scrolls smoothly). */
  async function scrollSettled(p: Page = page): Promise<void> {
    await p.evaluate(
      () =>
        new Promise<void>((done) => {
          const w = globalThis as unknown as PageWindow;
          let last = -1;
          let still = 0;
          const tick = (): void => {
            still = w.scrollY === last ? still + 1 : 0;
            last = w.scrollY;
            if (still >= 10) done();
            else w.requestAnimationFrame(tick);
          };
          w.requestAnimationFrame(tick);
        }),
    );
  }

  /** Where an element is against the sticky filter panel and the window, once scrolling stopped. */
  async function placement(selector: string, p: Page = page): Promise<{ top: number; bottom: number; panelTop: number; panelBottom: number; viewport: number }> {
    await scrollSettled(p);
    return p.evaluate((sel) => {
      const w = globalThis as unknown as PageWindow;
      const target = w.document.querySelector(sel);
      const panel = w.document.getElementById('filters');
      if (!target || !panel) throw new Error(`missing ${sel} or #filters`);
      const box = target.getBoundingClientRect();
      const bar = panel.getBoundingClientRect();
      return { top: box.top, bottom: box.bottom, panelTop: bar.top, panelBottom: bar.bottom, viewport: w.innerHeight };
    }, selector);
  }

  function expectClearOfPanel(at: Awaited<ReturnType<typeof placement>>, what: string): void {
    // The panel is stuck to the top of the window, and the target is below it, in view.
    expect(at.panelTop, `${what}: the filter panel is stuck at the top`).toBe(0);
    expect(at.top, `${what} starts below the filter panel`).toBeGreaterThanOrEqual(at.panelBottom);
    expect(at.top, `${what} starts in the window`).toBeLessThan(at.viewport);
  }

  async function setHash(hash: string): Promise<void> {
    await page.evaluate((h) => {
      (globalThis as unknown as PageWindow).location.hash = h;
    }, hash);
  }

  /** The example that links to a run: the second run of "Delegated judgment" (cluster 2). */
  const LINKED_RUN = CATEGORIES.find((c) => c.category_id === 'cat-delegate')?.examples[1]?.run_id ?? '';
  const runCard = (p: Page, id: string) => p.locator(`#tree .run[data-run-id="${id}"]`);

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

  it('scrolls a cluster opened from the chart to just below the sticky filter panel', async () => {
    for (const rank of [2, 3]) {
      await page.evaluate(() => (globalThis as unknown as PageWindow).scrollTo(0, 0));
      await scrollSettled();
      await page.locator('#cluster-chart a.bar').nth(rank - 1).click();
      await expect.poll(() => page.locator(`#cluster-${rank}`).getAttribute('open')).not.toBeNull();
      expectClearOfPanel(await placement(`#cluster-${rank} > summary .sum-title`), `cluster ${rank}'s title`);
    }
    await page.click('#collapse-all');
  });

  it('follows the filter panel when its height changes', async () => {
    const margin = () => page.$eval('#cluster-1', (el) => (globalThis as unknown as PageWindow).getComputedStyle(el).scrollMarginTop);
    const panelHeight = () => page.$eval('#filters', (el) => `${Math.ceil((el as unknown as PageElement).getBoundingClientRect().height)}px`);
    expect(await margin()).toBe(await panelHeight());
    await page.$eval('#filters', (el) => {
      (el as unknown as PageElement).style.paddingBottom = '90px';
    });
    await expect.poll(margin).toBe(await panelHeight());
    expect(parseFloat(await margin())).toBeGreaterThan(150);
    // On a narrow window the panel is not sticky, so nothing needs to make room for it.
    await page.setViewportSize({ width: 700, height: 900 });
    await expect.poll(margin).toBe('0px');
    await page.setViewportSize({ width: 1366, height: 900 });
    await page.$eval('#filters', (el) => {
      (el as unknown as PageElement).style.paddingBottom = '';
    });
    await expect.poll(margin).toBe(await panelHeight());
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

  it('marks search hits in the visible text, and only the current search', async () => {
    const hits = () => page.locator('#tree mark.hit');
    await page.fill('#filter-text', 'Quarterly_Budget');
    await expect.poll(() => visibleRuns().count()).toBe(1);
    const card = visibleRuns().first();
    const before = await card.locator('figure.instr').first().locator('p').textContent();
    await expect.poll(() => card.locator('mark.hit').count()).toBeGreaterThan(0);
    const marked = await hits().allTextContents();
    expect(marked.map((t) => t.toLowerCase())).toEqual(marked.map(() => 'quarterly_budget'));
    expect(await card.locator('mark.hit:visible').count()).toBeGreaterThan(0);
    // Marking splits text nodes only: the text reads the same.
    expect(await card.locator('figure.instr').first().locator('p').textContent()).toBe(before);
    // Labels of the card are not search text.
    expect(await card.locator('dt mark, figcaption mark').count()).toBe(0);

    // Two words: each is marked; the previous search's marks are gone.
    await page.fill('#filter-text', 'as fast');
    await expect.poll(() => visibleRuns().count()).toBe(1);
    const now = (await hits().allTextContents()).map((t) => t.toLowerCase());
    expect(now).toContain('fast');
    expect(now).toContain('as');
    expect(now.every((t) => t === 'as' || t === 'fast' || t === 'as fast')).toBe(true);

    // Runs opened by hand while a search is on are marked too.
    await page.fill('#filter-text', 'the');
    await page.click('#expand-all');
    await expect.poll(() => page.locator('#cluster-3 .run mark.hit').count()).toBeGreaterThan(0);

    await clearFilters();
    await page.click('#expand-all');
    expect(await hits().count()).toBe(0);
    await page.click('#collapse-all');
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
    // Marking search hits inside hostile text keeps it text.
    await page.fill('#filter-text', 'URGENT onerror');
    await expect.poll(() => card.locator('mark.hit', { hasText: 'onerror' }).count()).toBeGreaterThan(0);
    expect(await card.locator('figure.instr').nth(1).locator('p').textContent()).toBe(perturbed);
    expect(await page.locator('#tree img, #tree script').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned)).toBeUndefined();
    await clearFilters();
  });

  it('gives each run a link to itself that opens and shows it', async () => {
    await page.locator('#cluster-2 > summary').click();
    const category = page.locator('#cluster-2 details.category', { hasText: 'Delegated judgment' });
    await category.locator(':scope > summary').click();
    const card = runCard(page, LINKED_RUN);
    const link = card.locator('a.permalink');
    expect(await link.textContent()).toBe('Link to this run');
    expect(await link.getAttribute('href')).toBe(`#run=${encodeURIComponent(LINKED_RUN).replace(/%3A/g, ':')}`);
    await link.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.evaluate(() => decodeURIComponent((globalThis as unknown as PageWindow).location.hash))).toBe(`#run=${LINKED_RUN}`);
    expect(await card.evaluate((el) => el.classList.contains('targeted'))).toBe(true);
    expectClearOfPanel(await placement(`#tree .run[data-run-id="${LINKED_RUN}"]`), 'the linked run');
    await page.click('#collapse-all');
  });

  it('shows the run of a #run= link when the hash changes, clearing filters that hide it', async () => {
    const other = CATEGORIES.find((c) => c.category_id === 'cat-persist')?.examples[0]?.run_id ?? '';
    await page.fill('#filter-text', 'quarterly_budget');
    await expect.poll(() => visibleRuns().count()).toBe(1);
    await setHash(`#run=${encodeURIComponent(other)}`);
    await expect.poll(() => runCard(page, other).isVisible()).toBe(true);
    expect(await page.inputValue('#filter-text')).toBe('');
    expect(await page.locator('#run-notice').textContent()).toMatch(/filters were cleared/);
    expect(await page.locator('#cluster-3').getAttribute('open')).not.toBeNull();
    expectClearOfPanel(await placement(`#tree .run[data-run-id="${other}"]`), 'the run named by the hash');

    // A run id this report does not have: a notice, no error.
    await setHash('#run=os:no-such-task:00000000:m:a');
    await expect.poll(() => page.locator('#run-notice').isVisible()).toBe(true);
    expect(await page.locator('#run-notice').textContent()).toBe(
      'This report has no run os:no-such-task:00000000:m:a. The link may belong to another report, or the run was left out of this one.',
    );
    // A damaged link (bad percent-encoding) is said so, not thrown.
    await setHash('#run=%E0%A4%A');
    await expect.poll(() => page.locator('#run-notice').textContent()).toMatch(/damaged/);
    // Navigating elsewhere takes the notice away.
    await setHash('#explore');
    await expect.poll(() => page.locator('#run-notice').isVisible()).toBe(false);
    expect(consoleErrors).toEqual([]);
    await clearFilters();
  });

  it('opens report.html#run=<id> at that run, and an unknown id with a notice', async () => {
    const linked = await openReport(`#run=${encodeURIComponent(LINKED_RUN).replace(/%3A/g, ':')}`);
    try {
      const card = runCard(linked, LINKED_RUN);
      await expect.poll(() => card.isVisible()).toBe(true);
      expect(await linked.locator('#cluster-2').getAttribute('open')).not.toBeNull();
      expect(await card.locator('.trigger').textContent()).toBe('do whatever is needed with the permissions');
      expect(await linked.locator('#run-notice').isVisible()).toBe(false);
      expectClearOfPanel(await placement(`#tree .run[data-run-id="${LINKED_RUN}"]`, linked), 'the linked run');
      // Only that run's cluster and category are opened.
      expect(await linked.locator('#tree details[open]').count()).toBe(2);
    } finally {
      await linked.close();
    }

    const unknown = await openReport('#run=nobody');
    try {
      await expect.poll(() => unknown.locator('#run-notice').isVisible()).toBe(true);
      expect(await unknown.locator('#run-notice').textContent()).toMatch(/^This report has no run nobody\./);
      expect(await unknown.locator('#tree details[open]').count()).toBe(0);
      // The notice goes once the reader moves on to searching.
      await unknown.fill('#filter-text', 'cleanup');
      await expect.poll(() => unknown.locator('#run-notice').isVisible()).toBe(false);
    } finally {
      await unknown.close();
    }
    expect(consoleErrors).toEqual([]);
  });

  it('keeps a screenshot for review and still made no request', async () => {
    await page.locator('#cluster-1 > summary').click();
    await page.locator('#cluster-1 details.category').first().locator(':scope > summary').click();
    await expect.poll(() => page.locator('#cluster-1 .run:visible').count()).toBe(4);
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'report-html.png'), fullPage: true });
    expect(existsSync(join(ARTIFACTS, 'report-html.png'))).toBe(true);
    expect(consoleErrors).toEqual([]);
    expect(loads).toBe(3);
    expect(requests).toEqual(Array<string>(loads).fill(fileUrl));
    expect(await page.evaluate(() => (globalThis as { __pwned?: unknown }).__pwned)).toBeUndefined();
    // Fixture sanity: every category is reachable from the tree.
    expect(await page.locator('#tree details.category').count()).toBe(CATEGORIES.length);
  });
});
