// The cached task list through the real nx, with the data root outside the
// workspace (where Nx's file hashing cannot see it): its key must change with
// every run added, edited (even keeping size and modification time) or
// deleted, and must not change when a screenshot does. Later targets hash one
// index file per upstream stage, which changes whenever a file it stands for does.
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedTargets, executedTargets, REPO, tempWorkspace } from './workspace.ts';
import type { TempWorkspace } from './workspace.ts';
import { editRunKeepingSizeAndMtime } from '../helpers/trees.ts';

interface LedgerRun {
  run_id: string;
  refinement_summary_path: string;
  perturbed_query_path: string;
}

describe('nx run analysis:task-list, cached, with the data root outside the workspace', () => {
  let ws: TempWorkspace;
  let data: string;
  const ledger = () => JSON.parse(ws.read('out/analysis/task-list/runs.json')) as { runs: LedgerRun[] };
  const taskList = () => ws.nx(['run', 'analysis:task-list']);
  const ran = (res: { code: number; out: string }) => {
    expect(res.code, res.out).toBe(0);
    return executedTargets(res.out).includes('task-list');
  };

  beforeAll(() => {
    data = join(realpathSync(mkdtempSync(join(tmpdir(), 'task-list-data-'))), 'perturbed_queries');
    cpSync(join(REPO, 'examples/perturbed_queries'), data, { recursive: true });
    ws = tempWorkspace('meta-analysis-task-list-cache-');
    ws.write('pipeline.yaml', ws.read('pipeline.yaml').replace('root: examples/perturbed_queries', `root: ${data}`));
  });
  afterAll(() => {
    ws?.dispose();
    if (data) rmSync(join(data, '..'), { recursive: true, force: true });
  });

  it('runs once, then comes from the cache with the same bytes', () => {
    expect(ran(taskList())).toBe(true);
    expect(ledger().runs).toHaveLength(117);
    const before = ws.read('out/analysis/task-list/runs.json');
    const again = taskList();
    expect(ran(again)).toBe(false);
    expect(cachedTargets(again.out)).toEqual(['task-list']);
    expect(ws.read('out/analysis/task-list/runs.json')).toBe(before);
  });

  it('is not invalidated by a screenshot (nor reads one)', () => {
    const run = ledger().runs[0]!;
    const shots = join(data, run.refinement_summary_path, '..', 'iteration_1');
    mkdirSync(shots, { recursive: true });
    const png = join(shots, 'step_1.png');
    writeFileSync(png, Buffer.alloc(4096, 1));
    const old = new Date('2001-01-01T00:00:00Z');
    utimesSync(png, old, statSync(png).mtime);
    expect(ran(taskList())).toBe(false);
    writeFileSync(png, Buffer.alloc(8192, 2));
    utimesSync(png, old, statSync(png).mtime);
    expect(ran(taskList())).toBe(false);
    // Never opened for reading: its access time is still the old one.
    expect(statSync(png).atime.getTime()).toBe(old.getTime());
  });

  it('re-runs when a run file is edited, even when its size and modification time stay the same', () => {
    const run = ledger().runs[5]!;
    editRunKeepingSizeAndMtime(join(data, run.refinement_summary_path));
    expect(ran(taskList())).toBe(true);
    expect(ran(taskList())).toBe(false);
  });

  it('re-runs when a run is added, and again when it is deleted', () => {
    const run = ledger().runs[0]!;
    const pqDir = join(data, run.perturbed_query_path, '..');
    const copy = join(pqDir, '..', 'perturbed_query_feedf00d');
    cpSync(pqDir, copy, { recursive: true });
    // The perturbed-query file is named after the folder.
    cpSync(join(data, run.perturbed_query_path), join(copy, 'perturbed_query_feedf00d.json'));
    expect(ran(taskList())).toBe(true);
    expect(ledger().runs.some((r) => r.run_id.includes(':feedf00d:'))).toBe(true);
    // Back to a state seen before: its outputs come from the cache, and are right.
    rmSync(copy, { recursive: true, force: true });
    expect(ran(taskList())).toBe(false);
    expect(ledger().runs).toHaveLength(117);
    // A state never seen: one of the original runs deleted.
    const gone = ledger().runs[7]!;
    const agentDir = join(data, gone.refinement_summary_path, '..');
    const held = `${agentDir}.held`;
    cpSync(agentDir, held, { recursive: true });
    rmSync(agentDir, { recursive: true, force: true });
    expect(ran(taskList())).toBe(true);
    expect(ledger().runs.map((r) => r.run_id)).not.toContain(gone.run_id);
    expect(ledger().runs).toHaveLength(116);
    cpSync(held, agentDir, { recursive: true });
    rmSync(held, { recursive: true, force: true });
  });

  it('re-runs when the perturbed-query file of a run changes (later stages read it)', () => {
    const run = ledger().runs[3]!;
    const file = join(data, run.perturbed_query_path);
    writeFileSync(file, readFileSync(file, 'utf8').replace(/\s*$/, '\n\n'));
    expect(ran(taskList())).toBe(true);
  });

  it('refuses an override the key cannot see unless the cache is skipped, and never rewrites the analysis\' outputs', () => {
    expect(ran(taskList())).toBe(false);
    const own = ws.read('out/analysis/task-list/runs.json');
    const refused = ws.nx(['run', 'analysis:task-list', '--agent', 'computer-use-preview']);
    expect(refused.code).not.toBe(0);
    expect(refused.out).toContain('--agent names an agent the analysis does not list');
    expect(refused.out).toContain('--skip-nx-cache');
    // An agent with no run, as a one-off query: the reference's empty list with a warning; the outputs stay as they were.
    const empty = ws.nx(['run', 'analysis:task-list', '--agent', 'computer-use-preview', '--skip-nx-cache']);
    expect(empty.code, empty.out).toBe(0);
    expect(empty.out).toContain('the query selects no successful run');
    expect(ws.read('out/analysis/task-list/runs.json')).toBe(own);
    // The README's everyday copy: written, the analysis' outputs untouched.
    const copy = ws.nx(['run', 'analysis:task-list', '--agent', 'claude-haiku-4-5-20251001', '--domain', 'os', '--output', 'my_list.json', '--skip-nx-cache']);
    expect(copy.code, copy.out).toBe(0);
    expect(JSON.parse(ws.read('my_list.json')).metadata).toMatchObject({ agent: 'claude-haiku-4-5-20251001', domain: 'os' });
    expect(ws.read('out/analysis/task-list/runs.json')).toBe(own);
    // An agent the analysis lists narrows the configured selection: cached, and what Nx stores is the unchanged analysis output.
    const narrowed = ws.nx(['run', 'analysis:task-list', '--agent', 'claude-opus-4-5-20251101']);
    expect(narrowed.code, narrowed.out).toBe(0);
    expect(ws.read('out/analysis/task-list/runs.json')).toBe(own);
    const restored = ws.nx(['run', 'analysis:task-list', '--agent', 'claude-opus-4-5-20251101']);
    expect(ran(restored)).toBe(false);
    expect(ws.read('out/analysis/task-list/runs.json')).toBe(own);
    // Back to the configured selection: from the cache, the same bytes.
    const back = taskList();
    expect(ran(back)).toBe(false);
    expect(ledger().runs).toHaveLength(117);
    expect(ws.read('out/analysis/task-list/runs.json')).toBe(own);
  });

  it('keys later targets on the upstream index files, which change with any summary', () => {
    const first = ws.nx(['run', 'analysis:categorize']);
    expect(first.code, first.out).toBe(0);
    const index = JSON.parse(ws.read('out/analysis/summarize/index.json')) as { runs: { run_id: string; file: string | null; sha256: string | null; status: string }[] };
    const done = index.runs.filter((r) => r.status === 'done');
    expect(done).toHaveLength(117);
    // The index carries the digest of each summary as the reference writes it on its own (indented),
    // and names the shard that packs it (one compact line per run).
    const entry = done[0]!;
    const shard = join(ws.root, 'out/analysis/summarize', entry.file!);
    const bytes = readFileSync(shard, 'utf8');
    const lineNo = bytes.split('\n').findIndex((l) => l.includes(`"run_id":${JSON.stringify(entry.run_id)}`));
    const line = bytes.split('\n')[lineNo]!;
    expect(entry.sha256).toBe(createHash('sha256').update(`${JSON.stringify(JSON.parse(line), null, 2)}\n`).digest('hex'));
    const again = ws.nx(['run', 'analysis:categorize']);
    expect(cachedTargets(again.out).sort()).toEqual(['categorize', 'summarize', 'task-list']);
    // Nx hashes the index, not the shards: a shard edited behind the index's back
    // (never done by the pipeline: the summarize target writes both) is not seen...
    writeFileSync(shard, bytes.replace(line, line.replace('"summary":"', '"summary":"edited ')));
    expect(cachedTargets(ws.nx(['run', 'analysis:categorize']).out)).toContain('categorize');
    // ...while any change to the index is; and the reader checks each line against it, naming the shard and the line.
    writeFileSync(shard, bytes);
    const indexFile = join(ws.root, 'out/analysis/summarize/index.json');
    writeFileSync(indexFile, readFileSync(indexFile, 'utf8').replace(entry.sha256!, '0'.repeat(64)));
    const after = ws.nx(['run', 'analysis:categorize', '--exclude-task-dependencies']);
    expect(after.code, after.out).not.toBe(0);
    expect(executedTargets(after.out)).toEqual(['categorize']);
    expect(after.out).toContain(`${entry.file}: not what the summarize target writes`);
    expect(after.out).toContain(`line ${lineNo + 1}: the summary of ${entry.run_id} does not have the sha256 index.json records`);
  });
});

