// The plan's "why": comparing an output's input record with the inputs of
// now, and the selection with the ledger on disk.
import { describe, expect, it } from 'vitest';
import { describeInputChange } from '../stages/input-record.ts';
import type { InputRecord } from '../stages/input-record.ts';
import { selectionChange } from '../executors/plan/targets.ts';
import type { LedgerRun } from '../stages/task-list/ledger.ts';

const record: InputRecord = {
  settings: 'a'.repeat(32),
  node: 'v24.1.0',
  endpoint: null,
  files: { 'prompts/cluster.md': '1111' },
  code: { 'executors/cluster/executor.ts': '2222', 'stages/cluster/llm.ts': '3333' },
  packages: { openai: '7.57.0' },
  upstream: { 'task-list/runs.json': '4444', 'categorize/categorization.json': '5555' },
  workspace: { 'nx.json': '6666', 'tsconfig.base.json': '7777' },
};

const run = (id: string, digest = 'd'): LedgerRun => ({
  run_id: id, agent: 'a', domain: 'os', task_id: 't', perturbed_id: 'p', refinement_model: 'm', task_spec: 's',
  refinement_summary_path: `${id}/r.json`, perturbed_query_path: `${id}/q.json`, input_digest: digest,
});

describe('describeInputChange', () => {
  it('is empty when nothing changed', () => {
    expect(describeInputChange(record, structuredClone(record))).toEqual([]);
  });

  it('names each group that changed, with the files and versions', () => {
    const now: InputRecord = {
      ...record,
      settings: 'b'.repeat(32),
      node: 'v24.2.0',
      endpoint: '{"base_url":"http://proxy"}',
      files: { 'prompts/cluster.md': '9999' },
      code: { 'executors/cluster/executor.ts': '2222', 'stages/cluster/llm.ts': 'changed', 'stages/new.ts': 'x' },
      packages: { openai: '7.58.0' },
      upstream: { 'task-list/runs.json': '4444', 'categorize/categorization.json': 'other' },
    };
    expect(describeInputChange(record, now)).toEqual([
      'its settings in pipeline.yaml changed',
      'prompts/cluster.md changed',
      'code changed: stages/cluster/llm.ts, +stages/new.ts',
      'packages changed: openai 7.57.0 -> 7.58.0',
      'Node v24.1.0 -> v24.2.0',
      'the provider endpoint changed',
      'the output of categorize changed since it was built (categorize/categorization.json)',
    ]);
  });

  it('lists files that appear or disappear, and shortens long code lists', () => {
    const code = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`f${i}.ts`, 'x']));
    const now = { ...record, files: { 'analyses/a/taxonomy.lock.json': 'l' }, code: { ...record.code, ...code } };
    const why = describeInputChange(record, now);
    expect(why[0]).toBe('the files it reads changed (+analyses/a/taxonomy.lock.json, -prompts/cluster.md)');
    expect(why[1]).toBe('code changed: +f0.ts, +f1.ts, +f2.ts and 3 more');
  });
});

describe('selectionChange', () => {
  it('counts runs added, removed and changed by run id', () => {
    const before = [run('r1'), run('r2'), run('r3')];
    const now = [run('r2'), run('r3', 'other digest'), run('r4'), run('r5')];
    expect(selectionChange(before, now)).toEqual({ added: 2, removed: 1, changed: 1 });
    expect(selectionChange(before, [...before].reverse())).toEqual({ added: 0, removed: 0, changed: 0 });
  });
});
