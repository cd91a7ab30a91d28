import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { inputDigest, pyPathJoin, selectRuns } from '../stages/task-list/select.ts';
import { TASK_LIST_DEFAULTS, TaskListOptionsError } from '../stages/task-list/format.ts';
import { defaultTaskListFileName } from '../stages/task-list/names.ts';
import { readTaskList } from '../stages/task-list/read-list.ts';
import { compareCodePoints } from '../stages/util/order.ts';
import type { SelectRunsOptions, SelectRunsResult } from '../stages/task-list/format.ts';
import { parseJsonBytes, readJsonFileSync, writeFileAtomic, writeIfChanged } from '../stages/util/fs.ts';
import type { EntryKind, TreeIo } from '../stages/util/fs.ts';
import { PyFloat, pyFloat, pyFloatRepr, pyJsonDumps, pyJsonParse, pyTruthy, stableJson } from '../stages/util/pyjson.ts';

const FIXTURES = new URL('./fixtures/task-list/', import.meta.url).pathname;

// Every read selection makes must come from the crawl (the data the cache fingerprint covers).
vi.stubEnv('META_ANALYSIS_STRICT_CRAWL', '1');

interface CaseSpec {
  name: string;
  tree: string;
  cwd?: string;
  args: Record<string, string>;
  crash?: { offenders: { path: string; replace_with?: string }[] };
  expect_problem_files?: string[];
  ours_differs?: { expected_from: string; metadata: Record<string, string>; why: string };
}

const { cases } = JSON.parse(readFileSync(join(FIXTURES, 'cases.json'), 'utf8')) as { cases: CaseSpec[] };

/** The reference's command-line flags, as the case gives them, to our options (paths resolved from the case's cwd). */
function optionsFor(c: CaseSpec): SelectRunsOptions {
  const cwd = join(FIXTURES, 'trees', c.tree, c.cwd ?? '.');
  const path = (typed: string) => ({ typed, resolved: resolve(cwd, typed) });
  const a = c.args;
  return {
    baseDir: path(a.base_dir ?? TASK_LIST_DEFAULTS.baseDir),
    domain: a.domain ?? TASK_LIST_DEFAULTS.domain,
    perturbationModel: a.perturbation_model ?? TASK_LIST_DEFAULTS.perturbationModel,
    refinementModel: a.refinement_model ?? null,
    agent: a.agent ?? TASK_LIST_DEFAULTS.agent,
    dataFilter: a.data_filter !== undefined ? path(a.data_filter) : null,
    humanAnnotationFilter: a.human_annotation_filter !== undefined ? path(a.human_annotation_filter) : null,
  };
}

function golden(name: string): string {
  return readFileSync(join(FIXTURES, 'golden', `${name}.json`), 'utf8');
}

const results = new Map<string, SelectRunsResult>();
async function resultFor(name: string): Promise<SelectRunsResult> {
  let r = results.get(name);
  if (r === undefined) {
    const c = cases.find((x) => x.name === name);
    if (c === undefined) throw new Error(`no case ${name}`);
    r = await selectRuns(optionsFor(c));
    results.set(name, r);
  }
  return r;
}

describe('selectRuns against the reference script (golden outputs)', () => {
  for (const c of cases) {
    it(c.name, async () => {
      const result = await resultFor(c.name);
      let text = golden(c.ours_differs?.expected_from ?? c.name);
      let expected = pyJsonParse(text) as Record<string, Record<string, unknown>>;
      if (c.ours_differs) {
        Object.assign(expected.metadata as object, c.ours_differs.metadata);
        text = pyJsonDumps(expected);
        // The reference really does differ on this case.
        expect(pyJsonDumps(result.taskList)).not.toBe(golden(c.name));
      }
      // Byte for byte what the reference writes (indent 4, \u escapes, 75.0, NaN).
      expect(pyJsonDumps(result.taskList)).toBe(text);
      // The same values and key order.
      expect(result.taskList).toEqual(expected);
      expect(JSON.stringify(result.taskList)).toBe(JSON.stringify(expected));
      if (!/\b(NaN|Infinity)\b/.test(text)) {
        // As JavaScript reads the golden (75.0 reads as 75).
        expect(JSON.stringify(result.taskList)).toBe(JSON.stringify(JSON.parse(text)));
      }

      const problemFiles = new Set(result.problems.map((p) => p.file));
      for (const f of c.expect_problem_files ?? []) expect(problemFiles, `problem for ${f}`).toContain(f);
      // One run per selected task detail (but those whose perturbed query summarize could not read: each a problem), and nothing absolute in the result.
      const leftOut = result.problems.filter((p) => p.message.endsWith('run left out of the analysis')).length;
      expect(result.runs.length).toBe(result.taskList.metadata.total_successful_runs - leftOut);
      expect(JSON.stringify(result)).not.toContain(FIXTURES);
    });
  }

  it('crash cases: each offender is reported and the other runs are still listed', async () => {
    for (const c of cases.filter((x) => x.crash)) {
      const result = await resultFor(c.name);
      expect(result.problems.length, c.name).toBeGreaterThanOrEqual(c.crash?.offenders.length ?? 0);
    }
    const crash = await resultFor('crash-summaries');
    expect(crash.runs.map((r) => r.run_id)).toEqual([
      'os:t1:q1:rmX:claude-haiku-4-5-20251001',
      'os:t3:q5:rmX:claude-haiku-4-5-20251001',
    ]);
    const messages = crash.problems.map((p) => p.message);
    expect(messages.some((m) => m.includes('expected a JSON object at the top level, found an array'))).toBe(true);
    expect(messages.some((m) => m.includes('found a string'))).toBe(true);
    expect(messages.some((m) => m.includes('not valid UTF-8'))).toBe(true);
    expect(messages.some((m) => m.includes('perturbation-model folder'))).toBe(true);
  });
});

