// One cache for the whole team and for CI, through the real nx, the real
// openai SDK against the fake provider, and a loopback server implementing
// Nx's remote cache specification (test/helpers/nx-cache-server.ts) with a
// read-write and a read-only token. Every command is the one the CI recipe
// (.github/workflows/analysis.yml) runs, read from the workflow file, or the
// documented entry point (npm run nx:shared -- ...):
// - A builds (with a committed taxonomy lock); B, a fresh clone elsewhere on
//   disk with its own empty caches, restores everything from the server: no
//   provider call, identical bytes;
// - a pull request (read-only token) sees what 10 new runs would cost before
//   paying; a read-only run succeeds and writes nothing to the server;
// - B adds the 10 runs and pays for them only; A, given the same change, pays nothing;
// - damaged or mismatched answers on the server are misses, reported once;
// - a server answering 500, failing during the run, or down: a warning, the
//   same outputs;
// - no token and no key anywhere: outputs, logs, stores, server entries.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEntry, KEY_PREFIX, USER_AGENT } from '../../stages/llm/remote-store.ts';
import { analyst } from '../helpers/analyst-fake.ts';
import { holdOut, uniqueSampleRuns } from '../helpers/trees.ts';
import type { Analyst } from '../helpers/analyst-fake.ts';
import { startFakeProviderServer } from '../helpers/fake-provider-server.ts';
import type { FakeProviderServer } from '../helpers/fake-provider-server.ts';
import { startNxCacheServer } from '../helpers/nx-cache-server.ts';
import type { Misbehaviour, NxCacheServer } from '../helpers/nx-cache-server.ts';
import { nxTarball } from '../helpers/tarball.ts';
import { GUARD_USER_AGENT } from '../../scripts/shared-cache-proxy.ts';
import { copyWorkspace } from '../../scripts/copy-workspace.ts';
import { jobRuns, readWorkflow } from '../helpers/workflow.ts';
import { hermeticEnv, REPO, tempWorkspace } from './workspace.ts';
import type { TempWorkspace } from './workspace.ts';

// Random, so that finding one anywhere cannot be a copy of this file.
const RW = `rw-${randomBytes(12).toString('hex')}`;
const RO = `ro-${randomBytes(12).toString('hex')}`;
const KEY = `sk-${randomBytes(12).toString('hex')}`;
const LOCK = 'analyses/analysis/taxonomy.lock.json';

// ---------------------------------------------------------------------------
// The CI recipe, as data.

type Job = 'plan' | 'report';
const workflow = readWorkflow(REPO);

/** The `run` steps of one job after `npm ci` (which the test workspace does not need), each with the environment GitHub gives that step. */
function job(name: Job, ctx: Record<string, Record<string, string>>): { run: string; env: Record<string, string> }[] {
  const runs = jobRuns(workflow, name, ctx);
  expect(runs[0]?.run).toBe('npm ci');
  return runs.slice(1);
}

interface Ran { code: number; out: string; ms: number }

function sh(ws: TempWorkspace, command: string, env: Record<string, string>): Promise<Ran> {
  const t0 = Date.now();
  return new Promise((done) => {
    const child = spawn('bash', ['-eo', 'pipefail', '-c', command], { cwd: ws.root, env: hermeticEnv(ws.nxDir, env) });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      done({ code: code ?? -1, out, ms: Date.now() - t0 });
    });
  });
}

// ---------------------------------------------------------------------------
// Workspaces.

/** Moves 10 runs out of the data tree; the returned function puts them back. */
const hold = (ws: TempWorkspace) => holdOut(ws.root, uniqueSampleRuns(ws.root).slice(0, 10));

/** Every file under out/analysis/ except the run logs (timestamps on purpose, never an Nx output). */
function outputs(root: string, sub = ''): Record<string, string> {
  const out: Record<string, string> = {};
  const base = join(root, 'out/analysis', sub);
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      if (p === join(root, 'out/analysis/logs')) continue;
      if (statSync(p).isDirectory()) walk(p);
      else out[p.slice(base.length + 1)] = readFileSync(p, 'latin1');
    }
  };
  walk(base);
  return out;
}

