// npm run plan:summary: the plan's run log as Markdown for the CI run's
// summary page. The log here is typed with the plan's own types, so a change
// of the log's shape fails the type check, and the script's schema rejects it.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TargetPlan } from '../executors/plan/targets.ts';
import type { StagePlan } from '../stages/plan/pricing.ts';
import { planTotal } from '../stages/plan/pricing.ts';
import { main, planMarkdown, PlanLog } from '../scripts/plan-summary.ts';

const stage = (over: Partial<StagePlan>): StagePlan => ({
  stage: 'summarize', analyzer: 'llm', provider: 'openai', model: 'gpt-5-2025-08-07', sources: { provider: 'defaults', model: 'defaults' },
  reused: 107, toPay: 10, input_tokens: 12000, input_tokens_method: 'o200k_base', output_tokens_per_call: 400, output_tokens_source: 'median of 107 stored answers',
  cost_usd_low: 0.0123, cost_usd_high: 0.0456, exact: true, batch: false, note: '117 runs', ...over,
});
const stages = [stage({}), stage({ stage: 'categorize', toPay: 3, reused: 0, exact: false, note: 'mode from-scratch' }), stage({ stage: 'cluster', provider: 'offline', toPay: 0, reused: 0, cost_usd_low: 0, cost_usd_high: 0, note: '' })];
const targets: Pick<TargetPlan, 'target' | 'verdict' | 'why'>[] = [
  { target: 'task-list', verdict: 'runs', why: ['10 runs added'] },
  { target: 'summarize', verdict: 'runs', why: ['task-list/runs.json changed', 'a | in a reason'] },
  { target: 'report', verdict: 'runs if upstream output changes', why: [] },
];
/** What the plan executor writes (writeRunLog adds finished_at). */
const log = { finished_at: '2026-01-02T03:04:05.000Z', analysis: 'analysis', runs: 127, targets, stages, total: planTotal(stages) };

describe('plan summary', () => {
  let dir: string | null = null;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = null;
    vi.restoreAllMocks();
  });

  it('renders the totals, each target with its reasons and each stage with its price as Markdown tables', () => {
    const md = planMarkdown(PlanLog.parse(log));
    expect(md).toContain('### Plan: analysis');
    expect(md).toContain('13 call(s) to pay, about $0.0246 to $0.0912; 107 answer(s) already stored; 127 runs selected.');
    expect(md).toContain('| task-list | runs | 10 runs added |');
    expect(md).toContain('| summarize | runs | task-list/runs.json changed; a \\| in a reason |');
    expect(md).toContain('| report | runs if upstream output changes |   |');
    expect(md).toContain('| summarize | openai:gpt-5-2025-08-07 | 107 | 10 | $0.0123 to $0.0456; 117 runs |');
    expect(md).toContain('| categorize | openai:gpt-5-2025-08-07 | 0 | 3 | $0.0123 to $0.0456 (estimated); mode from-scratch |');
    expect(md).toContain('| cluster | offline analyzer | 0 | 0 | no cost |');
    // Every table row has as many cells as its header.
    for (const row of md.split('\n').filter((l) => l.startsWith('|'))) expect(row.split(/(?<!\\)\|/).length === 5 || row.split(/(?<!\\)\|/).length === 7, row).toBe(true);
  });

  function workspace(withLog: boolean): string {
    dir = mkdtempSync(join(tmpdir(), 'plan-summary-'));
    writeFileSync(join(dir, 'pipeline.yaml'), 'data:\n  root: runs\nanalyses:\n  - name: analysis\n    agents: [a]\n');
    if (withLog) {
      mkdirSync(join(dir, 'out/analysis/logs'), { recursive: true });
      writeFileSync(join(dir, 'out/analysis/logs/plan.json'), JSON.stringify(log));
    }
    return dir;
  }

  it("appends to GitHub's summary page when $GITHUB_STEP_SUMMARY is set", () => {
    const root = workspace(true);
    const page = join(root, 'summary.md');
    writeFileSync(page, 'before\n');
    vi.spyOn(console, 'log').mockImplementation(() => {});
    expect(main([], root, { GITHUB_STEP_SUMMARY: page })).toBe(0);
    const text = readFileSync(page, 'utf8');
    expect(text.startsWith('before\n### Plan: analysis\n')).toBe(true);
    expect(text).toContain('| summarize | openai:gpt-5-2025-08-07 | 107 | 10 |');
  });

  it('says so and fails when an analysis has no plan log', () => {
    const root = workspace(false);
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(main([], root, {})).toBe(1);
    expect(String(out.mock.calls[0]?.[0])).toContain('No plan: `nx run analysis:plan` did not write out/analysis/logs/plan.json.');
    expect(err).toHaveBeenCalledWith('plan summary: no plan for analysis');
  });
});
