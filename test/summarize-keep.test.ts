// summarize keeps what it already has (stages/summarize/reuse.ts): under Nx,
// when its inputs other than the ledger are the ones its previous output was
// built from, a run whose files did not change keeps its summary, index entry,
// evaluation and answer without being read or looked up again, and the output
// has the bytes a build from nothing gives. The real openai client talks to a
// loopback server; the key record Nx would have made is written first, as
// executors/key.mjs does.
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import summarize from '../executors/summarize/executor.ts';
import taskList from '../executors/task-list/executor.ts';
import { loadPipeline, resolveAnalysis } from '../stages/config.ts';
import { formatInputRecord, inputRecord, keyedRecordFile } from '../stages/input-record.ts';
import { describeStage } from '../stages/stage-inputs.ts';
import { shardOf } from '../stages/summarize/summaries.ts';
import { writeFileAtomicSync } from '../stages/util/fs.ts';
import { startFakeProviderServer } from './helpers/fake-provider-server.ts';
import type { FakeProviderServer } from './helpers/fake-provider-server.ts';

const REPO = resolve(import.meta.dirname, '..');
const KEY = 'sk-test-summarize-keep-0123456789';

let server: FakeProviderServer;
let root: string;
let warnings: string[];
let lines: string[];

beforeAll(async () => {
  server = await startFakeProviderServer();
});
afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'summarize-keep-'));
  cpSync(join(REPO, 'examples/perturbed_queries'), join(root, 'data'), { recursive: true });
  cpSync(join(REPO, 'prompts'), join(root, 'prompts'), { recursive: true });
  writeFileSync(
    join(root, 'pipeline.yaml'),
    `data:\n  root: data\ndefaults:\n  provider: openai\n  model: gpt-5-mini\n  base_url: ${server.url}/v1\n  concurrency: 4\n  max_retries: 0\nanalyses:\n  - name: small\n    agents: [claude-haiku-4-5-20251001]\n    domains: [os]\n`,
  );
  vi.stubEnv('OPENAI_API_KEY', KEY);
  vi.stubEnv('META_ANALYSIS_REFRESH', '');
  warnings = [];
  lines = [];
  vi.spyOn(console, 'log').mockImplementation((m: unknown) => void lines.push(String(m)));
  vi.spyOn(console, 'error').mockImplementation(() => {});
  vi.spyOn(console, 'warn').mockImplementation((m: unknown) => void warnings.push(String(m)));
  server.reset();
  // The answer names the request, so a summary kept for the wrong input would show.
  server.handle((req) => ({ text: `Summary of: ${String(req.body?.messages?.[0]?.content ?? '').slice(-60)}`, usage: { input: 1000, output: 200 } }));
});
afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

const ctx = () => ({ root, projectName: 'small' });
const sumDir = () => join(root, 'out/small/summarize');
const log = () => JSON.parse(readFileSync(join(root, 'out/small/logs/summarize.json'), 'utf8'));
const ledgerRuns = (): { run_id: string; refinement_summary_path: string }[] => JSON.parse(readFileSync(join(root, 'out/small/task-list/runs.json'), 'utf8')).runs;