// With the daemon (nx.json's everyday setting) the hashing happens in a
// long-lived process: the fingerprint must still be computed on every command.
// The data root lies outside the workspace, so the daemon's file watcher sees no change.
describe('the cached task list under the Nx daemon', () => {
  let ws: TempWorkspace;
  let data: string;
  const daemon = { NX_DAEMON: 'true' };
  beforeAll(() => {
    data = join(realpathSync(mkdtempSync(join(tmpdir(), 'task-list-daemon-data-'))), 'perturbed_queries');
    cpSync(join(REPO, 'examples/perturbed_queries'), data, { recursive: true });
    ws = tempWorkspace('meta-analysis-task-list-daemon-');
    ws.write('pipeline.yaml', ws.read('pipeline.yaml').replace('root: examples/perturbed_queries', `root: ${data}`));
  });
  afterAll(() => {
    ws?.nx(['daemon', '--stop'], daemon);
    ws?.dispose();
    if (data) rmSync(join(data, '..'), { recursive: true, force: true });
  });

  it('re-runs after a run file changes, and comes from the cache when nothing did', () => {
    const first = ws.nx(['run', 'analysis:task-list'], daemon);
    expect(first.code, first.out).toBe(0);
    expect(executedTargets(first.out)).toEqual(['task-list']);
    expect(cachedTargets(ws.nx(['run', 'analysis:task-list'], daemon).out)).toEqual(['task-list']);
    const run = (JSON.parse(ws.read('out/analysis/task-list/runs.json')) as { runs: LedgerRun[] }).runs[2]!;
    const file = join(data, run.refinement_summary_path);
    writeFileSync(file, `${readFileSync(file, 'utf8')}\n`);
    const edited = ws.nx(['run', 'analysis:task-list'], daemon);
    expect(edited.code, edited.out).toBe(0);
    expect(executedTargets(edited.out)).toEqual(['task-list']);
    expect(cachedTargets(ws.nx(['run', 'analysis:task-list'], daemon).out)).toEqual(['task-list']);
    // The daemon did the hashing (its log records the requests).
    expect(readFileSync(join(ws.nxDir, 'workspace-data', 'd', 'daemon.log'), 'utf8')).toMatch(/HASH_TASKS/);
  });
});
