// The task-list executor: several agents and domains, both filters, per-agent
// reference task lists, the ledger, and a broken run file reported, not fatal.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
/** Every file of a folder with its content. */
const snapshot = (rel: string) => Object.fromEntries(readdirSync(join(root, rel)).sort().map((n) => [n, readFileSync(join(root, rel, n), 'utf8')]));

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
    // The analysis' own outputs are not written by an overridden selection.
    expect(existsSync(join(root, 'out/both/task-list'))).toBe(false);
  });

  it('leaves the analysis\' own outputs as they were with any override', async () => {
    pipeline('all');
    await taskList({ analysis: 'both' }, ctx());
    const before = snapshot('out/both/task-list');
    const out = join(root, 'my_list.json');
    expect(await taskList({ analysis: 'both', agent: HAIKU, domain: 'os', output: out }, ctx())).toEqual({ success: true });
    expect(JSON.parse(readFileSync(out, 'utf8')).metadata).toMatchObject({ agent: HAIKU, domain: 'os' });
    for (const o of [{ agent: OPUS }, { domain: 'os' }, { refinement_model: 'gpt-5-2025-08-07' }, { perturbation_model: 'o4-mini-2025-04-16' }, { base_dir: 'data' }, { data_filter: '' }]) {
      expect(await taskList({ analysis: 'both', ...o }, ctx()), JSON.stringify(o)).toEqual({ success: true });
    }
    expect(snapshot('out/both/task-list')).toEqual(before);
    expect(read('out/both/task-list/runs.json').runs).toHaveLength(117);
  });

  it('stops on a malformed, non-UTF-8, wrongly shaped or unreadable filter file, naming file and key, outputs untouched', async () => {
    pipeline('all');
    await taskList({ analysis: 'both' }, ctx());
    const before = snapshot('out/both/task-list');
    const cases: [string, string | Buffer, string][] = [
      ['baseline_harm', '{ "os": { "agent_x": [', 'data.filters.baseline_harm'],
      ['baseline_harm', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d]), 'data.filters.baseline_harm'],
      ['baseline_harm', '["not", "an", "object"]', 'data.filters.baseline_harm'],
      ['baseline_harm', '{ "os": 3 }', 'data.filters.baseline_harm'],
      ['human_annotation', '{ "a": 1, "b": 2 }', 'data.filters.human_annotation'],
      ['human_annotation', '"just a string"', 'data.filters.human_annotation'],
    ];
    for (const [key, content, yamlKey] of cases) {
      writeFileSync(join(root, 'bad_filter.json'), content);
      pipeline('[os]', `    ${key}: bad_filter.json`);
      const errors = vi.mocked(console.error);
      errors.mockClear();
      expect(await taskList({ analysis: 'both' }, ctx()), String(content)).toEqual({ success: false });
      const text = errors.mock.calls.flat().join('\n');
      expect(text).toContain('pipeline.yaml: invalid configuration');
      expect(text).toContain(yamlKey);
      expect(text).toContain('bad_filter.json');
      expect(text).toContain('expected a');
      expect(snapshot('out/both/task-list')).toEqual(before);
    }
  });

  it('does not hang on a FIFO as a filter file', async () => {
    execFileSync('mkfifo', [join(root, 'fifo.json')]);
    // Named by a flag (pipeline.yaml's paths are checked earlier, by kind).
    pipeline('[os]');
    expect(await taskList({ analysis: 'both', human_annotation_filter: 'fifo.json' }, ctx())).toEqual({ success: false });
    const text = vi.mocked(console.error).mock.calls.flat().join('\n');
    expect(text).toContain('--human_annotation_filter: fifo.json: not a regular file (a named pipe)');
    pipeline('[os]', '    human_annotation: fifo.json');
    expect(await taskList({ analysis: 'both' }, ctx())).toEqual({ success: false });
  });

  it('keeps one bad entry of an otherwise valid filter a problem', async () => {
    writeFileSync(join(root, 'f.json'), JSON.stringify({ os: { [`agent_${HAIKU}`]: ['a', 3], [`agent_${OPUS}`]: [] } }));
    pipeline('[os]', '    baseline_harm: f.json');
    expect(await taskList({ analysis: 'both' }, ctx())).toEqual({ success: true });
    expect(read('out/both/task-list/runs.json').problems.map((p: { message: string }) => p.message).join('\n')).toContain('not strings; ignored');
  });

  it('stops on a selection of zero runs unless allow_empty_selection is set', async () => {
    pipeline('all');
    await taskList({ analysis: 'both' }, ctx());
    const before = snapshot('out/both/task-list');
    writeFileSync(join(root, 'pipeline.yaml'), `data:\n  root: data\nanalyses:\n  - name: both\n    agents: [nobody]\n`);
    expect(await taskList({ analysis: 'both' }, ctx())).toEqual({ success: false });
    expect(vi.mocked(console.error).mock.calls.flat().join('\n')).toContain('zero runs');
    expect(snapshot('out/both/task-list')).toEqual(before);
    // A filter that excludes everything.
    writeFileSync(join(root, 'all.json'), JSON.stringify({ os: Object.fromEntries([HAIKU, OPUS].map((a) => [`agent_${a}`, readdirSync(join(root, 'data/os'))])) }));
    pipeline('[os]', '    baseline_harm: all.json');
    expect(await taskList({ analysis: 'both' }, ctx())).toEqual({ success: false });
    expect(snapshot('out/both/task-list')).toEqual(before);
    // An empty tree, accepted when the analysis says so.
    mkdirSync(join(root, 'empty'));
    writeFileSync(join(root, 'pipeline.yaml'), `data:\n  root: empty\nanalyses:\n  - name: both\n    agents: [${HAIKU}]\n`);
    expect(await taskList({ analysis: 'both' }, ctx())).toEqual({ success: false });
    writeFileSync(join(root, 'pipeline.yaml'), `data:\n  root: empty\nanalyses:\n  - name: both\n    agents: [${HAIKU}]\n    allow_empty_selection: true\n`);
    expect(await taskList({ analysis: 'both' }, ctx())).toEqual({ success: true });
    expect(read('out/both/task-list/runs.json').runs).toEqual([]);
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