/** Every file of a folder, by relative path: its bytes as text. */
function tree(dir: string): Record<string, string> {
  const files = readdirSync(dir, { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
  return Object.fromEntries(files.map((d) => [relative(dir, join(d.parentPath, d.name)), readFileSync(join(d.parentPath, d.name), 'utf8')]).sort());
}

/** summarize as Nx runs it: task-list first, then the record the key would hash, then the stage (NX_TASK_HASH set). */
async function build(options: { store?: boolean } = {}): Promise<void> {
  vi.stubEnv('NX_TASK_HASH', '');
  expect(await taskList({ analysis: 'small' }, ctx())).toEqual({ success: true });
  const d = { ...describeStage(resolveAnalysis(loadPipeline(root), 'small'), 'summarize', 'out'), code: ['stages/summarize/stage.ts', 'stages/summarize/reuse.ts'], packages: [] };
  writeFileAtomicSync(keyedRecordFile(root, d), formatInputRecord(await inputRecord(d, root, REPO)));
  vi.stubEnv('NX_TASK_HASH', 'test');
  server.requests.length = 0;
  await summarize({ analysis: 'small', ...options }, ctx());
}

/** What a build from nothing gives with the same inputs (the store answers; no request). */
async function fromNothing(): Promise<Record<string, string>> {
  const kept = tree(sumDir());
  rmSync(sumDir(), { recursive: true });
  await build();
  expect(server.requests).toHaveLength(0);
  expect(log().kept).toBe(0);
  const full = tree(sumDir());
  expect(Object.keys(kept)).toEqual(Object.keys(full));
  return full;
}

function editRun(n: number): string {
  const run = ledgerRuns()[n]!;
  const file = join(root, 'data', run.refinement_summary_path);
  const json = JSON.parse(readFileSync(file, 'utf8'));
  json.execution_history.at(-1).trajectory_evaluation.harmful_actions_observed = [`deleted ~/Documents (${n})`];
  writeFileSync(file, JSON.stringify(json));
  return run.run_id;
}

describe('summarize keeps the summaries of unchanged runs', () => {
  it('one run changed: one request, the other runs kept, the bytes of a build from nothing', async () => {
    await build();
    expect(server.requests).toHaveLength(21);
    expect(log()).toMatchObject({ kept: 0, computed: 21 });

    const changed = editRun(3);
    await build();
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]!.body.messages[0].content).toContain('deleted ~/Documents (3)');
    expect(log()).toMatchObject({ kept: 20, reused: 20, computed: 1, carried: 0 });
    expect(lines.join('\n')).toMatch(/21\/21 summarized \(20 kept from the previous output \(unchanged runs\), 0 reused from the response store, 1 computed, 0 failed\)/);
    const reuse = JSON.parse(readFileSync(join(sumDir(), 'reuse.json'), 'utf8'));
    expect(Object.keys(reuse.runs)).toHaveLength(21);
    expect(reuse.shards[shardOf(changed)]).toMatch(/^[0-9a-f]{64}$/);

    const kept = tree(sumDir());
    expect(await fromNothing()).toEqual(kept);
  });

  it('keeps nothing when another input changed (the prompt), under --no-store, or outside Nx', async () => {
    await build();
    writeFileSync(join(root, 'prompts/summarize.md'), `${readFileSync(join(root, 'prompts/summarize.md'), 'utf8')}\nBe brief.\n`);
    await build();
    expect(server.requests).toHaveLength(21);
    expect(log()).toMatchObject({ kept: 0, computed: 21 });

    await build({ store: false });
    expect(server.requests).toHaveLength(21);
    expect(log()).toMatchObject({ kept: 0 });

    vi.stubEnv('NX_TASK_HASH', '');
    await summarize({ analysis: 'small' }, ctx());
    expect(log()).toMatchObject({ kept: 0, reused: 21 });
  });

  it('a shard whose bytes are not the recorded ones is not trusted: its runs are made again, the rest kept', async () => {
    await build();
    const original = tree(sumDir());
    const shard = shardOf(ledgerRuns()[5]!.run_id);
    const inShard = ledgerRuns().filter((r) => shardOf(r.run_id) === shard).length;
    // Still valid JSON, still the right run: only the digest tells.
    const path = join(sumDir(), shard);
    writeFileSync(path, readFileSync(path, 'utf8').replace('Summary of: ', 'Summary of:  '));
    await build();
    expect(server.requests).toHaveLength(0);
    expect(log()).toMatchObject({ kept: 21 - inShard, reused: 21, computed: 0 });
    expect(tree(sumDir())).toEqual(original);
  });

  it('a run the previous build could not summarize, or whose answer is not carried, is made again', async () => {
    server.handle((req, i) => (i === 2 ? { status: 400, error: 'bad request' } : { text: `Summary of: ${String(req.body?.messages?.[0]?.content ?? '').slice(-60)}`, usage: { input: 1000, output: 200 } }));
    await build();
    expect(server.requests).toHaveLength(21);
    const index = JSON.parse(readFileSync(join(sumDir(), 'index.json'), 'utf8'));
    expect(index.statistics).toMatchObject({ summarized: 20, failed: 1 });
    // One answer dropped from answers.jsonl: that run is looked up in the store instead.
    const answers = readFileSync(join(sumDir(), 'answers.jsonl'), 'utf8').split('\n');
    writeFileSync(join(sumDir(), 'answers.jsonl'), [...answers.slice(0, 4), ...answers.slice(5)].join('\n'));

    server.handle((req) => ({ text: `Summary of: ${String(req.body?.messages?.[0]?.content ?? '').slice(-60)}`, usage: { input: 1000, output: 200 } }));
    await build();
    expect(server.requests).toHaveLength(1);
    expect(log()).toMatchObject({ kept: 19, reused: 20, computed: 1 });
    expect(JSON.parse(readFileSync(join(sumDir(), 'index.json'), 'utf8')).statistics).toMatchObject({ summarized: 21, failed: 0 });
    const kept = tree(sumDir());
    expect(await fromNothing()).toEqual(kept);
  });
});
