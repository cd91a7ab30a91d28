// Every run found in the tree is in the report: a run dropped at selection (a
// malformed run file) is counted under "Found in the tree" and listed with its
// file and reason in report.md, report.html and report-data.json.
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import categorize from '../executors/categorize/executor.ts';
import cluster from '../executors/cluster/executor.ts';
import report from '../executors/report/executor.ts';
import summarize from '../executors/summarize/executor.ts';
import taskList from '../executors/task-list/executor.ts';
import { isRunProblem } from '../stages/report/assemble.ts';

const REPO = resolve(import.meta.dirname, '..');
let root: string;
let broken: string;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'report-coverage-'));
  cpSync(join(REPO, 'examples/perturbed_queries'), join(root, 'data'), { recursive: true });
  cpSync(join(REPO, 'prompts'), join(root, 'prompts'), { recursive: true });
  writeFileSync(join(root, 'pipeline.yaml'), 'data:\n  root: data\nanalyses:\n  - name: small\n    agents: [claude-haiku-4-5-20251001]\n    domains: [os]\n');
  // Truncate the refinement summary of the first run of the domain.
  const found = (readdirSync(join(root, 'data/os'), { recursive: true, encoding: 'utf8' }) as string[])
    .filter((f) => f.endsWith('agent_claude-haiku-4-5-20251001/refinement_summary.json'))
    .sort();
  broken = `os/${found[0]}`;
  writeFileSync(join(root, 'data', broken), readFileSync(join(root, 'data', broken), 'utf8').slice(0, 40));
  vi.spyOn(console, 'log').mockImplementation(() => {});
  vi.spyOn(console, 'error').mockImplementation(() => {});
  const ctx = { root, projectName: 'small' };
  for (const run of [taskList, summarize, categorize, cluster, report]) expect(await run({ analysis: 'small' }, ctx)).toEqual({ success: true });
});
afterAll(() => {
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

describe('coverage starts from every run found in the tree', () => {
  it('counts and lists the dropped run in report-data.json, report.md and report.html', () => {
    const data = JSON.parse(readFileSync(join(root, 'out/small/report/report-data.json'), 'utf8'));
    const inList = data.coverage.in_task_list as number;
    expect(data.coverage.found_in_tree).toBe(inList + 1);
    expect(data.coverage.dropped).toEqual([expect.objectContaining({ file: broken, reason: expect.stringMatching(/invalid JSON.*run skipped/) })]);
    const md = readFileSync(join(root, 'out/small/report/report.md'), 'utf8');
    expect(md).toContain(`| Found in the tree | ${inList + 1} | - |`);
    expect(md).toContain('| Dropped at selection | 1 | - |');
    expect(md).toContain('### Runs dropped at selection (1)');
    expect(md).toContain(broken.split('/').pop()!.replace(/_/g, '\\_').slice(0, 10));
    const html = readFileSync(join(root, 'out/small/report/report.html'), 'utf8');
    expect(html).toContain('Runs dropped at selection (1)');
    expect(html).toContain(broken);
  });

  it('tells run problems from other problems by the path the task list reports', () => {
    expect(isRunProblem('os/t/o4/perturbed_query_1/iterative_refinement_x/agent_a/refinement_summary.json')).toBe(true);
    expect(isRunProblem('os/t/o4/perturbed_query_1/perturbed_query_1.json')).toBe(true);
    expect(isRunProblem('os/t/o4/perturbed_query_1/iterative_refinement_x/agent_a')).toBe(true);
    expect(isRunProblem('task_filters/filter.json')).toBe(false);
    expect(isRunProblem('os/t')).toBe(false);
  });
});
