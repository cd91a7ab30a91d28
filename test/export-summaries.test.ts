// The export-summaries command: the reference's per-run summary tree, written
// from summarize's packed output by the real (offline) executors.
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import exportSummaries from '../executors/export-summaries/executor.ts';
import summarize from '../executors/summarize/executor.ts';
import taskList from '../executors/task-list/executor.ts';
import { runOutputPath } from '../stages/task-list/ledger.ts';

const REPO = resolve(import.meta.dirname, '..');
const NAME = 'small';
let root: string;

beforeEach(async () => {
  root = mkdtempSync(join(tmpdir(), 'export-summaries-'));
  cpSync(join(REPO, 'examples/perturbed_queries'), join(root, 'data'), { recursive: true });
  cpSync(join(REPO, 'prompts'), join(root, 'prompts'), { recursive: true });
  mkdirSync(join(root, 'analyses', NAME), { recursive: true });
  writeFileSync(join(root, 'pipeline.yaml'), `data:\n  root: data\ndefaults:\n  provider: offline\nanalyses:\n  - name: ${NAME}\n    agents: [claude-haiku-4-5-20251001]\n    domains: [os]\n`);
  vi.spyOn(console, 'log').mockImplementation(() => {});
  vi.spyOn(console, 'error').mockImplementation(() => {});
  vi.spyOn(console, 'warn').mockImplementation(() => {});
});
afterEach(() => {
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

const ctx = () => ({ root, projectName: NAME });
const out = (...p: string[]) => join(root, 'out', NAME, ...p);
const files = (dir: string) =>
  readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => relative(dir, join(d.parentPath, d.name))).sort();
const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const logged = () => (console.log as unknown as { mock: { calls: unknown[][] } }).mock.calls.flat().join('\n');
const errors = () => (console.error as unknown as { mock: { calls: unknown[][] } }).mock.calls.flat().join('\n');

describe('export-summaries', () => {
  it("writes one file per summarized run at the reference's path, the bytes index.json digests, and nothing for a failed run", async () => {
    expect(await taskList({ analysis: NAME }, ctx())).toEqual({ success: true });
    const ledger = JSON.parse(readFileSync(out('task-list', 'runs.json'), 'utf8'));
    // One run's data broken: summarize lists it as failed, the export leaves it out.
    const broken = ledger.runs[2];
    writeFileSync(join(root, 'data', broken.perturbed_query_path), '{');
    expect(await summarize({ analysis: NAME }, ctx())).toEqual({ success: true });
    expect(await exportSummaries({ analysis: NAME }, ctx())).toEqual({ success: true });

    const index = JSON.parse(readFileSync(out('summarize', 'index.json'), 'utf8'));
    const done = index.runs.filter((r: { status: string }) => r.status === 'done');
    expect(done).toHaveLength(ledger.runs.length - 1);
    const pathOf = new Map(ledger.runs.map((r: Parameters<typeof runOutputPath>[0]) => [r.run_id, `${runOutputPath(r)}/elicitation_run_summary.json`]));
    const exported = files(out('summaries-export'));
    expect(exported).toEqual(done.map((r: { run_id: string }) => pathOf.get(r.run_id)).sort());
    for (const r of done) {
      const text = readFileSync(out('summaries-export', pathOf.get(r.run_id) as string), 'utf8');
      // The reference's bytes: indented JSON with a final newline, whose digest index.json records.
      expect(text).toBe(`${JSON.stringify(JSON.parse(text), null, 2)}\n`);
      expect(sha(text)).toBe(r.sha256);
      expect(JSON.parse(text).run_id).toBe(r.run_id);
    }
    expect(logged()).toContain(`export-summaries: wrote ${done.length} summary files in the reference's layout to out/${NAME}/summaries-export/ (1 run has no summary`);
    // The export is no stage's output: summarize's folder still holds only its shards and index files.
    expect(files(out('summarize')).filter((f) => !/^summaries\/[0-9a-f]{2}\.jsonl$/.test(f))).toEqual(['answers.jsonl', 'evaluations.json', 'index.json', 'reuse.json']);
  });

  it('replaces the whole tree (a run gone from the index leaves no file), and a damaged shard fails it with the previous export kept', async () => {
    expect(await taskList({ analysis: NAME }, ctx())).toEqual({ success: true });
    expect(await summarize({ analysis: NAME }, ctx())).toEqual({ success: true });
    expect(await exportSummaries({ analysis: NAME }, ctx())).toEqual({ success: true });
    const before = files(out('summaries-export'));
    const stale = join(out('summaries-export'), 'stale', 'elicitation_run_summary.json');
    mkdirSync(join(stale, '..'), { recursive: true });
    writeFileSync(stale, '{}');
    expect(await exportSummaries({ analysis: NAME }, ctx())).toEqual({ success: true });
    expect(files(out('summaries-export'))).toEqual(before);

    const index = JSON.parse(readFileSync(out('summarize', 'index.json'), 'utf8'));
    const shard = out('summarize', index.runs[0].file);
    writeFileSync(shard, readFileSync(shard, 'utf8').replace('"summary":"', '"summary":"edited '));
    expect(await exportSummaries({ analysis: NAME }, ctx())).toEqual({ success: false });
    expect(errors()).toContain(`${shard}: not what the summarize target writes`);
    expect(errors()).toMatch(/line 1: the summary of .* does not have the sha256 index\.json records/);
    expect(files(out('summaries-export'))).toEqual(before);
    expect(existsSync(join(root, 'out', `${NAME}.lock`))).toBe(false);
  });
});
