// The report's quality section: what computeQuality derives from the stage
// outputs (shares, comparisons, fallback placements, summary and category
// health, stability), how the coverage treats categories placed by fallback,
// and what report.md says about them. The interval formulas themselves are
// checked against published values in report-quality-intervals.test.ts.
import { describe, expect, it } from 'vitest';
import { runCoverage } from '../stages/report/assemble.ts';
import { renderMarkdownReport } from '../stages/report/markdown.ts';
import type { CategorizationOut, ClustersOut } from '../stages/report/assemble.ts';
import type { Ledger } from '../stages/task-list/ledger.ts';
import { categoryHealth } from '../stages/report/quality/category-health.ts';
import { computeQuality, stabilityOf } from '../stages/report/quality/compute.ts';
import type { QualityInput } from '../stages/report/quality/compute.ts';
import { wilsonInterval } from '../stages/report/quality/intervals.ts';
import { renderQualityMarkdown } from '../stages/report/quality/markdown.ts';
import { renderComparisons, renderQuality } from '../stages/report/quality/html.ts';
import { renderHtmlReport } from '../stages/report/html.ts';
import { CLUSTERS, fixtureInput } from './fixtures/report-html/fixture.ts';
import { fallbackPlaced } from '../stages/report/quality/placement.ts';
import { summaryIssue } from '../stages/report/quality/summary-health.ts';

const LONG = 'The perturbation adds an open request to remove leftover files from the project folder, and the agent deletes the whole folder including the source files without asking which ones were meant.';

/**
 * 10 runs of agent A and 10 of agent B (refinement models m1/m2 alternate,
 * domain os), plus one run of A with no category. Category "Cleanup" holds 9
 * runs of A and 3 of B: Newcombe's 9/10 vs 3/10 example.
 */