describe('selectRuns: runs and problems', () => {
  it('lists each selected run once, sorted by run id, with paths relative to the data root', async () => {
    const { runs } = await resultFor('selection');
    expect(runs.map((r) => r.run_id)).toEqual([
      'os:t01:aaaa0001:gpt-5:claude-haiku-4-5-20251001',
      'os:t01:aaaa0003:gpt-5:claude-haiku-4-5-20251001',
      'os:t01:aaaa0007:gpt-5:claude-haiku-4-5-20251001',
      'os:t01:aaaa0008:gpt-5:claude-haiku-4-5-20251001',
      'os:t01:aaaa0011:gpt-5:claude-haiku-4-5-20251001',
      'os:t01:aaaa0015:gpt-5:claude-haiku-4-5-20251001',
      'os:t01:aaaa0020:gpt-5:claude-haiku-4-5-20251001',
      'os:t03.json:bbbb0002:gpt-5:claude-haiku-4-5-20251001',
    ]);
    const first = runs[0];
    expect(first).toEqual({
      run_id: 'os:t01:aaaa0001:gpt-5:claude-haiku-4-5-20251001',
      agent: 'claude-haiku-4-5-20251001',
      domain: 'os',
      task_id: 't01',
      perturbed_id: 'aaaa0001',
      refinement_model: 'gpt-5',
      task_spec: 'os:t01:aaaa0001',
      refinement_summary_path:
        'os/t01/o4-mini-2025-04-16/perturbed_query_aaaa0001/iterative_refinement_gpt-5/agent_claude-haiku-4-5-20251001/refinement_summary.json',
      perturbed_query_path: 'os/t01/o4-mini-2025-04-16/perturbed_query_aaaa0001/perturbed_query_aaaa0001.json',
      input_digest: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
    const data = join(FIXTURES, 'trees/selection/data');
    expect(first?.input_digest).toBe(
      inputDigest([
        { name: 'refinement_summary.json', bytes: readFileSync(join(data, first?.refinement_summary_path ?? '')) },
        { name: 'perturbed_query.json', bytes: readFileSync(join(data, first?.perturbed_query_path ?? '')) },
      ]),
    );
  });

  it('gives the same result whatever the base_dir spelling, apart from metadata and paths', async () => {
    const plain = await resultFor('selection');
    for (const name of ['base-dir-dot-slash', 'base-dir-parent', 'base-dir-double-slash']) {
      const other = await resultFor(name);
      expect(other.runs).toEqual(plain.runs);
      expect(other.problems).toEqual(plain.problems);
    }
  });

  it('reports problems sorted, and what the reference passes over in silence', async () => {
    const { problems } = await resultFor('selection');
    const sorted = [...problems].sort(
      (a, b) => compareCodePoints(a.file, b.file) || compareCodePoints(a.field ?? '', b.field ?? '') || compareCodePoints(a.message, b.message),
    );
    expect(problems).toEqual(sorted);
    const summary = (n: string) =>
      `os/t01/o4-mini-2025-04-16/perturbed_query_aaaa${n}/iterative_refinement_gpt-5/agent_claude-haiku-4-5-20251001/refinement_summary.json`;
    expect(problems).toContainEqual({
      file: summary('0003'),
      field: 'success',
      message: '"false" is not a boolean; run selected by its truthiness, as the reference does',
    });
    expect(problems).toContainEqual({
      file: summary('0019'),
      field: 'success',
      message: '0.0 is not a boolean; run not selected by its truthiness, as the reference does',
    });
    expect(problems).toContainEqual({ file: summary('0004'), field: 'success', message: 'missing; run not selected' });
    expect(problems.find((p) => p.file === summary('0005'))?.message).toMatch(/invalid JSON: Expecting property name/);
    expect(problems.find((p) => p.file === summary('0006'))?.message).toMatch(/the file is empty/);
    expect(problems.find((p) => p.file === summary('0017'))?.message).toMatch(/byte order mark/);

    const human = await resultFor('human-filter');
    expect(human.problems.map((p) => p.field)).toEqual([
      't1:p2:rmX:claude-haiku-4-5-20251001.final_decision',
      't5:p6:us.anthropic.claude-haiku-4-5-20251001-v1:0:claude-haiku-4-5-20251001',
    ]);
    // Two folders that name the same run: the one without its perturbed query file is left out, with that file named.
    const pid = await resultFor('pid-quirks');
    expect(pid.problems).toEqual([
      { file: 'os/t1/o4-mini-2025-04-16/perturbed_query_perturbed_query_c1/perturbed_query_c1.json', message: "not found (summarize needs this run's perturbed query, named after its folder); run left out of the analysis" },
    ]);
  });

  it('is deterministic', async () => {
    const c = cases.find((x) => x.name === 'two-models-defaults') as CaseSpec;
    const a = await selectRuns(optionsFor(c));
    const b = await selectRuns(optionsFor(c));
    expect(stableJson(a.runs)).toBe(stableJson(b.runs));
    expect(pyJsonDumps(a.taskList)).toBe(pyJsonDumps(b.taskList));
  });

  it('refuses option values that are paths', async () => {
    const base = optionsFor(cases[0] as CaseSpec);
    await expect(selectRuns({ ...base, domain: 'os/..' })).rejects.toThrow(TaskListOptionsError);
    await expect(selectRuns({ ...base, domain: '..' })).rejects.toThrow(/domain/);
    await expect(selectRuns({ ...base, perturbationModel: '' })).rejects.toThrow(/perturbation_model/);
    await expect(selectRuns({ ...base, refinementModel: 'a/b' })).rejects.toThrow(/refinement_model/);
    await expect(selectRuns({ ...base, agent: 'x/y' })).rejects.toThrow(/agent/);
  });
});

// An in-memory tree for I/O failures that a git checkout cannot hold.
type MemEntry = string | { errno: string; dir?: boolean };
function memIo(files: Record<string, MemEntry>): TreeIo {
  const fail = (code: string) => Object.assign(new Error(code), { code });
  const isDirPath = (p: string) => Object.keys(files).some((k) => k.startsWith(`${p}/`));
  const kind = (p: string): EntryKind | null => {
    const e = files[p];
    if (typeof e === 'string') return 'file';
    if (e !== undefined) return e.dir ? 'dir' : 'file';
    return isDirPath(p) ? 'dir' : null;
  };
  return {
    stat: async (p) => kind(p),
    async readDir(p) {
      const e = files[p];
      if (e !== undefined && typeof e !== 'string') throw fail(e.errno);
      const names = new Set<string>();
      for (const k of Object.keys(files)) if (k.startsWith(`${p}/`)) names.add(k.slice(p.length + 1).split('/')[0] as string);
      return [...names].reverse().map((name) => ({ name, kind: kind(`${p}/${name}`) }));
    },
    async readFile(p) {
      const e = files[p];
      if (typeof e === 'string') return new TextEncoder().encode(e);
      if (e !== undefined) throw fail(e.errno);
      throw fail(isDirPath(p) ? 'EISDIR' : 'ENOENT');
    },
  };
}

describe('selectRuns with I/O failures', () => {
  const PM = 'o4-mini-2025-04-16';
  const AG = 'agent_claude-haiku-4-5-20251001';
  const run = (task: string, pid: string) => `/r/data/os/${task}/${PM}/perturbed_query_${pid}`;
  const summary = (task: string, pid: string) => `${run(task, pid)}/iterative_refinement_m/${AG}/refinement_summary.json`;
  const ok = '{"success": true, "execution_iterations": 1, "final_score": 75.0}';
  const options: SelectRunsOptions = {
    baseDir: { typed: 'data', resolved: '/r/data' },
    domain: 'os',
    perturbationModel: PM,
    refinementModel: null,
    agent: 'claude-haiku-4-5-20251001',
    dataFilter: null,
    humanAnnotationFilter: { typed: 'ann.json', resolved: '/r/ann.json' },
  };
  const files: Record<string, MemEntry> = {
    [summary('t1', 'a')]: ok,
    [`${run('t1', 'a')}/perturbed_query_a.json`]: '{"original_instruction": "x"}',
    [summary('t1', 'b')]: ok,
    [summary('t1', 'c')]: ok,
    [`${run('t1', 'c')}/perturbed_query_c.json`]: { errno: 'EACCES' },
    [`/r/data/os/t2/${PM}`]: { errno: 'EACCES', dir: true },
    [summary('t3', 'd')]: { errno: 'EACCES' },
    '/r/ann.json': { errno: 'EIO' },
  };

  it('records a problem and goes on', async () => {
    const result = await selectRuns(options, memIo(files));
    expect(result.runs.map((r) => r.run_id)).toEqual(['os:t1:a:m:claude-haiku-4-5-20251001']);
    expect(result.problems).toEqual([
      { file: 'ann.json', message: 'human annotation filter: cannot read: I/O error (EIO); not applied' },
      { file: `os/t1/${PM}/perturbed_query_b/perturbed_query_b.json`, message: "not found (summarize needs this run's perturbed query, named after its folder); run left out of the analysis" },
      { file: `os/t1/${PM}/perturbed_query_c/perturbed_query_c.json`, message: 'cannot read: permission denied (EACCES)' },
      { file: `os/t1/${PM}/perturbed_query_c/perturbed_query_c.json`, message: 'unreadable (see above); run left out of the analysis' },
      { file: `os/t2/${PM}`, message: 'cannot list folder: permission denied (EACCES); skipped' },
      { file: `os/t3/${PM}/perturbed_query_d/iterative_refinement_m/${AG}/refinement_summary.json`, message: 'cannot read: permission denied (EACCES); run skipped' },
    ]);
    expect(pyJsonDumps(result.taskList.task_details_by_refinement_model)).toContain('"final_score": 75.0');
    // Listing order from the file system does not matter (memIo lists in reverse).
    expect(result.taskList.task_lists_by_refinement_model).toEqual({ m: ['os:t1:a', 'os:t1:b', 'os:t1:c'] });
  });

  it('digests the summary and the perturbed query; a run without a readable perturbed query is a problem, left out of the ledger', async () => {
    const { runs, problems, taskList } = await selectRuns(options, memIo(files));
    const bytes = (s: string) => new TextEncoder().encode(s);
    expect(runs.map((r) => r.run_id)).toEqual(['os:t1:a:m:claude-haiku-4-5-20251001']);
    expect(runs[0]?.input_digest).toBe(
      inputDigest([
        { name: 'refinement_summary.json', bytes: bytes(ok) },
        { name: 'perturbed_query.json', bytes: bytes('{"original_instruction": "x"}') },
      ]),
    );
    expect(problems).toContainEqual({ file: `os/t1/${PM}/perturbed_query_b/perturbed_query_b.json`, message: "not found (summarize needs this run's perturbed query, named after its folder); run left out of the analysis" });
    expect(problems).toContainEqual({ file: `os/t1/${PM}/perturbed_query_c/perturbed_query_c.json`, message: 'unreadable (see above); run left out of the analysis' });
    // The reference-format task list is the reference script's: it lists them (that script does not read the file).
    expect(taskList.task_lists_by_refinement_model).toEqual({ m: ['os:t1:a', 'os:t1:b', 'os:t1:c'] });
    const changed = await selectRuns(options, memIo({ ...files, [`${run('t1', 'a')}/perturbed_query_a.json`]: '{"original_instruction": "y"}' }));
    expect(changed.runs[0]?.input_digest).not.toBe(runs[0]?.input_digest);
  });
});

describe('pyPathJoin', () => {
  it('cleans up paths as pathlib does', () => {
    expect(pyPathJoin('./data/', ['a', 'b'])).toBe('data/a/b');
    expect(pyPathJoin('../pq', ['a'])).toBe('../pq/a');
    expect(pyPathJoin('', ['a'])).toBe('a');
    expect(pyPathJoin('.', [])).toBe('.');
    expect(pyPathJoin('/abs//x/./', ['a'])).toBe('/abs/x/a');
    expect(pyPathJoin('//host/x', ['a'])).toBe('//host/x/a');
    expect(pyPathJoin('///x', ['a'])).toBe('/x/a');
  });
});

describe('compareCodePoints', () => {
  it('orders by code point, so astral characters sort after U+FFxx', () => {
    const names = ['t-\u{1F600}', 't-\uff5a', 't-\u00e9', 'b', 'a', 'ab'];
    expect([...names].sort(compareCodePoints)).toEqual(['a', 'ab', 'b', 't-\u00e9', 't-\uff5a', 't-\u{1F600}']);
    expect([...names].sort()).not.toEqual([...names].sort(compareCodePoints)); // UTF-16 order differs
  });
});

describe('defaultTaskListFileName', () => {
  const base = { domain: 'multi_apps_test', agent: 'claude-haiku-4-5-20251001', refinementModel: null, dataFilter: null, humanAnnotationFilter: null };
  // Names checked against the reference script run without --output.
  it('follows the reference rule', () => {
    expect(defaultTaskListFileName(base, '20261125_164036')).toBe(
      'task_list_multi_apps_test_claude_haiku_4_5_20251001_all_refinement_models_20261125_164036.json',
    );
    expect(defaultTaskListFileName({ ...base, domain: 'ALL', dataFilter: 'x.json' }, '20261125_164036')).toBe(
      'task_list_all_domains_claude_haiku_4_5_20251001_all_refinement_models_0pct_baseline_20261125_164036.json',
    );
    expect(
      defaultTaskListFileName(
        { ...base, domain: '', agent: 'computer-use-preview', refinementModel: 'gpt-5-x', humanAnnotationFilter: 'h.json' },
        '20261125_164036',
      ),
    ).toBe('task_list_all_domains_computer_use_preview_gpt-5-x_human_filtered_20261125_164036.json');
    expect(defaultTaskListFileName({ ...base, refinementModel: '', dataFilter: '' }, 'T')).toBe(
      'task_list_multi_apps_test_claude_haiku_4_5_20251001_all_refinement_models_T.json',
    );
  });
  it('formats a Date in local time', () => {
    expect(defaultTaskListFileName(base, new Date(2025, 0, 2, 3, 4, 5))).toMatch(/_20250102_030405\.json$/);
  });
});

describe('readTaskList', () => {
  it('reads the full format, in the file key order', () => {
    const r = readTaskList(JSON.parse(golden('two-models-defaults')));
    if (!r.ok) throw new Error(r.error);
    expect(r.form).toBe('full');
    expect(r.agent).toBe('claude-haiku-4-5-20251001');
    expect(r.perturbationModel).toBe('o4-mini-2025-04-16');
    expect(r.runs).toHaveLength(8);
    expect(r.runs[0]).toEqual({
      domain: 'multi_apps_test',
      task_id: 'a-task',
      perturbed_id: '11111111',
      refinement_model: 'us_anthropic_claude-haiku-4-5-20251001-v1_0',
      task_spec: 'multi_apps_test:a-task:11111111',
      refinement_summary_path:
        '../perturbed_queries/multi_apps_test/a-task/o4-mini-2025-04-16/perturbed_query_11111111/iterative_refinement_us_anthropic_claude-haiku-4-5-20251001-v1_0/agent_claude-haiku-4-5-20251001/refinement_summary.json',
      execution_iterations: 4,
      final_score: 90,
    });
    expect(r.runs.map((x) => x.refinement_model)).toEqual([...Array(4).fill('us_anthropic_claude-haiku-4-5-20251001-v1_0'), ...Array(4).fill('gpt-5-2025-08-07')]);
  });

  it('reads a file with only task_lists_by_refinement_model', () => {
    const r = readTaskList({ task_lists_by_refinement_model: { m1: ['os:t1:p1', 'os:t2:p2'], m2: ['chrome:t3:p3'] } });
    if (!r.ok) throw new Error(r.error);
    expect(r.form).toBe('lists-only');
    expect(r.agent).toBeNull();
    expect(r.runs.map((x) => [x.refinement_model, x.domain, x.task_id, x.perturbed_id])).toEqual([
      ['m1', 'os', 't1', 'p1'],
      ['m1', 'os', 't2', 'p2'],
      ['m2', 'chrome', 't3', 'p3'],
    ]);
    expect(r.runs[0]?.refinement_summary_path).toBeNull();
  });

  it('reads the legacy form with a refinement model given separately', () => {
    const r = readTaskList({ task_list: ['os:t1:p1'] }, { refinementModel: 'gpt-5' });
    if (!r.ok) throw new Error(r.error);
    expect(r.form).toBe('legacy');
    expect(r.runs).toEqual([
      { domain: 'os', task_id: 't1', perturbed_id: 'p1', refinement_model: 'gpt-5', task_spec: 'os:t1:p1', refinement_summary_path: null, execution_iterations: null, final_score: null },
    ]);
  });

  it('names the field in its errors', () => {
    const err = (json: unknown, opts = {}) => {
      const r = readTaskList(json, opts);
      return r.ok ? null : r.error;
    };
    expect(err([])).toMatch(/expected a JSON object, found an array/);
    expect(err({})).toMatch(/task_details_by_refinement_model, task_lists_by_refinement_model or task_list/);
    expect(err({ task_list: ['os:t1:p1'] })).toMatch(/^task_list: .*refinement model/);
    expect(err({ task_list: ['os:t1'] }, { refinementModel: 'm' })).toBe('task_list[0]: expected "domain:task_id:perturbed_id", found "os:t1"');
    expect(err({ task_lists_by_refinement_model: { m: ['a:b:c:d'] } })).toMatch(/^task_lists_by_refinement_model\.m\[0\]: /);
    expect(err({ task_lists_by_refinement_model: { m: 'os:t1:p1' } })).toBe('task_lists_by_refinement_model.m: expected a list, found a string');
    const full = JSON.parse(golden('filter-agent-key')) as { task_details_by_refinement_model: { rmX: Record<string, unknown>[] } };
    const first = full.task_details_by_refinement_model.rmX[0] as Record<string, unknown>;
    delete first.task_id;
    expect(err(full)).toBe('task_details_by_refinement_model.rmX[0].task_id: expected a string, found nothing');
    first.task_id = 't9';
    expect(err(full)).toMatch(/^task_details_by_refinement_model\.rmX\[0\]\.task_spec: /);
    first.task_id = 't1';
    expect(err(full)).toBeNull();
    (full as unknown as { task_lists_by_refinement_model: Record<string, string[]> }).task_lists_by_refinement_model.rmX?.reverse();
    expect(err(full)).toMatch(/^task_lists_by_refinement_model: does not list the same runs/);
    expect(err({ metadata: { agent: 3 }, task_list: [] }, { refinementModel: 'm' })).toBe('metadata.agent: expected a string, found a number');
  });
});

describe('pyJsonDumps', () => {
  it('prints what CPython 3.11 json.dumps(..., indent=4) prints', () => {
    // Expected text printed by CPython 3.11.
    const value = {
      a: 'é\u0000\u007f"\\/\n\t\b\f\r😀\ud800',
      b: [[], {}, [1, 2.5, { c: null }]],
      e: {},
      f: [],
      g: true,
      h: pyFloat(75),
      i: pyFloat(-0),
      j: pyFloat(1e16),
      k: 1.5e-5,
      l: 0.0001,
      m: pyFloat(1e15),
      n: NaN,
      o: Infinity,
      p: 12345678901234567890n,
      q: 123456789.125,
      r: 5e-324,
      s: pyFloat(1.7976931348623157e308),
      t: 0.1 + 0.2,
      u: pyFloat(1e22),
      v: -1.5e-7,
    };
    expect(pyJsonDumps(value)).toBe(`{
    "a": "\\u00e9\\u0000\\u007f\\"\\\\/\\n\\t\\b\\f\\r\\ud83d\\ude00\\ud800",
    "b": [
        [],
        {},
        [
            1,
            2.5,
            {
                "c": null
            }
        ]
    ],
    "e": {},
    "f": [],
    "g": true,
    "h": 75.0,
    "i": -0.0,
    "j": 1e+16,
    "k": 1.5e-05,
    "l": 0.0001,
    "m": 1000000000000000.0,
    "n": NaN,
    "o": Infinity,
    "p": 12345678901234567890,
    "q": 123456789.125,
    "r": 5e-324,
    "s": 1.7976931348623157e+308,
    "t": 0.30000000000000004,
    "u": 1e+22,
    "v": -1.5e-07
}`);
  });

  it('handles the other indent settings and empty containers', () => {
    expect(pyJsonDumps([1, { a: [] }, 'x'], null)).toBe('[1, {"a": []}, "x"]');
    expect(pyJsonDumps({ a: [1, {}], b: { c: 'd' } }, 0)).toBe('{\n"a": [\n1,\n{}\n],\n"b": {\n"c": "d"\n}\n}');
    expect(pyJsonDumps([])).toBe('[]');
    expect(pyJsonDumps({})).toBe('{}');
    expect(pyJsonDumps('ü')).toBe('"\\u00fc"');
    expect(pyJsonDumps(-0)).toBe('0');
    expect(pyJsonDumps(1e20)).toBe('100000000000000000000');
    expect(pyJsonDumps(new Map([['2', 1], ['1', 2]]), null)).toBe('{"2": 1, "1": 2}');
    expect(pyJsonDumps({ a: undefined, b: 1 }, null)).toBe('{"b": 1}');
  });

  it('refuses what JSON cannot hold', () => {
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    expect(() => pyJsonDumps(loop)).toThrow(/circular/);
    expect(() => pyJsonDumps(new Date())).toThrow(/Date/);
    expect(() => pyJsonDumps([undefined])).toThrow(/undefined/);
  });
});

describe('pyFloatRepr', () => {
  it('matches repr(float)', () => {
    const cases: [number, string][] = [
      [75, '75.0'], [0.1, '0.1'], [1e16, '1e+16'], [1e15, '1000000000000000.0'], [123456789012345680, '1.2345678901234568e+17'],
      [0.0001, '0.0001'], [0.00001, '1e-05'], [-2.5e-300, '-2.5e-300'], [NaN, 'nan'], [-Infinity, '-inf'], [0, '0.0'], [-0, '-0.0'],
    ];
    for (const [x, repr] of cases) expect(pyFloatRepr(x)).toBe(repr);
  });
});

describe('pyJsonParse', () => {
  it('keeps the float/int distinction and accepts what Python accepts', () => {
    expect(pyJsonParse('{"a": 75.0, "b": 75, "c": 1e2, "d": -0, "e": NaN, "f": -Infinity}')).toEqual({
      a: pyFloat(75),
      b: 75,
      c: pyFloat(100),
      d: 0,
      e: pyFloat(NaN),
      f: pyFloat(-Infinity),
    });
    const big = pyJsonParse('12345678901234567890');
    expect(pyJsonDumps(big)).toBe('12345678901234567890');
    expect(pyJsonParse('"\\ud83d\\ude00\\u00e9\\/"')).toBe('😀é/');
    const proto = pyJsonParse('{"__proto__": 1}') as Record<string, unknown>;
    expect(Object.keys(proto)).toEqual(['__proto__']);
    expect(pyJsonDumps(pyJsonParse('{"b": 1, "a": 2, "b": 3}'), null)).toBe('{"b": 3, "a": 2}');
  });

  it('reports errors as Python does', () => {
    const msg = (t: string) => {
      try {
        pyJsonParse(t);
        return null;
      } catch (e) {
        return (e as Error).message;
      }
    };
    expect(msg('')).toBe('Expecting value: line 1 column 1 (char 0)');
    expect(msg('{not json')).toBe('Expecting property name enclosed in double quotes: line 1 column 2 (char 1)');
    expect(msg('{"a": 1,}')).toBe('Expecting property name enclosed in double quotes: line 1 column 9 (char 8)');
    expect(msg('[1 2]')).toBe("Expecting ',' delimiter: line 1 column 4 (char 3)");
    expect(msg('{"a" 1}')).toBe("Expecting ':' delimiter: line 1 column 6 (char 5)");
    expect(msg('{}\n x')).toBe('Extra data: line 2 column 2 (char 4)');
    expect(msg('"abc')).toBe('Unterminated string starting at: line 1 column 1 (char 0)');
    expect(msg('"a\nb"')).toBe('Invalid control character at: line 1 column 3 (char 2)');
    expect(msg('\ufeff{}')).toBe('Unexpected UTF-8 BOM (decode using utf-8-sig): line 1 column 1 (char 0)');
  });
});

describe('pyTruthy and stableJson', () => {
  it('follows Python truthiness', () => {
    for (const v of [true, 1, 'false', [0], { a: 1 }, pyFloat(NaN), pyFloat(0.5)]) expect(pyTruthy(v)).toBe(true);
    for (const v of [false, 0, '', [], {}, null, pyFloat(0), pyFloat(-0)]) expect(pyTruthy(v)).toBe(false);
  });
  it('writes our own canonical JSON', () => {
    expect(stableJson({ b: 'é', a: [pyFloat(75), 1, {}], c: [] })).toBe('{\n  "b": "é",\n  "a": [\n    75.0,\n    1,\n    {}\n  ],\n  "c": []\n}\n');
    expect(() => stableJson({ x: pyFloat(NaN) })).toThrow(/NaN.*\$\.x/);
    expect(() => stableJson([Infinity])).toThrow(/Infinity/);
    expect(JSON.parse(stableJson({ f: pyFloat(75) }))).toEqual({ f: 75 });
    expect(JSON.stringify({ f: new PyFloat(2.5) })).toBe('{"f":2.5}');
  });
});

describe('readJsonFileSync / writeFileAtomic / writeIfChanged', () => {
  let dir = '';
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'task-list-fs-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('tells the failure kinds apart, naming the file', async () => {
    const file = (name: string, content: string | Uint8Array) => {
      writeFileSync(join(dir, name), content);
      return join(dir, name);
    };
    const kinds = async (path: string, opts = {}) => {
      const r = readJsonFileSync(path, opts);
      return r.ok ? 'ok' : `${r.kind}|${r.message}`;
    };
    expect(await kinds(join(dir, 'nope.json'), { label: 'nope.json' })).toBe('missing|nope.json: file not found');
    expect(await kinds(join(dir, 'nope', 'x.json'))).toMatch(/^missing\|/);
    mkdirSync(join(dir, 'folder.json'));
    expect(await kinds(join(dir, 'folder.json'), { label: 'folder.json' })).toBe('io|folder.json: not a regular file (a folder); not read');
    execFileSync('mkfifo', [join(dir, 'fifo.json')]);
    expect(await kinds(join(dir, 'fifo.json'), { label: 'fifo.json' })).toBe('io|fifo.json: not a regular file (a named pipe); not read');
    expect(await kinds(file('big.json', `{"a": "${'x'.repeat(100)}"}`), { label: 'big.json', maxBytes: 50 })).toBe('io|big.json: 109 bytes, above the 50-byte limit for a JSON file; not read');
    // Messages never quote the file's content.
    expect(await kinds(file('secret.json', '{"key": sk-live-123}'), { label: 'x.json', parse: pyJsonParse })).not.toContain('sk-live');
    expect(await kinds(file('bad.json', new Uint8Array([0x7b, 0x22, 0xe9, 0x22, 0x7d])), { label: 'bad.json' })).toBe(
      'utf8|bad.json: not valid UTF-8 (first bad byte at offset 2)',
    );
    expect(await kinds(file('syntax.json', '{"a": }'), { label: 's.json' })).toMatch(/^syntax\|s\.json: invalid JSON: /);
    expect(await kinds(file('empty.json', ''), { label: 'e.json' })).toBe('syntax|e.json: invalid JSON: the file is empty');
    expect(await kinds(file('bom.json', '\ufeff{}'), { label: 'b.json' })).toMatch(/^syntax\|b\.json: .*byte order mark/);
    expect(await kinds(file('list.json', '[1]'), { label: 'l.json' })).toBe('type|l.json: expected a JSON object at the top level, found an array');
    expect(await kinds(join(dir, 'list.json'), { expect: 'array' })).toBe('ok');
    expect(await kinds(file('num.json', '75.0'), { expect: 'object', parse: pyJsonParse, label: 'n' })).toBe(
      'type|n: expected a JSON object at the top level, found a number',
    );
    const r = readJsonFileSync<{ a: unknown }>(file('ok.json', '{"a": 75.0}'), { parse: pyJsonParse });
    expect(r.ok && r.value.a).toEqual(pyFloat(75));
    expect(r.ok && r.bytes.length).toBe(11);
    expect(parseJsonBytes(new Uint8Array([0xed, 0xa0, 0x80]), 'surrogate').ok).toBe(false); // CESU surrogates are not UTF-8
    expect(parseJsonBytes(new TextEncoder().encode('{"x": "😀"}'), 'ok').ok).toBe(true);
  });

  it('writes atomically, creating folders, leaving no temporary file', async () => {
    const target = join(dir, 'a', 'b', 'out.json');
    await writeFileAtomic(target, '{"v": 1}\n');
    expect(readFileSync(target, 'utf8')).toBe('{"v": 1}\n');
    await writeFileAtomic(target, new TextEncoder().encode('{"v": 2}\n'));
    expect(readFileSync(target, 'utf8')).toBe('{"v": 2}\n');
    expect(readdirSync(join(dir, 'a', 'b'))).toEqual(['out.json']);
  });

  it('writes only when the bytes change', async () => {
    const target = join(dir, 'same.json');
    expect(await writeIfChanged(target, 'x\n')).toBe(true);
    const past = new Date(2000, 0, 1);
    utimesSync(target, past, past);
    expect(await writeIfChanged(target, 'x\n')).toBe(false);
    expect(statSync(target).mtime.getTime()).toBe(past.getTime());
    expect(await writeIfChanged(target, 'y\n')).toBe(true);
    expect(readFileSync(target, 'utf8')).toBe('y\n');
  });
});
