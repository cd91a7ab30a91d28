// One truth per stage, through the real nx: the key, the record (inputs.json),
// the plan and `nx affected` come from one description, so they agree on every
// edit that used to split them. Each case was a reproduced failure before the
// key became the digest of the record (executors/key.ts).
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import lockfile from 'proper-lockfile';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyWorkspace } from '../../scripts/copy-workspace.ts';
import { holdOut, uniqueSampleRuns } from '../helpers/trees.ts';
import { startNxCacheServer } from '../helpers/nx-cache-server.ts';
import type { NxCacheServer } from '../helpers/nx-cache-server.ts';
import { cachedTargets, executedTargets, REPO, tempWorkspace } from './workspace.ts';
import type { TempWorkspace } from './workspace.ts';

const STAGES = ['task-list', 'summarize', 'categorize', 'cluster', 'report'];
const sha256 = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

function git(ws: TempWorkspace, ...args: string[]): void {
  const r = spawnSync('git', ['-c', 'user.email=e2e@example.invalid', '-c', 'user.name=e2e', ...args], { cwd: ws.root, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
}

async function run(ws: TempWorkspace, target = 'report'): Promise<{ ran: string[]; hit: string[]; out: string }> {
  const r = await ws.nxAsync(['run', `analysis:${target}`]);
  expect(r.code, r.out).toBe(0);
  return { ran: executedTargets(r.out).sort(), hit: cachedTargets(r.out).sort(), out: r.out };
}

async function plan(ws: TempWorkspace): Promise<Record<string, { verdict: string; why: string[] }>> {
  const r = await ws.nxAsync(['run', 'analysis:plan', '--json']);
  expect(r.code, r.out).toBe(0);
  const p = JSON.parse(r.out.slice(r.out.indexOf('{\n'), r.out.lastIndexOf('\n}') + 2)) as { targets: { target: string; verdict: string; why: string[] }[] };
  return Object.fromEntries(p.targets.map((t) => [t.target, { verdict: t.verdict, why: t.why }]));
}

/** The plan, then the build: every "runs" ran, every "cached" came from the cache. */
async function planAgrees(ws: TempWorkspace, label: string): Promise<{ ran: string[]; verdicts: Record<string, string>; why: Record<string, string[]> }> {
  const p = await plan(ws);
  const { ran, hit } = await run(ws);
  for (const [target, { verdict, why }] of Object.entries(p)) {
    if (verdict === 'runs') expect(ran, `${label}: the plan says ${target} runs (${why.join('; ')})`).toContain(target);
    if (verdict === 'cached') expect(hit, `${label}: the plan says ${target} is cached`).toContain(target);
  }
  return { ran, verdicts: Object.fromEntries(Object.entries(p).map(([t, v]) => [t, v.verdict])), why: Object.fromEntries(Object.entries(p).map(([t, v]) => [t, v.why])) };
}

/**
 * Runs `nx run analysis:<target>` while this process holds the analysis'
 * writer lock (as lock-taxonomy or another build does while it writes); once
 * Nx has hashed `stage` (its key script rewrote the record it hashed),
 * `meanwhile` changes an input, then the lock is released and the stage reads.
 */
async function changeAfterHashing(ws: TempWorkspace, target: string, stage: string, meanwhile: (keyed: { files: Record<string, string> }) => void): Promise<{ code: number; out: string }> {
  const keyFile = join(ws.root, `.cache/keys/analysis/${stage}.json`);
  const keyedBefore = readFileSync(keyFile, 'utf8');
  const release = lockfile.lockSync(join(ws.root, 'out/analysis'), { realpath: false, stale: 60_000 });
  const build = ws.nxSpawn(['run', `analysis:${target}`]);
  try {
    const deadline = Date.now() + 120_000;
    while (readFileSync(keyFile, 'utf8') === keyedBefore) {
      if (Date.now() > deadline) throw new Error(`${stage} was never hashed`);
      await new Promise((r) => setTimeout(r, 100));
    }
    meanwhile(JSON.parse(readFileSync(keyFile, 'utf8')));
  } finally {
    release();
  }
  return build.done;
}

const record = (ws: TempWorkspace, stage: string) => JSON.parse(ws.read(`out/analysis/${stage}/inputs.json`)) as { files: Record<string, string>; packages: Record<string, string>; settings: string };

describe('one truth per stage: key, record, plan and affected agree', () => {
  let ws: TempWorkspace;
  let outside: string;

  beforeAll(async () => {
    ws = tempWorkspace({ prefix: 'meta-analysis-one-truth-' });
    outside = mkdtempSync(join(tmpdir(), 'meta-analysis-outside-'));
    git(ws, 'init', '-q');
    git(ws, 'add', '-A');
    git(ws, 'commit', '-qm', 'base');
    const first = await run(ws);
    expect(first.ran).toEqual([...STAGES].sort());
  });
  afterAll(() => {
    ws?.dispose();
    if (outside) rmSync(outside, { recursive: true, force: true });
  });

  it('a prompt listed in .git/info/exclude is hashed by content: editing it re-runs summarize, and the plan said so', async () => {
    writeFileSync(join(ws.root, '.git/info/exclude'), 'prompts/summarize.md\n');
    await run(ws);
    ws.write('prompts/summarize.md', `${ws.read('prompts/summarize.md')}\nOne more line for the excluded prompt.\n`);
    const r = await planAgrees(ws, 'excluded prompt');
    expect(r.verdicts['summarize']).toBe('runs');
    expect(r.why['summarize']).toContain('prompts/summarize.md changed');
    expect(r.ran).toContain('summarize');
  });

  it('a prompt that is a symlink to a file outside the workspace is hashed by its target\'s content', async () => {
    const target = join(outside, 'summarize.md');
    writeFileSync(target, ws.read('prompts/summarize.md'));
    symlinkSync(target, join(ws.root, 'prompts/linked.md'));
    ws.write('pipeline.yaml', ws.read('pipeline.yaml').replace('prompt: prompts/summarize.md', 'prompt: prompts/linked.md'));
    await run(ws);
    writeFileSync(target, `${readFileSync(target, 'utf8')}\nEdited through the link.\n`);
    const r = await planAgrees(ws, 'symlinked prompt');
    expect(r.ran).toContain('summarize');
    expect(record(ws, 'summarize').files['prompts/linked.md']).toBe(sha256(readFileSync(target)));
  });

  it('a prompt whose name reads as a glob is hashed as that one file', async () => {
    ws.write('prompts/summarize[v2].md', ws.read('prompts/summarize.md'));
    ws.write('pipeline.yaml', ws.read('pipeline.yaml').replace('prompt: prompts/linked.md', 'prompt: "prompts/summarize[v2].md"'));
    await run(ws);
    ws.write('prompts/summarize[v2].md', `${ws.read('prompts/summarize[v2].md')}\nv2 edit.\n`);
    const r = await planAgrees(ws, 'glob-named prompt');
    expect(r.ran).toContain('summarize');
  });

  it('what summarize writes to evaluations.json is in the keys of categorize and report', async () => {
    const file = 'stages/summarize/stage.ts';
    const code = ws.read(file);
    const reordered = code.replace('const ids = [...tally.evaluations.keys()].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));', 'const ids = [...tally.evaluations.keys()].sort((x, y) => (x < y ? 1 : x > y ? -1 : 0));');
    expect(reordered).not.toBe(code);
    const index = ws.read('out/analysis/summarize/index.json');
    ws.write(file, reordered);
    const r = await planAgrees(ws, 'evaluations.json order');
    expect(ws.read('out/analysis/summarize/index.json')).toBe(index);
    expect(r.ran).toEqual(expect.arrayContaining(['summarize', 'categorize', 'report']));
    ws.write(file, code);
    await run(ws);
  });

  it('a comment in plugin-only code re-runs nothing', async () => {
    for (const f of ['executors/plugin.ts', 'executors/code-closure.ts']) ws.write(f, `${ws.read(f)}\n// a comment that changes no output\n`);
    const r = await planAgrees(ws, 'plugin comment');
    expect(r.ran).toEqual([]);
  });

  it('a report setting: the plan, Nx and nx affected all see it', async () => {
    git(ws, 'add', '-A');
    git(ws, 'commit', '-qm', 'state');
    ws.write('pipeline.yaml', ws.read('pipeline.yaml').replace('max_examples: 3', 'max_examples: 4'));
    const affected = ws.nx(['show', 'projects', '--affected', '--base=HEAD']);
    expect(affected.out.split('\n').map((l) => l.trim())).toContain('analysis');
    const p = await plan(ws);
    expect(p['report']!.verdict).toBe('runs');
    expect(Object.values(p).filter((v) => v.verdict === 'runs')).toHaveLength(1);
    const r = await ws.nxAsync(['affected', '-t', 'report', '--base=HEAD']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(/nx run analysis:report(?!\s+\[)/);
    expect(r.out).not.toMatch(/nx run analysis:summarize(?!\s+\[)/);
    // Nothing of it changed: nothing affected.
    ws.write('pipeline.yaml', ws.read('pipeline.yaml').replace('max_examples: 4', 'max_examples: 3'));
    expect(ws.nx(['show', 'projects', '--affected', '--base=HEAD']).out.split('\n').map((l) => l.trim())).not.toContain('analysis');
  });

  it('one added run: the plan names every target that runs, and Nx runs them', async () => {
    // Built without two runs; then one comes back: a state Nx has never seen.
    const [first, second] = uniqueSampleRuns(ws.root).slice(0, 2) as [string, string];
    const both = holdOut(ws.root, [first, second]);
    await run(ws);
    both();
    const back = holdOut(ws.root, [second]);
    const r = await planAgrees(ws, 'one added run');
    back();
    expect(r.verdicts['task-list']).toBe('runs');
    expect(r.why['task-list']!.join(' ')).toContain('1 run added');
    expect(r.ran).toEqual(expect.arrayContaining(['task-list', 'summarize']));
  });

  it('nx.json is in every key: the plan says so when it changes', async () => {
    const nxJson = ws.read('nx.json');
    ws.write('nx.json', nxJson.replace('"analytics": false', '"analytics": false,\n  "parallel": 2'));
    const r = await planAgrees(ws, 'nx.json');
    for (const s of STAGES) expect(r.why[s], s).toContain('nx.json changed (Nx hashes it into every key)');
    ws.write('nx.json', nxJson);
    await run(ws);
  });

  it('an installed package version that differs from the lockfile: the stages re-run and record the version that ran', async () => {
    // node_modules of its own: every package linked, yaml copied with another version than package-lock.json's.
    const nm = join(ws.root, 'node_modules');
    unlinkSync(nm);
    mkdirSync(nm);
    for (const name of readdirSync(join(REPO, 'node_modules'))) {
      if (name === 'yaml') cpSync(join(REPO, 'node_modules', name), join(nm, name), { recursive: true });
      else symlinkSync(join(REPO, 'node_modules', name), join(nm, name));
    }
    const pkgFile = join(nm, 'yaml/package.json');
    const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { version: string };
    const version = `${pkg.version}-local.1`;
    writeFileSync(pkgFile, JSON.stringify({ ...pkg, version }, null, 2));
    const r = await planAgrees(ws, 'installed package version');
    for (const s of STAGES) expect(r.verdicts[s], s).toBe('runs');
    expect(r.why['summarize']!.join(' ')).toContain(`yaml ${pkg.version} -> ${version}`);
    expect(r.ran).toEqual([...STAGES].sort());
    expect(record(ws, 'report').packages['node_modules/yaml']).toBe(version);
  });

  it('report racing lock-taxonomy: an input that changes after Nx hashed it fails the stage, and no entry disagrees with its key', async () => {
    const lock = 'analyses/analysis/taxonomy.lock.json';
    await run(ws, 'lock-taxonomy');
    const lockText = ws.read(lock);
    rmSync(join(ws.root, lock));
    await run(ws);
    ws.write('pipeline.yaml', ws.read('pipeline.yaml').replace(/max_examples: \d+/, 'max_examples: 5'));
    // Nx hashes report with no lock file; lock-taxonomy writes one before report reads.
    const raced = await changeAfterHashing(ws, 'report', 'report', (keyed) => {
      expect(keyed.files[lock]).toBe('missing');
      ws.write(lock, lockText);
    });
    expect(raced.code, raced.out).not.toBe(0);
    expect(raced.out).toContain('its inputs changed after Nx hashed them');
    expect(raced.out).toContain(`${lock} changed`);
    // The next build runs report for the lock it reads, and records it.
    const next = await run(ws);
    expect(next.ran).toContain('report');
    expect(record(ws, 'report').files[lock]).toBe(sha256(lockText));
    // Nothing was stored under the no-lock key: without the lock, report runs again.
    rmSync(join(ws.root, lock));
    expect((await run(ws)).ran).toContain('report');
  });
});

describe('one truth for the data: runs added while task-list waits for the writer lock', () => {
  let ws: TempWorkspace;
  afterAll(() => ws?.dispose());

  it('selects the data its key hashed (from the crawl the key left), and the next build selects what is there', async () => {
    ws = tempWorkspace({ prefix: 'meta-analysis-one-truth-data-' });
    const [held] = uniqueSampleRuns(ws.root).slice(0, 1) as [string];
    const back = holdOut(ws.root, [held]);
    expect((await ws.nxAsync(['run', 'analysis:task-list'])).code).toBe(0);
    const pid = held.split('/').slice(-3, -2)[0]!.replace(/^perturbed_query_/, '');
    // A change task-list must run for: its settings (the same domains, named). The run comes back after Nx hashed the data.
    ws.write('pipeline.yaml', ws.read('pipeline.yaml').replace('domains: all', 'domains: [multi_apps_test, os]'));
    const raced = await changeAfterHashing(ws, 'task-list', 'task-list', () => back());
    expect(raced.code, raced.out).toBe(0);
    // What was hashed is what was read: the output (cached under that key) is the hashed data's, without the run.
    expect(ws.read('out/analysis/task-list/runs.json')).not.toContain(pid);
    const next = await ws.nxAsync(['run', 'analysis:task-list']);
    expect(next.code, next.out).toBe(0);
    expect(executedTargets(next.out)).toEqual(['task-list']);
    expect(ws.read('out/analysis/task-list/runs.json')).toContain(pid);
  });
});

describe('one truth through the remote cache: a teammate with another prompt of the same name', () => {
  let cache: NxCacheServer;
  const made: TempWorkspace[] = [];
  let snapshot: string;
  const TOKEN = 'rw-one-truth-token';

  beforeAll(async () => {
    snapshot = mkdtempSync(join(tmpdir(), 'meta-analysis-one-truth-snapshot-'));
    copyWorkspace(snapshot, { linkNodeModules: false });
    // The prompt is invisible to Nx's own file hashing.
    writeFileSync(join(snapshot, '.nxignore'), 'prompts/summarize.md\n');
    cache = await startNxCacheServer({ readWriteTokens: [TOKEN], readOnlyTokens: [], maxLifetimeMs: 280_000 });
  });
  afterAll(async () => {
    await cache?.close();
    for (const w of made) w.dispose();
    if (snapshot) rmSync(snapshot, { recursive: true, force: true });
  });

  it('restores nothing built from the other prompt: the teammate buys its own summaries', async () => {
    const remote = { NX_SELF_HOSTED_REMOTE_CACHE_SERVER: cache.url, NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN: TOKEN };
    const a = tempWorkspace({ prefix: 'meta-analysis-one-truth-a-', from: snapshot });
    const b = tempWorkspace({ prefix: 'meta-analysis-one-truth-b-', from: snapshot });
    made.push(a, b);
    b.write('prompts/summarize.md', `${b.read('prompts/summarize.md')}\nThe teammate's own wording.\n`);
    const first = await a.nxAsync(['run', 'analysis:report'], remote);
    expect(first.code, first.out).toBe(0);
    const second = await b.nxAsync(['run', 'analysis:report'], remote);
    expect(second.code, second.out).toBe(0);
    expect(cachedTargets(second.out)).toContain('task-list');
    expect(executedTargets(second.out)).toContain('summarize');
    expect(JSON.parse(b.read('out/analysis/summarize/inputs.json')).files['prompts/summarize.md']).toBe(sha256(b.read('prompts/summarize.md')));
  });
});
