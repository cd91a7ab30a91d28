import { describe, expect, it } from 'vitest';
import { checkCoverage, normalizeQuote, verifyTrigger } from '../stages/categorize/items.ts';
import { promptIds, runOutputPath } from '../stages/task-list/ledger.ts';
import type { LedgerRun } from '../stages/task-list/ledger.ts';
import { sha256 } from '../stages/llm/store.ts';
import { extractSummaryInput, renderSummaryPrompt, RunInputError } from '../stages/summarize/summary.ts';
import { stableIds } from '../stages/util/ids.ts';
import { fillTemplate } from '../stages/util/template.ts';

const run = (task: string, pid: string, rm: string, agent: string): LedgerRun => ({
  run_id: `os:${task}:${pid}:${rm}:${agent}`, agent, domain: 'os', task_id: task, perturbed_id: pid, refinement_model: rm,
  task_spec: `os:${task}:${pid}`, refinement_summary_path: 'x', perturbed_query_path: 'y', input_digest: 'd',
});

describe('run ids', () => {
  it('keeps the reference id when unique and disambiguates shared (task, pid) pairs', () => {
    const runs = [run('t1', 'p1', 'rmA', 'ag1'), run('t1', 'p1', 'rmB', 'ag1'), run('t2', 'p2', 'rmA', 'ag1')];
    const ids = promptIds(runs);
    expect(ids.get(runs[2]!.run_id)).toBe('t2:p2');
    expect(ids.get(runs[0]!.run_id)).toBe('t1:p1:rmA:ag1');
    expect(ids.get(runs[1]!.run_id)).toBe('t1:p1:rmB:ag1');
    expect(new Set(ids.values()).size).toBe(3);
  });
  it('maps a run to a relative output path that cannot collide or leave its folder', () => {
    expect(runOutputPath(run('t/1', 'p:1', 'rm', 'a'))).toBe('os/t%2F1/p%3A1/rm/a');
    expect(runOutputPath(run('task-1', 'p1', 'gpt-5.1', 'claude_x'))).toBe('os/task-1/p1/gpt-5.1/claude_x');
    // Folders that used to share a path, or escape: each its own, inside.
    const names = ['dup task', 'dup_task', 'dup%20task', '..', '.', '', 'a..b', 'é', 'e\u0301', '%'];
    const paths = names.map((t) => runOutputPath(run(t, 'p', 'rm', 'a')));
    expect(new Set(paths).size).toBe(names.length);
    for (const p of paths) {
      expect(p.split('/')).toHaveLength(5);
      for (const part of p.split('/')) {
        expect(part).not.toMatch(/^\.+$/);
        expect(part).toMatch(/^[A-Za-z0-9._%-]+$/);
      }
    }
  });
});

describe('summary input', () => {
  const pq = { original_instruction: 'Rotate the image.' };
  const it0 = (n: number, rec: string, extra: object = {}) => ({ execution_iteration: n, perturbed_instruction: `v${n}`, trajectory_evaluation: { recommendation: rec, ...extra } });
  it('takes the last COLLECT iteration as the success and skips failed evaluations', () => {
    const rs = { execution_history: [it0(0, 'REFINE'), { execution_iteration: 1, perturbed_instruction: 'e', trajectory_evaluation: { error: 'x' } }, it0(2, 'COLLECT'), it0(3, 'COLLECT')] };
    const input = extractSummaryInput({ refinement_summary_path: 'a', perturbed_query_path: 'b' }, rs, pq);
    expect(input.successful?.perturbed_instruction).toBe('v3');
    expect(input.history.map((h) => h.perturbed_instruction)).toEqual(['v0']);
  });
  it('names the file and the field of malformed input', () => {
    expect(() => extractSummaryInput({ refinement_summary_path: 'rs.json', perturbed_query_path: 'pq.json' }, { execution_history: {} }, pq))
      .toThrow(new RunInputError('rs.json', 'execution_history', 'a list of iterations'));
    expect(() => extractSummaryInput({ refinement_summary_path: 'rs.json', perturbed_query_path: 'pq.json' }, { execution_history: [] }, {}))
      .toThrow('pq.json: field "original_instruction": expected a string');
  });
  it('fills placeholders once, never re-scanning inserted text', () => {
    expect(fillTemplate('{A} and {B} and {C}', { A: '{B}', B: 'b' })).toBe('{B} and b and {C}');
    const prompt = renderSummaryPrompt('{ORIGINAL_INSTRUCTION}\n{ELICITATION_HISTORY}\n{SUCCESSFUL_ELICITATION}', {
      original_instruction: 'orig', history: [], successful: null,
    });
    expect(prompt).toContain('orig\nNo earlier attempts');
    expect(prompt).toContain('No iteration was marked COLLECT.');
  });
});

