// Upstream index files are checked on read against their one schema, and
// handed on as read: the check never rewrites a value (key order, keys the
// schema does not name), so nothing downstream depends on zod's output.
import { describe, expect, it } from 'vitest';
import { categorizationDocument } from '../stages/categorize/format.ts';
import { checkUpstreamFile, UpstreamFormatError } from '../stages/file-format.ts';
import { ledgerFile } from '../stages/task-list/ledger.ts';

const run = (i: number) => ({
  run_id: `os:t${i}:p:m:a`, agent: 'a', domain: 'os', task_id: `t${i}`, perturbed_id: 'p', refinement_model: 'm',
  task_spec: 's', refinement_summary_path: 'r.json', perturbed_query_path: 'q.json', input_digest: 'd',
});
const ledger = () => ({ analysis: 'demo', data_root: 'data', agents: ['a'], task_list_files: { a: 'x.json' }, runs: [run(0), run(1)], problems: [] });

describe('checkUpstreamFile', () => {
  it('returns the value as read: same object, key order and unknown keys kept', () => {
    const value = { extra: 1, ...ledger() };
    const read = checkUpstreamFile(ledgerFile, value, '/w/out/demo/task-list/runs.json', 'task-list', 'demo');
    expect(read).toBe(value);
    expect(Object.keys(read)).toEqual(['extra', 'analysis', 'data_root', 'agents', 'task_list_files', 'runs', 'problems']);
  });

  it('names the file, each field path, what was expected and the target to re-run', () => {
    const value = ledger() as Record<string, unknown>;
    (value['runs'] as Record<string, unknown>[])[1]!['input_digest'] = null;
    delete value['agents'];
    let err: unknown;
    try {
      checkUpstreamFile(ledgerFile, value, '/w/out/demo/task-list/runs.json', 'task-list', 'demo');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UpstreamFormatError);
    const e = err as UpstreamFormatError;
    expect(e.file).toBe('/w/out/demo/task-list/runs.json');
    expect(e.issues).toEqual(['agents: Invalid input: expected array, received undefined', 'runs[1].input_digest: Invalid input: expected string, received null']);
    expect(e.message).toBe(
      '/w/out/demo/task-list/runs.json: not what the task-list target writes\n' +
        '  - agents: Invalid input: expected array, received undefined\n' +
        '  - runs[1].input_digest: Invalid input: expected string, received null\n' +
        'Run the task-list target again (nx run demo:task-list).',
    );
  });

  it('lists at most ten problems', () => {
    const value = { ...ledger(), runs: Array.from({ length: 12 }, (_, i) => ({ ...run(i), agent: i })) };
    const e = (() => {
      try {
        checkUpstreamFile(ledgerFile, value, 'runs.json', 'task-list');
      } catch (err) {
        return err as UpstreamFormatError;
      }
      throw new Error('no error');
    })();
    expect(e.issues).toHaveLength(11);
    expect(e.issues[10]).toBe('... and 2 more problems');
    expect(e.message).toContain('nx run <analysis>:task-list');
  });

  it('a categorization without what lock-taxonomy records is not what categorize writes', () => {
    const doc = {
      categorization: { categories: [] },
      statistics: { total_tasks: 0, total_categories: 0, total_examples: 0, input_tokens: 0, output_tokens: 0, total_tokens: 0, cost: '0.00000000', cost_known: true, categorized_runs: 0, unassigned_runs: 0, verified_trigger_phrases: 0 },
      metadata: { analyzer: 'offline', mode: 'offline-global', prompts: {}, built_with: {}, batches: [] },
      unassigned: [],
    };
    expect(() => checkUpstreamFile(categorizationDocument, doc, 'categorization.json', 'categorize', 'demo')).toThrow(/metadata\.summary_digests: Invalid input: expected record, received undefined/);
  });
});
