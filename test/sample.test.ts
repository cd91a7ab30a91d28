import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  buildSample,
  loadRecords,
  planSample,
  runDir,
  serialize,
  type BenchRecord,
} from '../scripts/build-sample.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RECORDS = path.join(ROOT, 'examples', 'autoelicit-bench', 'records.json');
const COMMITTED = path.join(ROOT, 'examples', 'perturbed_queries');
const FILTERS = path.join(ROOT, 'task_filters');
const HAIKU = 'claude-haiku-4-5-20251001';
const OPUS = 'claude-opus-4-5-20251101';

/** All files under `dir`, as sorted POSIX paths relative to it. */
function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk('');
  return out.sort();
}

function readJson(file: string): any {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

function countBy<T>(items: T[], key: (t: T) => string): Record<string, number> {
  const m: Record<string, number> = {};
  for (const it of items) m[key(it)] = (m[key(it)] ?? 0) + 1;
  return m;
}

let records: BenchRecord[];
let tmp: string;

beforeAll(() => {
  records = loadRecords(RECORDS);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sample-test-'));
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('bundled sample tree', () => {
  it('regenerates byte-identically to the committed tree', () => {
    const out = path.join(tmp, 'regen');
    buildSample(records, out, RECORDS);
    const committed = listFiles(COMMITTED);
    const regenerated = listFiles(out);
    expect(regenerated).toEqual(committed);
    expect(committed.length).toBe(100 + 3 * 117);
    for (const rel of committed) {
      const a = fs.readFileSync(path.join(COMMITTED, rel));
      const b = fs.readFileSync(path.join(out, rel));
      expect(b.equals(a), rel).toBe(true);
    }
  });

  it('is deterministic and removes stale files when rebuilt in place', () => {
    const out = path.join(tmp, 'stale');
    buildSample(records, out, RECORDS);
    const first = listFiles(out).map((f) => [f, fs.readFileSync(path.join(out, f), 'utf8')]);
    fs.writeFileSync(path.join(out, 'stale.json'), '{}\n');
    fs.mkdirSync(path.join(out, 'os', 'not-a-task'), { recursive: true });
    fs.writeFileSync(path.join(out, 'os', 'not-a-task', 'x.txt'), 'x');
    buildSample(records, out, RECORDS);
    const second = listFiles(out).map((f) => [f, fs.readFileSync(path.join(out, f), 'utf8')]);
    expect(second).toEqual(first);
    expect(fs.existsSync(path.join(out, 'os', 'not-a-task'))).toBe(false);
    // no leftover temp directories beside the output
    expect(fs.readdirSync(tmp).filter((n) => n.startsWith('stale.tmp-'))).toEqual([]);
  });

  it('writes the same tree through the command line', () => {
    const major = Number(process.versions.node.split('.')[0]);
    if (major < 23) return; // type stripping needs Node >= 23.6 / 22.18
    const out = path.join(tmp, 'cli');
    execFileSync(process.execPath, [path.join(ROOT, 'scripts', 'build-sample.ts'), '--records', RECORDS, '--out', out], {
      stdio: 'pipe',
    });
    expect(listFiles(out)).toEqual(listFiles(COMMITTED));
  });

  it('has the expected run counts per agent, domain and refinement model', () => {
    const summaries = listFiles(COMMITTED).filter((f) => f.endsWith('/refinement_summary.json'));
    expect(summaries).toHaveLength(117);
    const parts = summaries.map((f) => f.split('/'));
    expect(countBy(parts, (p) => p[5]!)).toEqual({ [`agent_${HAIKU}`]: 50, [`agent_${OPUS}`]: 67 });
    expect(countBy(parts, (p) => p[0]!)).toEqual({ multi_apps_test: 69, os: 48 });
    expect(countBy(parts, (p) => `${p[0]}/${p[5]}`)).toEqual({
      [`multi_apps_test/agent_${HAIKU}`]: 29,
      [`multi_apps_test/agent_${OPUS}`]: 40,
      [`os/agent_${HAIKU}`]: 21,
      [`os/agent_${OPUS}`]: 27,
    });
    expect(countBy(parts, (p) => p[4]!)).toEqual({
      'iterative_refinement_gpt-5-2025-08-07': 53,
      'iterative_refinement_us_anthropic_claude-haiku-4-5-20251001-v1_0': 64,
    });
    for (const p of parts) expect(p[2]).toBe('o4-mini-2025-04-16');
  });

  it('has one successful COLLECT iteration per run that matches its record', () => {
    for (const r of records) {
      const dir = path.join(COMMITTED, ...runDir(r).split('/'));
      const s = readJson(path.join(dir, 'refinement_summary.json'));
      expect(s.success).toBe(true);
      expect(s.execution_iterations).toBe(r.execution_iterations_required);
      expect(s.total_quality_refinements).toBe(r.quality_refinements_required);
      expect(s.final_score).toBe(r.behavior_elicitation_score);
      expect(s.execution_history).toHaveLength(1);
      const collect = s.execution_history.filter(
        (h: any) => h.trajectory_evaluation?.recommendation === 'COLLECT',
      );
      expect(collect).toHaveLength(1);
      const it0 = collect[0];
      expect(it0.perturbed_instruction).toBe(r.perturbed_instruction);
      expect(it0.elicitation_strategy).toBe(r.elicitation_strategy);
      expect(it0.execution_iteration).toBe(r.execution_iterations_required - 1);
      expect(it0.trajectory_evaluation.behavior_elicitation_score).toBe(r.behavior_elicitation_score);
      expect(it0.trajectory_evaluation.severity_assessment).toBe(r.severity);
      expect(it0.trajectory_evaluation.harmful_actions_observed).toEqual([]);
      expect(it0.trajectory_evaluation.safe_actions_observed).toEqual([]);
      expect(s._synthesized).toContain('cost_breakdown');
      expect(typeof s._source).toBe('string');

      const fsq = readJson(path.join(dir, 'final_successful_query.json'));
      expect(fsq.perturbed_instruction).toBe(r.perturbed_instruction);
      expect(fsq.recommendation).toBe('COLLECT');
      expect(fsq._synthesized).toEqual(['id', 'timestamp']);

      const meta = readJson(path.join(dir, 'metadata.json'));
      expect(meta).toMatchObject({
        example_id: r.example_id,
        execution_agent: r.execution_agent,
        domain: r.domain,
        severity: r.severity,
        completed: true,
      });

      const seedFile = path.join(path.dirname(path.dirname(dir)), `perturbed_query_${r.perturbed_id}.json`);
      const seed = readJson(seedFile);
      expect(seed.id).toBe(r.perturbed_id);
      expect(seed.task_id).toBe(r.task_id);
      expect(seed.original_instruction).toBe(r.original_instruction);
      expect(seed._synthesized).toContain('perturbed_instruction');
    }
  });

  it('serialises with 2-space indent and a trailing newline', () => {
    for (const f of planSample(records).slice(0, 5)) {
      const text = serialize(f.value);
      expect(text.endsWith('}\n')).toBe(true);
      expect(text).toContain('\n  "_source"');
    }
  });

  it('refuses to replace a directory that contains the records or the workspace', () => {
    expect(() => buildSample(records, ROOT, RECORDS)).toThrow(/refusing/);
    expect(() => buildSample(records, path.join(ROOT, 'examples'), RECORDS)).toThrow(/refusing/);
  });
});

describe('example task filters', () => {
  const byId = (): Map<string, BenchRecord> => new Map(records.map((r) => [r.example_id, r]));

  it('baseline filter lists real os task ids for claude-haiku', () => {
    const f = readJson(path.join(FILTERS, 'data_filter_harm_threshold_0pct_example.json'));
    expect(Object.keys(f)).toEqual(['os']);
    const ids: string[] = f.os[`agent_${HAIKU}`];
    expect(ids).toHaveLength(2);
    for (const id of ids) {
      expect(records.some((r) => r.task_id === id && r.domain === 'os' && r.execution_agent === HAIKU)).toBe(true);
    }
  });

  it('annotation decisions point at real runs, with exactly one false positive', () => {
    const f: Record<string, any> = readJson(path.join(FILTERS, 'final_decisions_example.json'));
    const known = byId();
    const entries = Object.entries(f);
    expect(entries.length).toBeGreaterThanOrEqual(3);
    for (const [key, e] of entries) {
      expect(key.split(':')).toHaveLength(4);
      expect(e.example_id).toBe(key);
      const r = known.get(key);
      expect(r, key).toBeDefined();
      expect(e.execution_agent).toBe(r!.execution_agent);
      expect(e.domain).toBe(r!.domain);
      expect(e.severity).toBe(r!.severity);
      const agreeing = e.annotator_decisions.filter((d: any) => d.decision === e.final_decision);
      expect(e.vote_count).toBe(agreeing.length);
    }
    expect(entries.filter(([, e]) => e.final_decision === 'False Positive')).toHaveLength(1);
  });
});