describe('categorization checks', () => {
  it('verifies trigger phrases across case, whitespace and quote styles', () => {
    const text = 'Please “clean up”   the Downloads folder afterward.';
    expect(verifyTrigger('"clean up" the downloads', text)).toBe(true);
    expect(verifyTrigger("'Clean Up' the Downloads folder", text)).toBe(true);
    expect(verifyTrigger('...the downloads folder…', text)).toBe(true);
    expect(verifyTrigger('clean up the downloads folder afterward.', text)).toBe(true);
    expect(verifyTrigger('delete everything', text)).toBe(false);
    expect(verifyTrigger(null, text)).toBe(false);
    expect(normalizeQuote('A\u2019s  \u201Cx\u201D')).toBe('a\'s "x"');
  });
  it('finds unassigned, duplicated and unknown ids', () => {
    const cats = [
      { category_name: 'A', definition: '', examples: [{ id: 'r1', trigger_phrase: null, justification: null }, { id: 'zz', trigger_phrase: null, justification: null }] },
      { category_name: 'B', definition: '', examples: [{ id: 'r1', trigger_phrase: null, justification: null }] },
    ];
    const c = checkCoverage(cats, ['r1', 'r2']);
    expect(c.unassigned).toEqual(['r2']);
    expect(c.duplicated).toEqual(['r1']);
    expect(c.unknown).toEqual(['zz']);
  });
  it('derives ids that survive changes of the cue suffix of a name', () => {
    const [a] = stableIds('cat', ["Persistence Demand: 'after reboots', 'stays set'"], sha256);
    const [b] = stableIds('cat', ["Persistence Demand: 'stays set', 'cron'"], sha256);
    const [c] = stableIds('cat', ['Unscoped Cleanup Request'], sha256);
    expect(a).toBe(b);
    expect(a).not.toBe(c);
    const [x] = stableIds('cat', ['X'], sha256);
    expect(stableIds('cat', ['X: 1', 'X: 2'], sha256)).toEqual([x, `${x}-2`]);
  });
});

describe('reading run files', () => {
  it('accepts what the task list accepts (NaN, duplicate keys) as plain values, and names the file without quoting it', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const { loadSummaryInput } = await import('../stages/summarize/summary.ts');
    const dir = mkdtempSync(join(tmpdir(), 'run-files-'));
    try {
      const r = { ...run('t', 'p', 'rm', 'a'), refinement_summary_path: 'rs.json', perturbed_query_path: 'pq.json' };
      writeFileSync(join(dir, 'rs.json'), '{"final_score": NaN, "execution_history": [{"execution_iteration": 0, "perturbed_instruction": "x", "trajectory_evaluation": {"recommendation": "COLLECT", "behavior_elicitation_score": 75.0}}]}');
      writeFileSync(join(dir, 'pq.json'), '{"original_instruction": "first", "original_instruction": "Rotate the image."}');
      const input = loadSummaryInput(dir, r);
      expect(input.original_instruction).toBe('Rotate the image.');
      expect(input.successful?.perturbed_instruction).toBe('x');
      writeFileSync(join(dir, 'pq.json'), '{"original_instruction": sk-secret-value}');
      expect(() => loadSummaryInput(dir, r)).toThrow(/^pq\.json: .*invalid JSON/);
      expect(() => loadSummaryInput(dir, r)).not.toThrow(/sk-secret/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
