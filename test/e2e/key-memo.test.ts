// The key's memo (executors/key-memo.ts): the runtime input Nx runs for each
// stage prints the memo's line only while nothing the last computation read has
// changed, and then the same line a full computation would print. Runs the real
// `node executors/key.mjs '<description>'` commands the plugin writes, in a
// copy of the workspace, with and without the memo.
import { spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodes } from '../../executors/plugin.ts';
import { copyWorkspace } from '../../scripts/copy-workspace.ts';
import { keyedRecordFile, keyMemoFile } from '../../stages/keyed-record.ts';

const NODE_BIN = join(import.meta.dirname, '..', '..', 'node_modules', '.bin');
let ws = '';
const dirs: string[] = [];
let commands: Record<string, string> = {};

/** The runtime input of each stage target, as the plugin writes it for this workspace. */
async function runtimeCommands(root: string): Promise<Record<string, string>> {
  const [, fn] = createNodes;
  const context = { workspaceRoot: root, nxJsonConfiguration: {} };
  // The first sight of an analysis creates its folder and asks for a re-run (a copy has it already).
  const nodes = async () => fn(['pipeline.yaml'], { outDir: 'out' }, context);
  const result = await nodes().catch(nodes);
  const targets = Object.values(result[0]![1].projects!)[0]!.targets!;
  const out: Record<string, string> = {};
  for (const [name, t] of Object.entries(targets)) {
    const runtime = (t.inputs ?? []).find((i): i is { runtime: string } => typeof i === 'object' && i !== null && 'runtime' in i);
    if (runtime) out[name] = runtime.runtime;
  }
  return out;
}

/** Runs a stage's key in `root` as Nx would; `memo: false` turns the memo off. Returns the printed line and whether the record was recomputed. */
function key(stage: string, opts: { memo?: boolean; root?: string; racyMs?: number; env?: Record<string, string> } = {}): { line: string; computed: boolean } {
  const root = opts.root ?? ws;
  const record = keyedRecordFile(root, { analysis: 'analysis', stage });
  const before = existsSync(record) ? statSync(record).ino : null;
  const r = spawnSync('sh', ['-c', commands[stage]!], {
    cwd: root,
    encoding: 'utf8',
    env: {
      PATH: `${NODE_BIN}:${process.env['PATH'] ?? ''}`,
      HOME: root,
      META_ANALYSIS_KEY_MEMO_RACY_MS: String(opts.racyMs ?? 0),
      ...(opts.memo === false ? { META_ANALYSIS_KEY_MEMO: 'off' } : {}),
      ...opts.env,
    },
  });
  expect(r.status, r.stderr).toBe(0);
  // A computation writes the record anew (a new inode); the memo's line leaves it alone.
  return { line: r.stdout.trim(), computed: before === null || statSync(record).ino !== before };
}

/** The line with the memo, checked against a full computation. */
function agreedKey(stage: string): { line: string; computed: boolean } {
  const withMemo = key(stage);
  expect(withMemo.line).toBe(key(stage, { memo: false }).line);
  return withMemo;
}

const SUMMARY = 'examples/perturbed_queries';