function input(): QualityInput {
  const runs: QualityInput['runs'] = [];
  for (const agent of ['A', 'B']) {
    for (let i = 0; i < 10; i++) runs.push({ run_id: `${agent}${i}`, agent, refinement_model: i % 2 ? 'm1' : 'm2', domain: 'os', summary: `${LONG} Run ${agent}${i}.` });
  }
  runs.push({ run_id: 'A-none', agent: 'A', refinement_model: 'm1', domain: 'os', summary: `${LONG} Not categorized.` });
  const ids = (agent: string, from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${agent}${from + i}`);
  return {
    runs,
    categories: [
      { category_id: 'cat-1', category_name: 'Cleanup', definition: 'Requests to tidy a workspace by deleting files.', run_ids: [...ids('A', 0, 9), ...ids('B', 0, 3)] },
      { category_id: 'cat-2', category_name: 'Persistence', definition: 'Demands that a setting survive reboots.', run_ids: [...ids('A', 9, 10), ...ids('B', 3, 9)] },
      { category_id: 'cat-3', category_name: 'Urgency', definition: 'Time pressure on the agent.', run_ids: ids('B', 9, 10) },
    ],
    clusters: [
      { cluster_id: 'clu-1', cluster_name: 'Deletion', member_categories: [{ category_name: 'Cleanup' }] },
      { cluster_id: 'clu-2', cluster_name: 'Durability', member_categories: [{ category_name: 'Persistence' }] },
      // The clusterer's fallback: the model never placed "Urgency", so it got a cluster of its own.
      { cluster_id: 'clu-3', cluster_name: 'Urgency', member_categories: [{ category_name: 'Urgency' }] },
    ],
    unclustered_categories: [{ category_name: 'Urgency', reason: 'the model did not place it in any cluster after 2 repairs' }],
    stability: null,
    heldout: null,
  };
}

describe('computeQuality', () => {
  const q = computeQuality(input());

  it('counts shares over the categorized runs of each slice', () => {
    expect(q.slices).toEqual([
      { dimension: 'all', value: null, runs: 20 },
      { dimension: 'agent', value: 'A', runs: 10 },
      { dimension: 'agent', value: 'B', runs: 10 },
      { dimension: 'refinement_model', value: 'm1', runs: 10 },
      { dimension: 'refinement_model', value: 'm2', runs: 10 },
      { dimension: 'domain', value: 'os', runs: 20 },
    ]);
    const cleanup = q.prevalence.categories.find((c) => c.name === 'Cleanup')!;
    // m1 holds the odd-numbered runs: A1, A3, A5, A7 and B1.
    expect(cleanup.by.map((p) => p.count)).toEqual([12, 9, 3, 5, 7, 12]);
    const all = cleanup.by[0]!;
    const w = wilsonInterval(12, 20)!;
    expect(all.share).toBe(0.6);
    expect(all.lower).toBeCloseTo(w.lower, 6);
    expect(all.upper).toBeCloseTo(w.upper, 6);
    // Largest first.
    expect(q.prevalence.categories.map((c) => c.name)).toEqual(['Cleanup', 'Persistence', 'Urgency']);
  });

  it('compares the agents with the hybrid score interval (Newcombe 9/10 vs 3/10: 0.1705 to 0.8090)', () => {
    const agents = q.comparisons.find((c) => c.dimension === 'agent')!;
    expect([agents.a, agents.b, agents.runs_a, agents.runs_b]).toEqual(['A', 'B', 10, 10]);
    const row = agents.categories.find((r) => r.name === 'Cleanup')!;
    expect(row.difference).toBeCloseTo(0.6, 6);
    expect(row.lower.toFixed(4)).toBe('0.1705');
    expect(row.upper.toFixed(4)).toBe('0.8090');
    expect(row.excludes_zero).toBe(true);
    const urgency = agents.categories.find((r) => r.name === 'Urgency')!;
    expect(urgency.excludes_zero).toBe(false);
    expect(q.comparisons.map((c) => c.dimension)).toEqual(['agent', 'refinement_model']);
    // Clusters are compared too, by the runs of their member categories.
    expect(agents.clusters.find((r) => r.name === 'Deletion')).toMatchObject({ count_a: 9, count_b: 3 });
  });

  it('marks categories placed by fallback and their clusters, and keeps them out of "placed by the model"', () => {
    expect(q.placement).toEqual({
      categories: 3,
      placed_by_model: 2,
      placed_by_fallback: [{ category_name: 'Urgency', reason: 'the model did not place it in any cluster after 2 repairs', clusters: ['Urgency'], runs: 1 }],
      in_no_cluster: [],
      runs_placed_by_model: 19,
      categorized_runs: 20,
    });
    expect(q.prevalence.clusters.find((c) => c.name === 'Urgency')?.fallback).toBe(true);
    expect(q.prevalence.clusters.find((c) => c.name === 'Deletion')?.fallback).toBe(false);
    expect(q.prevalence.categories.find((c) => c.name === 'Urgency')?.fallback).toBe(true);
  });

  it('is the same for the same content in another order', () => {
    const shuffled = input();
    shuffled.runs.reverse();
    shuffled.categories.reverse();
    shuffled.clusters.reverse();
    expect(JSON.stringify(computeQuality(shuffled))).toBe(JSON.stringify(q));
  });

  it('lists unhealthy summaries with their runs', () => {
    const i = input();
    const run = (id: string) => i.runs.find((r) => r.run_id === id)!;
    run('A1').summary = '   ';
    run('A2').summary = "I'm sorry, but I can't help with summarizing this run.";
    run('B1').summary = 'The agent deleted files.';
    run('B2').summary = LONG;
    run('B3').summary = LONG;
    run('B4').summary = null; // summarize failed: listed elsewhere, not checked
    const health = computeQuality(i).summary_health;
    expect(health.checked).toBe(20);
    expect(health.flagged.map((f) => [f.run_id, f.issue])).toEqual([
      ['A1', 'empty'],
      ['A2', 'refusal'],
      ['B1', 'generic'],
      ['B2', 'generic'],
      ['B3', 'generic'],
    ]);
  });

  it('lists no agreement figure that was not measured, and the stability ARI when --stability ran', () => {
    expect(q.agreement).toEqual({ stability: null, held_out: null });
    // The shape categorize writes (stages/categorize/outcome.ts stabilityOf).
    const metadata = { runs: 3, seeds: ['stability-1', 'stability-2'], adjusted_rand_index: { pairs: [], mean: 0.8123456789, min: 0.7, max: 0.9 } };
    expect(computeQuality({ ...input(), stability: metadata }).agreement.stability).toEqual({ partitions: 3, mean_ari: 0.812346, min_ari: 0.7, max_ari: 0.9 });
    expect(stabilityOf({ something: 'else' })).toBeNull();
  });
});

describe('summaryIssue', () => {
  it('passes a real summary, also one that quotes a refusal further on', () => {
    expect(summaryIssue(LONG, 0)).toBeNull();
    expect(summaryIssue(`${LONG} ${LONG} Later the agent replied "I'm sorry, I cannot help with that" and stopped.`, 0)).toBeNull();
  });
  it('flags empty, refusing, short and repeated summaries', () => {
    expect(summaryIssue('', 0)?.issue).toBe('empty');
    expect(summaryIssue('...', 0)?.issue).toBe('empty');
    expect(summaryIssue('I cannot assist with this request.', 0)?.issue).toBe('refusal');
    expect(summaryIssue(`As an AI language model, I will not summarize. ${LONG}`, 0)?.issue).toBe('refusal');
    expect(summaryIssue('Short summary.', 0)).toEqual({ issue: 'generic', detail: '2 words, fewer than 20' });
    expect(summaryIssue(LONG, 2)).toEqual({ issue: 'generic', detail: 'the same text as the summary of 2 other runs' });
  });
});

describe('categoryHealth', () => {
  const base = [
    { id: 'c1', name: 'Unscoped cleanup request', definition: 'Asks to clean up leftover files without saying which.', runs: 5 },
    { id: 'c2', name: 'Unscoped cleanup requests', definition: 'Asks to tidy the workspace by removing files it does not name.', runs: 4 },
    { id: 'c3', name: 'Persistence demand', definition: 'Demands that a setting survive reboots.', runs: 1 },
    { id: 'c4', name: 'Other', definition: 'Various perturbations.', runs: 3 },
    { id: 'c5', name: 'Rewording without a known cue', definition: 'Wording that matches none of the cue families.', runs: 2 },
    { id: 'c6', name: 'Miscellaneous issues', definition: 'Assorted requests.', runs: 2 },
  ];
  const h = categoryHealth(base);

  it('lists singletons', () => {
    expect(h.singletons).toEqual([{ id: 'c3', name: 'Persistence demand' }]);
  });
  it('pairs categories whose names share most distinctive words, and no others', () => {
    expect(h.near_duplicates.map((d) => [d.a.id, d.b.id])).toEqual([['c1', 'c2']]);
    expect(h.near_duplicates[0]?.name_similarity).toBe(1);
  });
  it('flags generic names and catch-all definitions', () => {
    expect(h.generic_names.map((g) => [g.id, g.reason])).toEqual([
      ['c4', 'the name contains "other"'],
      ['c5', 'the definition describes what fits no other category'],
      ['c6', 'the name contains "miscellaneous"'],
    ]);
  });
});

describe('categories placed by fallback', () => {
  const clu: ClustersOut = {
    clusters: [
      { cluster_id: 'clu-1', cluster_name: 'Deletion', definition: '', anchor_phrases: '', member_categories: [{ category_name: 'Cleanup', category_definition: '', justification: '' }] },
      { cluster_id: 'clu-2', cluster_name: 'Urgency', definition: '', anchor_phrases: '', member_categories: [{ category_name: 'Urgency', category_definition: '', justification: '' }] },
    ],
    statistics: {},
    metadata: {},
    unclustered_categories: [
      { category_name: 'Urgency', reason: 'the model did not place it in any cluster' },
      { category_name: 'Lost', reason: 'in no cluster' },
    ],
  };
  const example = (run: string) => ({ id: run, run_id: run, trigger_phrase: 'x', justification: 'y', trigger_phrase_verified: true });
  const cat = {
    categorization: {
      categories: [
        { category_id: 'cat-1', category_name: 'Cleanup', definition: 'd', examples: [example('r1'), example('r2')] },
        { category_id: 'cat-2', category_name: 'Urgency', definition: 'd', examples: [example('r3')] },
        { category_id: 'cat-3', category_name: 'Lost', definition: 'd', examples: [example('r4')] },
      ],
    },
    statistics: {},
    metadata: {},
  } as unknown as CategorizationOut;
  const ledger = { agents: ['a'], runs: ['r1', 'r2', 'r3', 'r4'].map((run_id) => ({ run_id, agent: 'a', refinement_summary_path: `x/${run_id}/refinement_summary.json`, perturbed_query_path: `x/${run_id}.json` })), problems: [] } as unknown as Ledger;

  it('are told apart from categories in no cluster', () => {
    expect(fallbackPlaced(clu)).toEqual([{ category_name: 'Urgency', reason: 'the model did not place it in any cluster', clusters: ['Urgency'] }]);
  });

  it('are marked in the ranking and the cluster details of report.md', () => {
    const md = renderMarkdownReport({ categorization: cat as never, clusters: clu as never });
    expect(md).toMatch(/^\| \d \| Urgency \(fallback\) \| 1 \| 1 \| /m);
    expect(md).toMatch(/^\| \d \| Deletion \| 1 \| 2 \| /m);
    expect(md).toMatch(/^### \d\. Urgency \(fallback\)$/m);
    expect(md).toContain('_Placed by fallback: the cluster model did not place this category');
  });

  it('are marked in the chart of report.html', () => {
    const name = CLUSTERS[1]!.cluster_name;
    const quality = computeQuality({
      runs: [{ run_id: 'r', agent: 'a', refinement_model: 'm', domain: 'os', summary: LONG }],
      categories: [{ category_id: 'c', category_name: 'Z', definition: 'd', run_ids: ['r'] }],
      clusters: [{ cluster_id: 'k', cluster_name: name, member_categories: [{ category_name: 'Z' }] }],
      unclustered_categories: [{ category_name: 'Z', reason: 'not placed' }],
      stability: null,
    heldout: null,
    });
    const chart = (html: string) => /<svg id="cluster-chart"[\s\S]*?<\/svg>/.exec(html)?.[0] ?? '';
    expect(chart(renderHtmlReport({ ...fixtureInput(), quality }))).toContain(`. ${name} (fallback)`);
    expect(chart(renderHtmlReport(fixtureInput()))).not.toContain('(fallback)');
  });

  it('are not "in a cluster" in the coverage, and their runs say why', () => {
    const coverage = runCoverage(ledger, null, cat, clu);
    expect(coverage.clustered).toBe(2);
    expect(coverage.unassigned).toEqual([
      { run_id: 'r3', stage: 'cluster', reason: 'its category "Urgency" was put in a cluster of its own by fallback: the model did not place it in any cluster' },
      { run_id: 'r4', stage: 'cluster', reason: 'its category "Lost" is in no cluster' },
    ]);
  });
});

describe('rendering', () => {
  const q = computeQuality(input());

  it('report.md: every part of the section, the marked difference and the fallback', () => {
    const md = `\n${renderQualityMarkdown(q).join('\n')}`;
    for (const heading of ['## Quality of the taxonomy', '### Placement in clusters', '### Prevalence with 95% intervals', '### Comparisons', '### Summary health', '### Category health', '### Agreement']) {
      expect(md).toContain(`\n${heading}\n`);
    }
    expect(md).toContain('#### Agent: A (n=10) vs B (n=10)');
    expect(md).toMatch(/\| Cleanup \| 9 · 90\.0% \| 3 · 30\.0% \| \+60\.0% \(\+17\.1% to \+80\.9%\) \| \*\*excludes 0\*\* \|/);
    expect(md).toContain('| Urgency (fallback) |');
    expect(md).toContain('Categories the cluster model placed in a cluster: 2 of 3, holding 19 of 20 categorized runs');
    expect(md).toContain('Stability: not measured');
  });

  it('report.html: a comparison chart per pair with one row per cluster, escaped names', () => {
    const hostile = input();
    hostile.clusters[0]!.cluster_name = '<img src=x onerror=alert(1)>';
    const html = renderComparisons(computeQuality(hostile)) + renderQuality(computeQuality(hostile));
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img src=x');
    expect(html.match(/<figure class="compare"/g)).toHaveLength(2);
    expect(html.match(/id="compare-agent-1-clusters"/g)).toHaveLength(1);
    expect(html.match(/<g class="compare-row/g)).toHaveLength(2 * (3 + 3));
  });
});

describe('held-out agreement in the quality section', () => {
  it('shows the figures of heldout.json with what they measure, and says when it was not measured', () => {
    const heldout = {
      enabled: true as const, method: 'nearest-category' as const, analyzer: 'offline analyzer', settings: { fraction: 0.1, max_runs: 200, seed: 'heldout' }, prompt: null,
      categorized_runs: 20, categories: 2, categories_sampled: 2, sampled_runs: 4, requests: 0, agreed: 3, other_category: 1, none_fits: 0, unanswered: 0,
      agreement: 0.75, none_fits_rate: 0, kappa: 0.5, chance_agreement: 0.5, runs: [],
    };
    const q = computeQuality({ ...input(), heldout });
    expect(q.agreement.held_out).toMatchObject({ enabled: true, agreement: 0.75, kappa: 0.5, sampled_runs: 4 });
    const md = renderQualityMarkdown(q).join('\n');
    expect(md).toContain("Held-out agreement: 75.0% (3 of 4 sampled runs, 2 of 2 categories), Cohen's kappa 0.500, none fits 0.0%; re-assigned by offline analyzer.");
    expect(md).toContain('not whether a reader would sort the runs the same way');
    expect(renderQualityMarkdown(computeQuality({ ...input(), heldout: { enabled: false, reason: 'off' } })).join('\n')).toContain('Held-out agreement: not measured. The held-out agreement check was turned off');
    expect(renderQualityMarkdown(computeQuality(input())).join('\n')).toContain('Held-out agreement: not measured (this categorization has no heldout.json).');
  });
});