/** Targets of one command's output ("> nx run a:t" or "✔  nx run a:t"), with what Nx says after the name. */
function targets(out: string): { target: string; note: string }[] {
  return [...out.matchAll(/^\s*(?:>|✔|✖)\s+nx run [\w-]+:([\w-]+)(.*)$/gm)].map((m) => ({ target: m[1] as string, note: (m[2] as string).trim() }));
}
/** Targets restored from the remote cache, sorted, each once. */
const remoteTargets = (out: string) => [...new Set(targets(out).filter((t) => t.note === '[remote cache]').map((t) => t.target))].sort();
/** Targets Nx ran, each once. */
const ranTargets = (out: string) => [...new Set(targets(out).filter((t) => !/cache/.test(t.note)).map((t) => t.target))];
/** Every cached target of the chain came from the server, and nothing but the never-cached targets ran. */
function allFromServer(out: string): void {
  expect(remoteTargets(out)).toEqual(expect.arrayContaining(['summarize', 'categorize', 'cluster', 'report']));
  expect(ranTargets(out).filter((t) => t !== 'plan' && t !== 'task-list')).toEqual([]);
}
/** Targets restored from any cache, each once. */
const restoredTargets = (out: string) => [...new Set(targets(out).filter((t) => /cache/.test(t.note)).map((t) => t.target))];

const count = (text: string, needle: string) => text.split(needle).length - 1;

