// A corpus of bad inputs (malformed, empty, truncated, wrongly typed and
// non-UTF-8 run files; unicode and hostile folder names) through the whole
// pipeline in one workspace: the chain succeeds, every planted run is
// accounted for in the report (found in the tree = task list + dropped), and
// nothing is written outside out/ and the answer store.
import { cpSync, existsSync, lstatSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempWorkspace } from './workspace.ts';
import type { TempWorkspace } from './workspace.ts';

/** One run of the sample (haiku), copied as the only run of each planted task. */
const TEMPLATE = 'examples/perturbed_queries/os/13584542-872b-42d8-b299-866967b5c3ef/o4-mini-2025-04-16/perturbed_query_37d67f70';
const PQ = 'o4-mini-2025-04-16/perturbed_query_37d67f70';
const SUMMARY = 'o4-mini-2025-04-16/perturbed_query_37d67f70/iterative_refinement_gpt-5-2025-08-07/agent_claude-haiku-4-5-20251001/refinement_summary.json';

/** Planted task folders: name, summary bytes (null: the template's), whether the run is selected. */
const PLANTED: [string, string | Buffer | null, boolean][] = [
  ['bad-malformed', '{ "success": tru', false],
  ['bad-empty', '', false],
  ['bad-truncated', '{"success": true, "final_score": 0.9, "execution_it', false],
  ['bad-top-level-array', '[true]', false],
  ['bad-not-utf8', Buffer.from([0x7b, 0x22, 0x73, 0xff, 0xfe, 0x22, 0x3a, 0x74, 0x72, 0x75, 0x65, 0x7d]), false],
  ['bad-wrong-types', '{"success": true, "final_score": "high", "execution_iterations": "many"}', true],
  ['tâche-ü-日本-🙂', null, true],
  ['$(touch pwned)', null, true],
  ['-rf --no-preserve-root', null, true],
  [' lead and trail ', null, true],
  ['quote\'"`;|&<>', null, true],
];

/** Every file outside out/, .nx, the store, the records Nx's keys were computed from (.cache/keys) and node_modules, with its size and modification time. */
function listing(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      if (['out', '.nx', 'node_modules', '.cache/llm-store', '.cache/keys'].includes(r)) continue;
      const st = lstatSync(join(root, r));
      if (st.isDirectory()) walk(r);
      else out.set(r, `${st.size}:${st.mtimeMs}`);
    }
  };
  walk('');
  return out;
}

describe('a bad-input corpus through the whole pipeline', () => {
  let ws: TempWorkspace;
  let before: Map<string, string>;
  let res: { code: number; out: string };

  beforeAll(() => {
    ws = tempWorkspace('meta-analysis-bad-corpus-');
    for (const [name, content] of PLANTED) {
      const dir = join(ws.root, 'examples/perturbed_queries/os', name);
      cpSync(join(ws.root, TEMPLATE), join(dir, PQ), { recursive: true });
      if (content !== null) writeFileSync(join(dir, SUMMARY), content);
    }
    before = listing(ws.root);
    res = ws.nx(['run', 'analysis:report']);
  });
  afterAll(() => ws?.dispose());

  it('succeeds and accounts for every run found in the tree', () => {
    expect(res.code, res.out).toBe(0);
    const data = JSON.parse(ws.read('out/analysis/report/report-data.json'));
    const cov = data.coverage;
    const selected = PLANTED.filter(([, , s]) => s).length;
    expect(cov.in_task_list).toBe(117 + selected);
    expect(cov.dropped.length).toBe(PLANTED.length - selected);
    expect(cov.found_in_tree).toBe(117 + PLANTED.length);
    expect(cov.found_in_tree).toBe(cov.in_task_list + cov.dropped.length);
    const ledger = JSON.parse(ws.read('out/analysis/task-list/runs.json'));
    for (const [name, , sel] of PLANTED) {
      const inLedger = ledger.runs.some((r: { task_id: string }) => r.task_id === name);
      expect(inLedger, name).toBe(sel);
    }
  });

  it('writes nothing outside out/, the store and the key records, and runs no folder name', () => {
    expect(listing(ws.root)).toEqual(before);
    expect(existsSync(join(ws.root, 'pwned'))).toBe(false);
    expect(readFileSync(join(ws.root, 'out/analysis/task-list/runs.json'), 'utf8')).toContain('tâche-ü-日本-🙂');
  });
});
