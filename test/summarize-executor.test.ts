// The summarize executor with a real provider: the real openai SDK talks to a
// loopback server that speaks the Chat Completions protocol.
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import summarize from '../executors/summarize/executor.ts';
import taskList from '../executors/task-list/executor.ts';
import plan from '../executors/plan/executor.ts';
import { startFakeProviderServer } from './helpers/fake-provider-server.ts';
import { readSummaries, shardOf } from '../stages/summarize/summaries.ts';
import type { FakeProviderServer } from './helpers/fake-provider-server.ts';

const REPO = resolve(import.meta.dirname, '..');
const KEY = 'sk-test-summarize-0123456789';

let server: FakeProviderServer;
let root: string;

function pipeline(url: string): string {
  return `
data:
  root: data
defaults:
  provider: openai
  model: gpt-5-mini
  base_url: ${url}/v1
  concurrency: 4
  max_retries: 0
analyses:
  - name: small
    agents: [claude-haiku-4-5-20251001]
    domains: [os]
`;
}

function allFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join(d.parentPath, d.name));
}

beforeAll(async () => {
  server = await startFakeProviderServer();
});
afterAll(async () => {
  await server.close();
});

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'summarize-exec-'));
  cpSync(join(REPO, 'examples/perturbed_queries'), join(root, 'data'), { recursive: true });
  cpSync(join(REPO, 'prompts'), join(root, 'prompts'), { recursive: true });
  writeFileSync(join(root, 'pipeline.yaml'), pipeline(server.url));
  vi.stubEnv('OPENAI_API_KEY', KEY);
  vi.spyOn(console, 'log').mockImplementation(() => {});
  vi.spyOn(console, 'error').mockImplementation(() => {});
  vi.spyOn(console, 'warn').mockImplementation(() => {});
  server.reset();
  server.handle((req) => ({ text: `Summary of: ${String(req.body?.messages?.[0]?.content ?? '').slice(-40)}`, usage: { input: 1000, output: 200 } }));
});
afterEach(() => {
  vi.unstubAllEnvs();
  vi.restoreAllMocks();
  rmSync(root, { recursive: true, force: true });
});

const ctx = () => ({ root, projectName: 'small' });