describe('one cache for the team and for CI (real nx, remote cache server, fake OpenAI endpoint)', () => {
  let provider: FakeProviderServer;
  let cache: NxCacheServer;
  let fake: Analyst;
  const made: TempWorkspace[] = [];
  const outs: string[] = [];
  const timings: [string, number][] = [];
  let pipelineYaml: string;
  /** One copy of the repository that every workspace is made from: the same commit everywhere, even if the working tree changes meanwhile. */
  let snapshot: string;
  let lockText: string;
  let a: TempWorkspace;
  let b: TempWorkspace;
  let restoreA: () => void;
  let restoreB: () => void;
  let finalOutputs: Record<string, string>;

  const ctx = (token: string) => ({
    vars: { NX_CACHE_SERVER_URL: cache.url },
    secrets: { NX_CACHE_READ_TOKEN: token === RW ? RO : token, NX_CACHE_WRITE_TOKEN: token, OPENAI_API_KEY: KEY },
  });

  /** Runs a job of the CI recipe in `ws`, with `token` as the job's token (the plan job always gets the read-only one). */
  async function runJob(ws: TempWorkspace, name: Job, label: string, token = RW, extra: Record<string, string> = {}): Promise<Ran> {
    let all = '';
    let ms = 0;
    for (const step of job(name, ctx(token))) {
      const r = await sh(ws, step.run, { ...step.env, ...extra });
      all += `$ ${step.run}\n${r.out}\n`;
      ms += r.ms;
      if (r.code !== 0) {
        outs.push(all);
        return { code: r.code, out: all, ms };
      }
    }
    outs.push(all);
    timings.push([label, ms]);
    return { code: 0, out: all, ms };
  }

  /** The documented entry point: npm run nx:shared -- <args>. */
  async function shared(ws: TempWorkspace, args: string, label: string, token = RW, extra: Record<string, string> = {}): Promise<Ran> {
    const r = await sh(ws, `npm run --silent nx:shared -- ${args}`, {
      CI: 'true',
      NX_SELF_HOSTED_REMOTE_CACHE_SERVER: cache.url,
      NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN: token,
      OPENAI_API_KEY: KEY,
      ...extra,
    });
    outs.push(r.out);
    timings.push([label, r.ms]);
    return r;
  }

  function workspace(prefix: string, opts: { deep?: boolean; lock?: boolean } = {}): TempWorkspace {
    let ws: TempWorkspace;
    if (opts.deep) {
      const parent = mkdtempSync(join(tmpdir(), prefix));
      const inner = tempWorkspace({ dir: join(parent, 'somewhere', 'else', 'entirely'), from: snapshot });
      ws = { ...inner, dispose: () => rmSync(parent, { recursive: true, force: true }) };
    } else {
      ws = tempWorkspace({ prefix, from: snapshot });
    }
    made.push(ws);
    ws.write('pipeline.yaml', pipelineYaml);
    if (opts.lock !== false && lockText) {
      mkdirSync(join(ws.root, 'analyses/analysis'), { recursive: true });
      ws.write(LOCK, lockText);
    }
    return ws;
  }

  function answering(): Analyst {
    fake = analyst();
    provider.reset();
    provider.handle(fake.handler);
    return fake;
  }
  const llmEntries = () => [...cache.entries.keys()].filter((k) => k.startsWith(KEY_PREFIX) && k !== `${KEY_PREFIX}health-check`);

  beforeAll(async () => {
    snapshot = mkdtempSync(join(tmpdir(), 'meta-analysis-team-snapshot-'));
    copyWorkspace(snapshot, { linkNodeModules: false });
    provider = await startFakeProviderServer({ maxLifetimeMs: 900_000 });
    cache = await startNxCacheServer({ readWriteTokens: [RW], readOnlyTokens: [RO], maxLifetimeMs: 900_000 });
    pipelineYaml = `
data:
  root: examples/perturbed_queries
defaults:
  provider: openai
  model: gpt-5-mini
  base_url: ${provider.url}/v1
  concurrency: 8
  max_retries: 0
  max_cost_usd: 5
analyses:
  - name: analysis
    agents: [claude-haiku-4-5-20251001, claude-opus-4-5-20251101]
`;
  });
  afterAll(async () => {
    await provider?.close();
    await cache?.close();
    for (const ws of made) ws.dispose();
    if (snapshot) rmSync(snapshot, { recursive: true, force: true });
    if (timings.length) console.log(`team cache timings:\n${timings.map(([l, ms]) => `  ${l.padEnd(58)} ${(ms / 1000).toFixed(1)} s`).join('\n')}`);
  });

  it('A builds with a committed taxonomy lock and fills the shared cache; B, elsewhere with empty caches, restores identical bytes without a call', async () => {
    a = workspace('meta-analysis-team-a-', { lock: false });
    restoreA = hold(a);
    answering();
    const locked = await shared(a, 'run analysis:lock-taxonomy', 'A: lock-taxonomy (107 runs, from scratch)');
    expect(locked.code, locked.out).toBe(0);
    expect(fake.counts.summarize).toBe(107);
    lockText = a.read(LOCK);

    const built = await runJob(a, 'report', 'A: CI report job (budget, plan, report)');
    expect(built.code, built.out).toBe(0);
    expect(built.out).toMatch(/budget: at most \$15\.00 for the whole run \(limit \$20\.00\)/);
    expect(built.out).toMatch(/shared cache http:\/\/127\.0\.0\.1:\d+: in use/);
    expect(a.read('out/analysis/report/report.md')).toContain('taxonomy.lock.json');
    // Every answer bought is on the server, verified by the store's own reader.
    const entries = llmEntries();
    expect(entries.length).toBeGreaterThanOrEqual(107);
    for (const k of entries) expect(decodeEntry(k.slice(KEY_PREFIX.length), cache.entries.get(k) as Buffer), k).toHaveProperty('answer');

    // B: another place on disk, its own Nx folder and response store, the same commit.
    b = workspace('meta-analysis-team-b-', { deep: true });
    restoreB = hold(b);
    const calls = provider.requests.length;
    const fresh = await runJob(b, 'report', 'B: CI report job, fresh clone, restored from the server');
    expect(fresh.code, fresh.out).toBe(0);
    expect(provider.requests.length).toBe(calls);
    allFromServer(fresh.out);
    expect(fresh.out).toMatch(/total\s+0 calls to pay/);
    expect(outputs(b.root)).toEqual(outputs(a.root));
  });

  it('a pull request with 10 new runs sees their cost before paying (read-only token); a read-only run succeeds and writes nothing', async () => {
    const c = workspace('meta-analysis-team-pr-');
    answering();
    const before = new Map(cache.entries);
    cache.clearRequests();
    const plan = await runJob(c, 'plan', 'PR: CI plan job (read-only token, fresh runner)', RO);
    expect(plan.code, plan.out).toBe(0);
    expect(plan.out).toMatch(/shared cache http:\/\/127\.0\.0\.1:\d+: read-only/);
    expect(plan.out).toMatch(/summarize\s+openai:gpt-5-mini [^:]*: 107 stored, 10 to pay/);
    expect(provider.requests).toHaveLength(0);
    // The plan found them on the server (and kept them in this runner's store).
    expect(cache.requests.filter((q) => q.method === 'GET' && q.key.startsWith(KEY_PREFIX) && q.status === 200).length).toBeGreaterThanOrEqual(107);

    const ro = await shared(c, 'run analysis:report', 'PR: report with the read-only token (pays for 10 runs)', RO);
    expect(ro.code, ro.out).toBe(0);
    expect(fake.counts).toMatchObject({ summarize: 10, create: 0, update: 2, cluster: 1 });
    expect(ro.out).toMatch(/107 reused from the response store, 10 computed/);
    expect(ro.out).toMatch(/shared response store http:\/\/127\.0\.0\.1:\d+: 0 answer\(s\) read, 0 written, 10 kept locally \(read-only token\)/);
    expect([...cache.entries.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [k, v] of before) expect(cache.entries.get(k)?.equals(v), k).toBe(true);
    expect(cache.requests.filter((q) => q.method === 'PUT' && q.status < 300)).toEqual([]);
    expect(cache.requests.filter((q) => q.method === 'PUT').every((q) => q.role === 'read-only' && q.status === 403)).toBe(true);
  });

  it('B adds the 10 runs and pays for them only; A, given the same change, pays nothing', async () => {
    restoreB();
    answering();
    const grown = await runJob(b, 'report', 'B: CI report job after adding 10 runs');
    expect(grown.code, grown.out).toBe(0);
    // 10 summaries, 2 update batches, the held-out check's assign call, 1 clustering.
    expect(fake.counts).toMatchObject({ summarize: 10, create: 0, update: 2, assign: 1, cluster: 1 });
    expect(provider.requests).toHaveLength(14);
    // B's own previous output keeps the 107 unchanged runs (summarize/reuse.ts).
    expect(grown.out).toMatch(/107 kept from the previous output \(unchanged runs\), 0 reused from the response store, 10 computed/);
    expect(grown.out).toMatch(/summarize\s+openai:gpt-5-mini [^:]*: 107 stored, 10 to pay/);
    const cat = JSON.parse(b.read('out/analysis/categorize/categorization.json'));
    expect(cat.metadata.taxonomy_lock).toMatchObject({ runs_kept: 107, runs_changed: [], runs_removed: [] });
    expect(cat.metadata.taxonomy_lock.runs_added).toHaveLength(10);

    restoreA();
    answering();
    const synced = await runJob(a, 'report', 'A: CI report job after the same change');
    expect(synced.code, synced.out).toBe(0);
    expect(provider.requests).toHaveLength(0);
    allFromServer(synced.out);
    finalOutputs = outputs(b.root);
    expect(outputs(a.root)).toEqual(finalOutputs);
  });

  it('a damaged and a mismatched answer on the server: the first teammate who meets them pays once and writes the next generation; the next pays nothing', async () => {
    const summaries = llmEntries().filter((k) => {
      const e = JSON.parse((cache.entries.get(k) as Buffer).toString());
      return String(e.request?.messages?.[0]?.content).includes('## Original instruction');
    }).sort();
    expect(summaries.length).toBe(117);
    const [damaged, mismatched, donor] = summaries as [string, string, string];
    const body = cache.entries.get(damaged) as Buffer;
    // A tampered answer whose digest was recomputed is accepted (the write token is the trust boundary);
    // an edit that breaks the digest, a truncation or another request's entry is not.
    const edited = JSON.parse(body.toString());
    edited.text = `${edited.text} (edited)`;
    cache.entries.set(damaged, Buffer.from(JSON.stringify(edited)));
    cache.entries.set(mismatched, cache.entries.get(donor) as Buffer);
    const summarizeOutputs = Object.fromEntries(Object.entries(finalOutputs).filter(([k]) => k.startsWith('summarize/')).map(([k, v]) => [k.slice('summarize/'.length), v]));

    const d = workspace('meta-analysis-team-damaged-');
    answering();
    // --skip-nx-cache: the targets are on the server; this makes summarize ask the response store for each answer.
    const run = await shared(d, 'run analysis:summarize --skip-nx-cache', 'D: summarize, answers from the server, 2 damaged');
    expect(run.code, run.out).toBe(0);
    expect(fake.counts.summarize).toBe(2);
    expect(count(run.out, `ignoring entry ${damaged}: its digest does not match its content. It counts as a miss: the answer is asked again and shared as ${damaged}-g1`)).toBe(1);
    expect(count(run.out, `ignoring entry ${mismatched}: mismatched`)).toBe(1);
    expect(run.out).toMatch(/115 answer\(s\) read, 2 written, 2 damaged entries ignored/);
    expect(run.out).toContain(`shared response store ${cache.url}: `); // the server, not the entry point's loopback guard
    expect(run.out).toMatch(/115 reused from the response store, 2 computed/);
    expect(outputs(d.root, 'summarize')).toEqual(summarizeOutputs);
    for (const k of [damaged, mismatched]) expect(decodeEntry(k.slice(KEY_PREFIX.length), cache.entries.get(`${k}-g1`) as Buffer), k).toHaveProperty('answer');

    // The next teammate reads the replacements: no call, no warning.
    const d2 = workspace('meta-analysis-team-damaged-next-');
    answering();
    const next = await shared(d2, 'run analysis:summarize --skip-nx-cache', 'D2: summarize, the next teammate after the repair');
    expect(next.code, next.out).toBe(0);
    expect(provider.requests).toHaveLength(0);
    expect(next.out).not.toMatch(/ignoring entry/);
    expect(next.out).toMatch(/117 answer\(s\) read, 2 damaged entries ignored, 2 read from a later generation/);
    expect(outputs(d2.root, 'summarize')).toEqual(summarizeOutputs);
  });

  it('a server answering 500 to everything: the CI job warns and builds the same outputs locally', async () => {
    const e = workspace('meta-analysis-team-500-');
    answering();
    cache.misbehave({ kind: 'error500' });
    try {
      const res = await runJob(e, 'report', 'E: CI report job, server answers 500');
      expect(res.code, res.out).toBe(0);
      expect(count(res.out, 'warning: shared cache')).toBe(2); // plan and report
      expect(res.out).toMatch(/warning: shared cache http:\/\/127\.0\.0\.1:\d+: HTTP 500 on a read\. Running with the local caches only/);
      expect(outputs(e.root)).toEqual(finalOutputs);
    } finally {
      cache.misbehave({ kind: 'none' });
    }
  });

  it('a server failing during the run: the guard notices, warns once, and the run finishes with the local caches', async () => {
    const g = workspace('meta-analysis-team-midrun-');
    answering();
    // The probe's read and write, and one request of the guard, then 500 to everything.
    cache.misbehave({ kind: 'failAfter', requests: 3 });
    try {
      const res = await shared(g, 'run analysis:report', 'G: nx:shared report, server fails during the run');
      expect(res.code, res.out).toBe(0);
      expect(count(res.out, 'warning: shared cache')).toBe(1);
      expect(res.out).toMatch(/warning: shared cache http:\/\/127\.0\.0\.1:\d+: HTTP 500 on a read \(GET (\d+|nxsha256-\d+)\)\. Going on with the local caches only/);
      expect(res.out).not.toMatch(/Misconfigured remote cache endpoint|Unexpected response status|nx failed after/);
      expect(outputs(g.root)).toEqual(finalOutputs);
    } finally {
      cache.misbehave({ kind: 'none' });
    }
  });

  it("an Nx entry with ../ paths under the report's hash (written with a write token): the run succeeds, builds the report itself, and the warning names the hash", async () => {
    // Every report entry on the server, replaced by a crafted tarball (as if uploaded before anyone built it: no digest entry).
    const reports = [...cache.entries.keys()].filter((k) => /^\d+$/.test(k) && gunzipSync(cache.entries.get(k) as Buffer).includes('out/analysis/report/report.md'));
    expect(reports.length).toBeGreaterThanOrEqual(1);
    const saved = new Map([...cache.entries].filter(([k]) => reports.includes(k) || reports.some((r) => k === `nxsha256-${r}`)));
    for (const k of reports) {
      cache.entries.set(k, nxTarball([{ name: '../../../../poisoned.txt', data: 'PWNED' }, { name: 'out/analysis/report/report.md', data: '# not the report\n' }]));
      cache.entries.delete(`nxsha256-${k}`);
    }
    try {
      const p = workspace('meta-analysis-team-poisoned-');
      answering();
      const res = await shared(p, 'run analysis:report', 'P: nx:shared report, a crafted report entry');
      expect(res.code, res.out).toBe(0);
      expect(provider.requests).toHaveLength(0);
      expect(count(res.out, 'warning: shared cache')).toBe(1);
      const named = /the Nx cache entry (\d+) is unusable: it holds an unsafe path \("\.\.\/\.\.\/\.\.\/\.\.\/poisoned\.txt"\)\. .*delete the entries \1 and nxsha256-\1/.exec(res.out);
      expect(named, res.out).not.toBeNull();
      expect(reports).toContain(named![1]);
      expect(ranTargets(res.out)).toContain('report');
      expect(outputs(p.root)).toEqual(finalOutputs);
      for (const dir of [p.root, join(p.root, '..'), p.nxDir]) expect(readdirSync(dir)).not.toContain('poisoned.txt');
    } finally {
      for (const k of reports) cache.entries.delete(k);
      for (const [k, v] of saved) cache.entries.set(k, v);
    }
  });

  const misbehaving: [string, Misbehaviour][] = [
    ['stops answering after the health check', { kind: 'hangAfter', requests: 2 }],
    ['serves corrupt tarballs', { kind: 'tarballs', how: 'corrupt' }],
    ['serves truncated tarballs', { kind: 'tarballs', how: 'truncate' }],
    ['serves another entry\'s tarball', { kind: 'tarballs', how: 'swap' }],
  ];
  for (const [what, m] of misbehaving) {
    it(`a server that ${what}: nx:shared exits 0 within 60 s over the local caches, the same outputs, one warning naming the hash`, async () => {
      const w = workspace('meta-analysis-team-misbehaving-');
      answering();
      cache.misbehave(m);
      try {
        const res = await shared(w, 'run analysis:report', `M: nx:shared report, a server that ${what}`);
        expect(res.code, res.out).toBe(0);
        expect(res.ms).toBeLessThan(60_000);
        expect(count(res.out, 'warning: shared cache'), res.out).toBe(1);
        expect(res.out).toMatch(
          m.kind === 'hangAfter'
            ? /warning: shared cache http:\/\/127\.0\.0\.1:\d+: no answer within 5\.0 s \(GET (\d+|nxsha256-\d+|llm-[0-9a-f]{64})\)\. Going on with the local caches only/
            : m.kind === 'tarballs' && m.how === 'swap'
              ? /the Nx cache entry \d+ is unusable: the tarball is not the one written under this hash/
              : /the Nx cache entry \d+ is unusable: (not a complete gzip stream|truncated)/,
        );
        expect(res.out).not.toMatch(/Failed to read entry from tarball|nx failed after|panicked/);
        // The stages' response store says nothing of its own: the guard told it the server is off.
        expect(res.out).not.toMatch(/using the local store only|answer\(s\) not written|did not finish within|still unfinished/);
        expect(outputs(w.root)).toEqual(finalOutputs);
        if (m.kind === 'tarballs') expect(provider.requests).toHaveLength(0); // the answers are still shared
      } finally {
        cache.misbehave({ kind: 'none' });
      }
    });
  }

  it('a server that is down: the CI job warns and builds the same outputs locally', async () => {
    const f = workspace('meta-analysis-team-down-');
    answering();
    await cache.close();
    const res = await runJob(f, 'report', 'F: CI report job, server down');
    expect(res.code, res.out).toBe(0);
    expect(res.out).toMatch(/warning: shared cache http:\/\/127\.0\.0\.1:\d+: unreachable \(ECONNREFUSED\)\. Running with the local caches only/);
    expect(res.out).toMatch(/Remote Cache Disabled/);
    expect(ranTargets(res.out)).toEqual(expect.arrayContaining(['summarize', 'categorize', 'cluster', 'report']));
    expect(restoredTargets(res.out)).toEqual([]);
    expect(outputs(f.root)).toEqual(finalOutputs);
  });

  it('no token and no key anywhere: command output, outputs, logs, stores, Nx caches, server entries; Nx never asks for llm-* keys', () => {
    const secrets = [RW, RO, KEY];
    const found: string[] = [];
    for (const [i, out] of outs.entries()) for (const s of secrets) if (out.includes(s)) found.push(`command output ${i}`);
    const scan = (dir: string) => {
      for (const name of readdirSync(dir)) {
        if (name === 'node_modules') continue;
        const p = join(dir, name);
        const st = statSync(p);
        if (st.isDirectory()) scan(p);
        else {
          const bytes = readFileSync(p);
          for (const s of secrets) if (bytes.includes(s)) found.push(p);
        }
      }
    };
    for (const ws of made) {
      scan(ws.root);
      if (!ws.nxDir.startsWith(ws.root)) scan(ws.nxDir);
    }
    for (const [k, v] of cache.entries) {
      const bytes = v[0] === 0x1f && v[1] === 0x8b ? gunzipSync(v) : v;
      for (const s of secrets) if (bytes.includes(s) || v.includes(s)) found.push(`server entry ${k}`);
    }
    expect(found).toEqual([]);

    // Nx asks for its own task hashes (decimal); only the store (its User-Agent) asks for llm-* keys;
    // only the entry point's guard for the digest entries of task tarballs.
    const seen = cache.requests;
    expect(seen.length).toBeGreaterThan(0);
    for (const q of seen) {
      if (q.key.startsWith(KEY_PREFIX)) expect(q.agent, `${q.method} ${q.key}`).toBe(USER_AGENT);
      else if (q.key.startsWith('nxsha256-')) expect(q.agent, `${q.method} ${q.key}`).toBe(GUARD_USER_AGENT);
      else {
        expect(q.key, `${q.method} ${q.key}`).toMatch(/^\d+$/);
        expect(q.agent).not.toBe(USER_AGENT);
      }
    }
    for (const k of cache.entries.keys()) expect(k).toMatch(/^(\d+|nxsha256-\d+|llm-[0-9a-f]{64}(-g[1-3])?|llm-health-check)$/);
  });
});
