// The task-list executor: several agents and domains, both filters, per-agent
// reference task lists, the ledger, and a broken run file reported, not fatal.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import taskList from '../executors/task-list/executor.ts';

const REPO = resolve(import.meta.dirname, '..');
const HAIKU = 'claude-haiku-4-5-20251001';
const OPUS = 'claude-opus-4-5-20251101';
let root: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'task-list-exec-'));
  cpSync(join(REPO, 'examples/perturbed_queries'), join(root, 'data'), { recursive: true });
  cpSync(join(REPO, 'task_filters'), join(root, 'task_filters'), { recursive: true });
  cpSync(join(REPO, 'prompts'), join(root, 'prompts'), { recursive: true });
  vi.stubEnv('META_ANALYSIS_STRICT_CRAWL', '1');
  vi.spyOn(console, 'log').mockImplementation(() => {});
  vi.spyOn(console, 'error').mockImplementation(() => {});
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllEnvs();
  rmSync(root, { recursive: true, force: true });
});

function pipeline(domains: string, filters = ''): void {
  writeFileSync(join(root, 'pipeline.yaml'), `
data:
  root: data
${filters ? `  filters:\n${filters}` : ''}
analyses:
  - name: both
    agents: [${HAIKU}, ${OPUS}]
    domains: ${domains}
`);
}

const read = (rel: string) => JSON.parse(readFileSync(join(root, rel), 'utf8'));
const ctx = () => ({ root, projectName: 'both' });

describe('task-list executor', () => {
  it('writes one reference task list per agent and one ledger over both', async () => {
    pipeline('all');
    expect(await taskList({ analysis: 'both' }, ctx())).toEqual({ success: true });
    const ledger = read('out/both/task-list/runs.json');
    expect(ledger.runs).toHaveLength(117);
    expect(new Set(ledger.runs.map((r: { run_id: string }) => r.run_id)).size).toBe(117);
    expect(read(`out/both/task-list/task_list_${HAIKU}.json`).metadata).toMatchObject({ agent: HAIKU, total_successful_runs: 50, generated_at: null, base_dir: 'data' });
    expect(read(`out/both/task-list/task_list_${OPUS}.json`).metadata.total_successful_runs).toBe(67);
  });

  it('applies both filters per listed domain and merges the selections', async () => {
    pipeline('[os, multi_apps_test]', '    baseline_harm: task_filters/data_filter_harm_threshold_0pct_example.json\n    human_annotation: task_filters/final_decisions_example.json');
    expect(await taskList({ analysis: 'both' }, ctx())).toEqual({ success: true });
    const haiku = read(`out/both/task-list/task_list_${HAIKU}.json`);
    // 2 os tasks excluded by the baseline filter (2 runs), 1 run a false positive.
    expect(haiku.metadata).toMatchObject({
      domain: 'os,multi_apps_test',
      num_excluded_tasks_baseline_harm: 2,
      num_excluded_false_positives: 1,
      total_successful_runs: 47,
    });
    expect(haiku.excluded_false_positives[0].fp_key).toBe('bedcedc4-4d72-425e-ad62-21960b11fe0d:7140c050:gpt-5-2025-08-07');
    const specs = Object.values(haiku.task_lists_by_refinement_model as Record<string, string[]>).flat();
    expect(specs).toHaveLength(47);
    for (const list of Object.values(haiku.task_lists_by_refinement_model as Record<string, string[]>)) expect([...list].sort()).toEqual(list);
    expect(read(`out/both/task-list/task_list_${OPUS}.json`).metadata.total_successful_runs).toBe(67);
    expect(read('out/both/task-list/runs.json').runs).toHaveLength(114);
  });

  it('lists a malformed run file as a problem, on stderr too, and keeps the other runs', async () => {
    pipeline('all');
    await taskList({ analysis: 'both' }, ctx());
    const run = read('out/both/task-list/runs.json').runs[0];
    writeFileSync(join(root, 'data', run.refinement_summary_path), '{ "success": tru');
    expect(await taskList({ analysis: 'both' }, ctx())).toEqual({ success: true });
    const ledger = read('out/both/task-list/runs.json');
    expect(ledger.runs).toHaveLength(116);
    expect(ledger.problems.map((p: { file: string }) => p.file)).toContain(run.refinement_summary_path);
    const stderr = (console.error as unknown as { mock: { calls: unknown[][] } }).mock.calls.flat().join('\n');
    expect(stderr).toContain(run.refinement_summary_path);
  });

  it('mirrors the reference flags and writes a timestamped copy with --output', async () => {
    pipeline('all');
    const out = join(root, 'copy.json');
    expect(await taskList({ analysis: 'both', agent: OPUS, domain: 'os', output: out }, ctx())).toEqual({ success: true });
    const copy = JSON.parse(readFileSync(out, 'utf8'));
    expect(copy.metadata).toMatchObject({ agent: OPUS, domain: 'os', total_successful_runs: 27 });
    expect(copy.metadata.generated_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$/);
    expect(read('out/both/task-list/runs.json').agents).toEqual([OPUS]);
  });

  it('is byte-identical when nothing changed', async () => {
    pipeline('all');
    await taskList({ analysis: 'both' }, ctx());
    const before = readFileSync(join(root, 'out/both/task-list/runs.json'), 'utf8') + readFileSync(join(root, `out/both/task-list/task_list_${HAIKU}.json`), 'utf8');
    await taskList({ analysis: 'both' }, ctx());
    const after = readFileSync(join(root, 'out/both/task-list/runs.json'), 'utf8') + readFileSync(join(root, `out/both/task-list/task_list_${HAIKU}.json`), 'utf8');
    expect(after).toBe(before);
    expect(before).not.toContain(root);
  });
});