describe('summarize executor with the openai provider', () => {
  it('asks once per run, stores every answer, and re-asks only for a changed run', async () => {
    expect(await taskList({ analysis: 'small' }, ctx())).toEqual({ success: true });
    const ledger = JSON.parse(readFileSync(join(root, 'out/small/task-list/runs.json'), 'utf8'));
    expect(ledger.runs).toHaveLength(21);

    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: true });
    expect(server.requests).toHaveLength(21);
    const body = server.requests[0]!.body;
    expect(body.model).toBe('gpt-5-mini');
    expect(body.max_completion_tokens).toBe(32768);
    expect(body.messages[0].content).toContain('## Original instruction');

    const index = JSON.parse(readFileSync(join(root, 'out/small/summarize/index.json'), 'utf8'));
    expect(index.statistics).toMatchObject({ total_runs: 21, summarized: 21, failed: 0, input_tokens: 21000, output_tokens: 4200 });
    // gpt-5-mini: $0.25 / $2.00 per 1M tokens.
    expect(Number(index.statistics.cost)).toBeCloseTo(21 * (1000 * 0.25 + 200 * 2) / 1e6, 10);
    const one = readSummaries(join(root, 'out/small/summarize'), index.runs).get(index.runs[0].run_id)!;
    expect(one.summary).toMatch(/^Summary of: /);
    // The summaries are packed: one shard per first two hex digits of sha256(run id), nothing per run.
    const shards = [...new Set(ledger.runs.map((r: { run_id: string }) => shardOf(r.run_id)))].sort();
    expect(index.runs.map((r: { file: string }) => r.file).sort()).toEqual(ledger.runs.map((r: { run_id: string }) => shardOf(r.run_id)).sort());
    const outFiles = allFiles(join(root, 'out/small/summarize')).map((f) => relative(join(root, 'out/small/summarize'), f)).sort();
    expect(outFiles).toEqual([...shards, 'answers.jsonl', 'evaluations.json', 'index.json', 'reuse.json'].sort());
    expect(one.summary_metadata).toMatchObject({ api_type: 'openai', model_name: 'gpt-5-mini', generated_at: null });

    // Same inputs: every answer comes from the store, no request.
    server.reset();
    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: true });
    expect(server.requests).toHaveLength(0);
    expect(readFileSync(join(root, 'out/small/summarize/index.json'), 'utf8')).toBe(JSON.stringify(index, null, 2) + '\n');

    // One run's data changes: one request.
    const run = ledger.runs[3];
    const file = join(root, 'data', run.refinement_summary_path);
    const json = JSON.parse(readFileSync(file, 'utf8'));
    json.execution_history.at(-1).trajectory_evaluation.harmful_actions_observed = ['deleted ~/Documents'];
    writeFileSync(file, JSON.stringify(json));
    server.handle((req) => ({ text: 'changed', usage: { input: 10, output: 5 } }));
    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: true });
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]!.body.messages[0].content).toContain('deleted ~/Documents');

    // The key is sent as a header, never written anywhere.
    expect(server.requests[0]!.headers['authorization']).toBe(`Bearer ${KEY}`);
    for (const f of [...allFiles(join(root, 'out')), ...allFiles(join(root, '.cache'))]) {
      expect(readFileSync(f, 'utf8'), f).not.toContain(KEY);
    }
  });

  it('lists a run with broken data as failed with the file and field, and still summarizes the rest', async () => {
    await taskList({ analysis: 'small' }, ctx());
    const ledger = JSON.parse(readFileSync(join(root, 'out/small/task-list/runs.json'), 'utf8'));
    const bad = ledger.runs[0];
    const file = join(root, 'data', bad.refinement_summary_path);
    const json = JSON.parse(readFileSync(file, 'utf8'));
    json.execution_history = 'oops';
    writeFileSync(file, JSON.stringify(json));
    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: true });
    const index = JSON.parse(readFileSync(join(root, 'out/small/summarize/index.json'), 'utf8'));
    expect(index.statistics).toMatchObject({ summarized: 20, failed: 1 });
    expect(index.failed[0].run_id).toBe(bad.run_id);
    expect(index.failed[0].reason).toContain('refinement_summary.json: field "execution_history": expected a list of iterations');
  });

  it('names a missing run file relative to the data root, never by its absolute path', async () => {
    await taskList({ analysis: 'small' }, ctx());
    const ledger = JSON.parse(readFileSync(join(root, 'out/small/task-list/runs.json'), 'utf8'));
    const run = ledger.runs[1];
    rmSync(join(root, 'data', run.perturbed_query_path));
    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: true });
    const index = JSON.parse(readFileSync(join(root, 'out/small/summarize/index.json'), 'utf8'));
    const failed = index.failed.find((f: { run_id: string }) => f.run_id === run.run_id);
    expect(failed.reason).toBe(`${run.perturbed_query_path}: file not found`);
    expect(readFileSync(join(root, 'out/small/summarize/index.json'), 'utf8')).not.toContain(root);
  });

  it('fails the target when the provider keeps failing, and keeps what was answered', async () => {
    await taskList({ analysis: 'small' }, ctx());
    let n = 0;
    server.handle(() => (n++ % 3 === 0 ? { status: 500, error: 'upstream broke' } : { text: 'fine' }));
    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: false });
    const index = JSON.parse(readFileSync(join(root, 'out/small/summarize/index.json'), 'utf8'));
    expect(index.statistics.failed).toBeGreaterThan(0);
    expect(index.statistics.summarized + index.statistics.failed).toBe(21);
    // The re-run asks only for the runs that failed.
    const failedBefore = index.statistics.failed;
    server.reset();
    server.handle(() => ({ text: 'fine' }));
    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: true });
    expect(server.requests).toHaveLength(failedBefore);
  });

  it('names the missing variable when no key is set', async () => {
    vi.stubEnv('OPENAI_API_KEY', '');
    await taskList({ analysis: 'small' }, ctx());
    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: false });
    const errors = (console.error as unknown as { mock: { calls: unknown[][] } }).mock.calls.flat().join('\n');
    expect(errors).toContain('OPENAI_API_KEY');
    expect(server.requests).toHaveLength(0);
  });

  it('a budget of about half the stage stops near it on actual spend, lists the rest as not attempted, and a larger budget buys only the rest', async () => {
    // Each answer: 1000 input + 200 output tokens of gpt-5-mini = $0.00065; the 21 runs cost $0.01365.
    const withCap = (cap: number) => writeFileSync(join(root, 'pipeline.yaml'), pipeline(server.url).replace('  max_retries: 0', `  max_retries: 0\n  max_cost_usd: ${cap}`));
    withCap(0.007);
    await taskList({ analysis: 'small' }, ctx());
    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: false });
    const bought = server.requests.length;
    const spent = bought * 0.00065;
    // Near the cap, and never above it by more than the calls in flight (4 at this concurrency).
    expect(bought).toBeGreaterThanOrEqual(8);
    expect(spent).toBeLessThanOrEqual(0.007 + 4 * 0.00065);
    const index = JSON.parse(readFileSync(join(root, 'out/small/summarize/index.json'), 'utf8'));
    expect(index.statistics.summarized).toBe(bought);
    expect(index.failed.every((f: { reason: string }) => /budget/.test(f.reason))).toBe(true);
    expect(index.failed).toHaveLength(21 - bought);
    const errors = (console.error as unknown as { mock: { calls: unknown[][] } }).mock.calls.flat().join('\n');
    expect(errors).toMatch(new RegExp(`${21 - bought} runs? not attempted: the budget was reached .*more would finish the stage`));
    expect(errors).not.toMatch(/failed at the provider/);
    // Every answer bought is stored: a larger budget buys only the rest.
    expect(allFiles(join(root, '.cache/llm-store'))).toHaveLength(bought);
    server.reset();
    withCap(1);
    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: true });
    expect(server.requests).toHaveLength(21 - bought);
  });

  it('charges the calls abandoned at timeout_s at their worst case in the run log and the closing lines', async () => {
    // 5 of the 21 runs are answered only after the client has given up on them.
    writeFileSync(join(root, 'pipeline.yaml'), pipeline(server.url).replace('  max_retries: 0', '  max_retries: 0\n  timeout_s: 1\n  max_tokens: 2000'));
    let n = 0;
    server.handle(() => ({ delayMs: n++ % 4 === 1 && n <= 20 ? 4000 : 0, text: 'A summary.', usage: { input: 1000, output: 200 } }));
    await taskList({ analysis: 'small' }, ctx());
    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: false });
    expect(server.requests).toHaveLength(21);
    // Worst case of each abandoned call: its prompt (characters / 4) and max_tokens, at gpt-5-mini's $0.25 / $2 per 1M tokens.
    const late = server.requests.filter((_, i) => i % 4 === 1 && i < 20);
    expect(late).toHaveLength(5);
    const worst = late.reduce((sum, r) => sum + (Math.ceil(String(r.body.messages[0].content).length / 4) * 0.25 + 2000 * 2) / 1e6, 0);
    const log = JSON.parse(readFileSync(join(root, 'out/small/logs/summarize.json'), 'utf8'));
    expect(log).toMatchObject({ computed: 16, abandoned_calls: 5 });
    expect(log.abandoned_cost_usd).toBeCloseTo(worst, 12);
    expect(log.paid_cost_usd).toBeCloseTo(16 * 0.00065 + worst, 12);
    expect(log.abandoned_note).toMatch(/timed out at timeout_s = 1 s, or interrupted.*worst case.*max_tokens \(2000\)/);
    const warned = (console.warn as unknown as { mock: { calls: unknown[][] } }).mock.calls.flat().join('\n');
    expect(warned).toContain(`summarize: 5 calls abandoned after they were sent`);
    expect(warned).toContain(`$${worst.toFixed(4)} of the $${(16 * 0.00065 + worst).toFixed(4)} spent.`);
    const said = (console.log as unknown as { mock: { calls: unknown[][] } }).mock.calls.flat().join('\n');
    expect(said).toContain(`spent $${(16 * 0.00065 + worst).toFixed(4)} to build this output. Log:`);
    // The index keeps what the answers cost (a deterministic output): abandoned calls are the spend's, not the data's.
    const index = JSON.parse(readFileSync(join(root, 'out/small/summarize/index.json'), 'utf8'));
    expect(Number(index.statistics.cost)).toBeCloseTo(16 * 0.00065, 10);
    expect(index.failed).toHaveLength(5);
  });

  it('budget.max_cost_usd caps one invocation across stages: a later stage stops where an earlier one left the budget', async () => {
    const { invocationBudget } = await import('../stages/llm/budget.ts');
    const dir = join(root, 'budget');
    // Two stage clients of one invocation (in nx, two processes; here, two budget users).
    const first = invocationBudget(0.005, dir, 'inv-1');
    const second = invocationBudget(0.005, dir, 'inv-1');
    const other = invocationBudget(0.005, dir, 'inv-2');
    first.record(0.004);
    expect(second.spentByOthers()).toBeCloseTo(0.004);
    expect(other.spentByOthers()).toBe(0);
    // Through pipeline.yaml: the stage itself has no cap; the invocation's is almost spent by "another stage".
    writeFileSync(join(root, 'pipeline.yaml'), `${pipeline(server.url)}budget:\n  max_cost_usd: 0.005\n`);
    vi.stubEnv('NX_INVOCATION_ANCESTOR_PIDS', '999999');
    const { invocationId } = await import('../stages/llm/budget.ts');
    invocationBudget(0.005, join(root, '.cache/budget'), invocationId()).record(0.004);
    await taskList({ analysis: 'small' }, ctx());
    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: false });
    // $0.001 left: one call expected at ~$0.0015 does not fit, so none is made.
    expect(server.requests).toHaveLength(0);
    const errors = (console.error as unknown as { mock: { calls: unknown[][] } }).mock.calls.flat().join('\n');
    expect(errors).toMatch(/budget\.max_cost_usd \(the whole invocation\)/);
  });

  it('asks again under META_ANALYSIS_REFRESH=summarize (overwriting the store) and with --no-store (not touching it)', async () => {
    await taskList({ analysis: 'small' }, ctx());
    await summarize({ analysis: 'small' }, ctx());
    server.reset();
    server.handle(() => ({ text: 'fresh answer' }));
    vi.stubEnv('META_ANALYSIS_REFRESH', 'summarize');
    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: true });
    expect(server.requests).toHaveLength(21);
    const printed = (console.log as unknown as { mock: { calls: unknown[][] } }).mock.calls.flat().join('\n');
    expect(printed).toMatch(/^summarize: META_ANALYSIS_REFRESH=summarize: refreshing/m);
    const refreshedAnswers = readFileSync(join(root, 'out/small/summarize/answers.jsonl'), 'utf8');
    vi.stubEnv('META_ANALYSIS_REFRESH', '');
    server.reset();
    server.handle(() => ({ text: 'not kept' }));
    expect(await summarize({ analysis: 'small', store: false }, ctx())).toEqual({ success: true });
    expect(server.requests).toHaveLength(21);
    expect(existsSync(join(root, 'out/small/summarize/answers.jsonl'))).toBe(false);
    server.reset();
    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: true });
    expect(server.requests).toHaveLength(0);
    const index = JSON.parse(readFileSync(join(root, 'out/small/summarize/index.json'), 'utf8'));
    expect(readSummaries(join(root, 'out/small/summarize'), index.runs).get(index.runs[0].run_id)!.summary).toBe('fresh answer');
    expect(readFileSync(join(root, 'out/small/summarize/answers.jsonl'), 'utf8')).toBe(refreshedAnswers);
  });

  it('takes the answers carried in its output when the store is empty (a clone restored from the Nx cache)', async () => {
    await taskList({ analysis: 'small' }, ctx());
    await summarize({ analysis: 'small' }, ctx());
    const before = readFileSync(join(root, 'out/small/summarize/index.json'), 'utf8');
    const answers = readFileSync(join(root, 'out/small/summarize/answers.jsonl'), 'utf8');
    expect(answers.trimEnd().split('\n')).toHaveLength(21);
    rmSync(join(root, '.cache'), { recursive: true, force: true });
    server.reset();
    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: true });
    expect(server.requests).toHaveLength(0);
    expect(readFileSync(join(root, 'out/small/summarize/index.json'), 'utf8')).toBe(before);
    expect(readFileSync(join(root, 'out/small/summarize/answers.jsonl'), 'utf8')).toBe(answers);
    expect(JSON.parse(readFileSync(join(root, 'out/small/logs/summarize.json'), 'utf8'))).toMatchObject({ computed: 0, reused: 21, carried: 21 });
    expect(allFiles(join(root, '.cache'))).toHaveLength(21);
  });

  it('plans (the plan target) without calling the provider or writing outputs, and agrees with the run', async () => {
    writeFileSync(join(root, 'pipeline.yaml'), `${pipeline(server.url)}\nstages:\n  categorize: { provider: offline }\n  cluster: { provider: offline }\n`);
    const printed = () => (console.log as unknown as { mock: { calls: unknown[][] } }).mock.calls.flat().join('\n');
    expect(await plan({ analysis: 'small' }, ctx())).toEqual({ success: true });
    expect(server.requests).toHaveLength(0);
    // Nothing but its own log: no output of any stage.
    expect(allFiles(join(root, 'out')).map((f) => relative(root, f))).toEqual(['out/small/logs/plan.json']);
    expect(printed()).toMatch(/summarize\s+openai:gpt-5-mini \(provider from defaults, model from defaults\): 0 stored, 21 to pay \(~\d+ input tokens by tokenizer o200k_base; ~700 output tokens per call, default for the step; \$[\d.]+ to \$[\d.]+\); 21 runs/);
    expect(printed()).toMatch(/total\s+21 calls to pay/);
    await taskList({ analysis: 'small' }, ctx());
    expect(await summarize({ analysis: 'small' }, ctx())).toEqual({ success: true });
    expect(server.requests).toHaveLength(21);
    // The run log holds the plan made before it next to what the run paid.
    expect(JSON.parse(readFileSync(join(root, 'out/small/logs/summarize.json'), 'utf8')).plan_vs_actual).toMatchObject({ planned: { calls: 21, exact: true }, actual: { calls: 21 } });
    expect(printed()).toMatch(/summarize: the plan of \S+ said 21 calls, \$[\d.]+ to \$[\d.]+; this run made 21, \$[\d.]+\./);
    server.reset();
    (console.log as unknown as { mockClear(): void }).mockClear();
    expect(await plan({ analysis: 'small' }, ctx())).toEqual({ success: true });
    expect(server.requests).toHaveLength(0);
    expect(printed()).toMatch(/summarize\s+openai:gpt-5-mini \(provider from defaults, model from defaults\): 21 stored, 0 to pay; 21 runs/);
    expect(printed()).toMatch(/total\s+0 calls to pay; 21 LLM answers already stored/);
    // For CI: the same plan as JSON; output tokens are now learnt from the stored answers.
    (console.log as unknown as { mockClear(): void }).mockClear();
    expect(await plan({ analysis: 'small', json: true }, ctx())).toEqual({ success: true });
    const json = JSON.parse(printed());
    expect(json.total).toMatchObject({ calls: 0, stored: 21, cost_usd_low: 0, cost_usd_high: 0 });
    expect(json.stages[0]).toMatchObject({ stage: 'summarize', provider: 'openai', model: 'gpt-5-mini', reused: 21, toPay: 0, output_tokens_per_call: 200, output_tokens_source: 'median of 21 stored answers' });
  });
});