/** The first refinement_summary.json of the sample tree. */
function someSummary(): string {
  const r = spawnSync('find', [join(ws, SUMMARY), '-name', 'refinement_summary.json'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).sort()[0]!;
}

beforeAll(async () => {
  ws = mkdtempSync(join(tmpdir(), 'key-memo-'));
  dirs.push(ws);
  copyWorkspace(ws);
  commands = await runtimeCommands(ws);
}, 60_000);

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('the key memo', () => {
  it('prints the same line as a full computation, without computing, while nothing read changed', () => {
    const first = key('task-list');
    expect(first.line).toMatch(/^task-list inputs [0-9a-f]{64}$/);
    expect(existsSync(keyMemoFile(ws, { analysis: 'analysis', stage: 'task-list' }))).toBe(true);
    const again = key('task-list');
    expect(again).toEqual({ line: first.line, computed: false });
    const off = key('task-list', { memo: false });
    expect(off).toEqual({ line: first.line, computed: true });
    for (const stage of ['summarize', 'categorize', 'cluster', 'report']) {
      const line = key(stage).line;
      expect(key(stage)).toEqual({ line, computed: false });
    }
  });

  it('computes again after an edit of a run in place, of the same size', () => {
    const before = key('task-list');
    const file = someSummary();
    const text = readFileSync(file, 'utf8');
    const edited = text.replace(/"final_score": (\d)/, (_, d: string) => `"final_score": ${(Number(d) + 1) % 10}`);
    expect(edited).not.toBe(text);
    expect(edited.length).toBe(text.length);
    writeFileSync(file, edited);
    const after = agreedKey('task-list');
    expect(after.computed).toBe(true);
    expect(after.line).not.toBe(before.line);
    writeFileSync(file, text);
    expect(agreedKey('task-list').line).toBe(before.line);
  });

  it('computes again when a run is added, a code file or a named prompt changes, or the workspace moves', () => {
    const list = key('task-list').line;
    key('task-list');
    const run = someSummary().split('/').slice(0, -1).join('/');
    cpSync(run.replace(/agent_[^/]+$/, ''), run.replace(/iterative_refinement_[^/]+\/agent_[^/]+$/, 'iterative_refinement_extra-model'), { recursive: true });
    expect(agreedKey('task-list').line).not.toBe(list);

    const summarize = key('summarize').line;
    expect(key('summarize').computed).toBe(false);
    appendFileSync(join(ws, 'prompts', 'summarize.md'), '\nOne more sentence for the analyst.\n');
    expect(agreedKey('summarize').line).not.toBe(summarize);

    const report = key('report').line;
    expect(key('report').computed).toBe(false);
    appendFileSync(join(ws, 'stages', 'report', 'html.ts'), '\n// a comment\n');
    expect(agreedKey('report').line).not.toBe(report);

    // A copy of the workspace, with its .cache, does not trust the original's memo.
    const copy = mkdtempSync(join(tmpdir(), 'key-memo-copy-'));
    dirs.push(copy);
    cpSync(ws, copy, { recursive: true, verbatimSymlinks: true });
    expect(key('report', { root: copy }).computed).toBe(true);
  });

  it('checks upstream outputs by content: Nx rewriting the same bytes keeps the memo, other bytes compute again', () => {
    const description = JSON.parse(commands['summarize']!.replace(/^node executors\/key\.mjs '/, '').replace(/'$/, '')) as { reads: [string, string][] };
    const [stage, file] = description.reads[0]!;
    const upstream = join(ws, 'out', 'analysis', stage, file);
    mkdirSync(dirname(upstream), { recursive: true });
    writeFileSync(upstream, '{"runs": []}\n');
    const first = key('summarize');
    expect(first.computed).toBe(true);
    // What Nx does when it restores an output from its cache: the same bytes, a new file.
    rmSync(upstream);
    writeFileSync(upstream, '{"runs": []}\n');
    expect(key('summarize')).toEqual({ line: first.line, computed: false });
    writeFileSync(upstream, '{"runs": [1]}\n');
    const changed = agreedKey('summarize');
    expect(changed.computed).toBe(true);
    expect(changed.line).not.toBe(first.line);
  });

  it('computes again when an environment variable it looked up changes (the endpoint of an LLM stage)', async () => {
    const yaml = join(ws, 'pipeline.yaml');
    const original = readFileSync(yaml, 'utf8');
    writeFileSync(yaml, original.replace('provider: offline', 'provider: openai'));
    try {
      commands = await runtimeCommands(ws);
      const local = { OPENAI_BASE_URL: 'http://127.0.0.1:9/v1' };
      const first = key('summarize', { env: local });
      expect(key('summarize', { env: local })).toEqual({ line: first.line, computed: false });
      const memo = JSON.parse(readFileSync(keyMemoFile(ws, { analysis: 'analysis', stage: 'summarize' }), 'utf8').split('\n')[0]!) as { env: { names: string[] } };
      expect(memo.env.names).toContain('OPENAI_BASE_URL');
      // The memo holds a digest of the values, never a value.
      expect(readFileSync(keyMemoFile(ws, { analysis: 'analysis', stage: 'summarize' }), 'utf8')).not.toContain('127.0.0.1:9');
      // A credential is never part of a record, nor of the memo's digest.
      expect(key('summarize', { env: { ...local, OPENAI_API_KEY: 'sk-memo-test-secret' } })).toEqual({ line: first.line, computed: false });
      const moved = key('summarize', { env: { OPENAI_BASE_URL: 'http://127.0.0.1:10/v1' } });
      expect(moved.computed).toBe(true);
      expect(moved.line).not.toBe(first.line);
    } finally {
      writeFileSync(yaml, original);
      commands = await runtimeCommands(ws);
    }
  });

  it('writes no memo when something it read changed just before (the file system clock could not tell the change apart)', () => {
    appendFileSync(join(ws, 'prompts', 'summarize.md'), '\nAnd another.\n');
    key('summarize', { racyMs: 2000 });
    expect(existsSync(keyMemoFile(ws, { analysis: 'analysis', stage: 'summarize' }))).toBe(false);
    expect(key('summarize', { racyMs: 2000 }).computed).toBe(true);
  });
});
