// The invariant behind every cache key, checked against what really runs and
// independently of the scanner that derives the inputs (executors/code-closure.ts):
// each stage's real executor runs in a child Node process, in a temporary copy
// of the workspace, under a tracer (test/helpers/trace-reads.ts) that records
// every module loaded and every file read, listed or probed. Twice: with the
// offline provider, and with the openai provider against a loopback fake, so
// the lazily imported LLM code is loaded too. Then, for each cached target the
// plugin infers:
//   - every workspace file the stage touched is in its key's description
//     (executors/key.ts hashes it): its code or a named file, unless it is
//     covered another way by design (pipeline.yaml: the stage's settings
//     slice; the data root: task-list's fingerprint and its ledger's digests;
//     upstream outputs: exactly the files it declares it reads, and the
//     summaries summarize's index.json digests; its own output, logs, the
//     response store, .env);
//   - every package a workspace file imports is in the description's packages;
//   - every code file in a description exists.
import { spawn } from 'node:child_process';
import { globSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join, matchesGlob, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { TargetConfiguration } from '@nx/devkit';
import type { KeyDescription } from '../../stages/input-record.ts';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNodes, keyCommand, keyDescriptionOf } from '../../executors/plugin.ts';
import { copyWorkspace } from '../../scripts/copy-workspace.ts';
import { loadPipeline, namedPaths, resolveAnalysis, STAGES } from '../../stages/config.ts';
import type { StageName } from '../../stages/config.ts';
import { analyst } from '../helpers/analyst-fake.ts';
import type { Analyst } from '../helpers/analyst-fake.ts';
import { startFakeProviderServer } from '../helpers/fake-provider-server.ts';
import type { FakeProviderServer } from '../helpers/fake-provider-server.ts';
import type { TraceFile } from '../helpers/trace-reads.ts';

const REPO = resolve(import.meta.dirname, '..', '..');
const TRACER = join(REPO, 'test/helpers/trace-reads.ts');
const ANALYSIS = 'analysis';
const KEY = 'sk-stage-inputs-test';

type Pass = 'offline' | 'openai';
interface Run { code: number | null; out: string; trace: TraceFile }

let root: string;
let server: FakeProviderServer;
let fake: Analyst;
const runs = new Map<`${Pass}:${StageName}`, Run>();
const targetsOf = new Map<Pass, Record<string, TargetConfiguration>>();
const dataRootOf = new Map<Pass, string>();
/** Paths pipeline.yaml names (workspace-relative): every stage checks they exist before it starts. */
const namedOf = new Map<Pass, Set<string>>();

/** Runs one stage's executor (its default export) in a traced child process. */
function runStage(stage: StageName, pass: Pass): Promise<Run> {
  const traceFile = join(root, `.trace-${pass}-${stage}.json`);
  const entry = pathToFileURL(join(root, 'executors', stage, 'executor.ts')).href;
  const script = [
    `const { default: run } = await import(${JSON.stringify(entry)});`,
    `const result = await run({ analysis: ${JSON.stringify(ANALYSIS)}, outDir: 'out' }, { root: process.cwd(), projectName: ${JSON.stringify(ANALYSIS)} });`,
    'process.exitCode = result?.success ? 0 : 1;',
  ].join('\n');
  // Built from nothing: no NX_* and no provider variable of the caller leaks in.
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: root,
    FORCE_COLOR: '0',
    TRACE_READS_OUT: traceFile,
    ...(pass === 'openai' ? { OPENAI_API_KEY: KEY } : {}),
  };
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, ['--import', pathToFileURL(TRACER).href, '--input-type=module', '-e', script], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
      killSignal: 'SIGKILL',
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', fail);
    child.on('close', (code) => {
      let trace: TraceFile;
      try {
        trace = JSON.parse(readFileSync(traceFile, 'utf8')) as TraceFile;
      } catch (err) {
        fail(new Error(`${pass} ${stage}: no trace (${(err as Error).message})\n${out}`));
        return;
      }
      done({ code, out, trace });
    });
  });
}

async function targetsFor(): Promise<Record<string, TargetConfiguration>> {
  const [, fn] = createNodes;
  const result = await fn(['pipeline.yaml'], { outDir: 'out' }, { workspaceRoot: root, nxJsonConfiguration: {} });
  return result[0]![1].projects![`analyses/${ANALYSIS}`]!.targets!;
}

async function runPass(pass: Pass): Promise<void> {
  rmSync(join(root, 'out'), { recursive: true, force: true });
  targetsOf.set(pass, await targetsFor());
  const resolved = resolveAnalysis(loadPipeline(root), ANALYSIS);
  dataRootOf.set(pass, resolved.data.root);
  namedOf.set(pass, new Set(namedPaths(resolved).map((n) => relative(root, resolve(root, n.path)).split(sep).join('/'))));
  for (const stage of STAGES) {
    const run = await runStage(stage, pass);
    if (run.code !== 0) throw new Error(`${pass} ${stage} failed (exit ${run.code}):\n${run.out}`);
    runs.set(`${pass}:${stage}`, run);
  }
}

beforeAll(async () => {
  server = await startFakeProviderServer({ maxLifetimeMs: 120_000 });
  fake = analyst();
  server.handle(fake.handler);
  root = realpathSync(mkdtempSync(join(tmpdir(), 'stage-inputs-')));
  copyWorkspace(root);
  rmSync(join(root, '.env'), { force: true }); // a developer's keys and endpoints stay out of the runs
  await runPass('offline');
  // The same pipeline with an LLM provider: the SDK and the client are imported lazily.
  const cfg = YAML.parse(readFileSync(join(root, 'pipeline.yaml'), 'utf8'));
  cfg.defaults = { ...cfg.defaults, provider: 'openai', model: 'gpt-5-mini', base_url: `${server.url}/v1`, concurrency: 8, max_retries: 0 };
  writeFileSync(join(root, 'pipeline.yaml'), YAML.stringify(cfg));
  await runPass('openai');
}, 110_000);

afterAll(async () => {
  await server?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------
// The check

const BUILTINS = new Set(builtinModules);
const keyOf = (t: TargetConfiguration): KeyDescription => {
  const d = keyDescriptionOf(t);
  if (!d) throw new Error('a cached target without a key description');
  return d;
};
/** What the key hashes by content, workspace-relative: the code and the named files. */
const keyedFilesOf = (d: KeyDescription) => [...d.code, ...d.files.map((f) => relative(root, resolve(root, f)).split(sep).join('/'))];
const outputsOf = (t: TargetConfiguration) => (t.outputs ?? []).map((o) => o.replace(/^\{workspaceRoot\}\//, ''));
const under = (rel: string, dir: string) => rel === dir || rel.startsWith(`${dir.replace(/\/+$/, '')}/`);

/** Upstream targets, transitively, through dependsOn. */
function upstreamOf(targets: Record<string, TargetConfiguration>, name: string): string[] {
  const seen = new Set<string>();
  const walk = (n: string) => {
    for (const d of targets[n]?.dependsOn ?? []) {
      const dep = typeof d === 'string' ? d.replace(/^\^/, '') : (d.target as string);
      if (!seen.has(dep)) {
        seen.add(dep);
        walk(dep);
      }
    }
  };
  walk(name);
  return [...seen];
}

interface Touch { rel: string; how: string }
/** Where packages live (node_modules is a link to the repository's). */
const PACKAGE_DIRS = [join(REPO, 'node_modules')];

/** Workspace files the run touched (not node_modules), files outside it, and the packages workspace files imported. */
function touchedBy(run: Run): { files: Touch[]; outside: { abs: string; how: string }[]; packages: { pkg: string; from: string }[] } {
  const prefix = root + sep;
  const rel = (abs: string) => (abs.startsWith(prefix) ? abs.slice(prefix.length).split(sep).join('/') : null);
  const inWorkspace = (abs: string) => {
    const r = rel(abs);
    return r !== null && !under(r, 'node_modules') && !/^\.trace-/.test(r) ? r : null;
  };
  const files: Touch[] = [];
  for (const url of run.trace.loaded) {
    if (!url.startsWith('file:')) continue;
    const r = inWorkspace(fileURLToPath(url));
    if (r) files.push({ rel: r, how: 'module' });
  }
  const outside: { abs: string; how: string }[] = [];
  for (const a of run.trace.accesses) {
    const r = inWorkspace(a.path);
    if (r !== null) files.push({ rel: r, how: `${a.kind} (${a.via})` });
    else if (rel(a.path) === null && !PACKAGE_DIRS.some((d) => under(a.path, d))) outside.push({ abs: a.path, how: `${a.kind} (${a.via})` });
  }
  const packages: { pkg: string; from: string }[] = [];
  for (const r of run.trace.resolved) {
    if (!r.parent?.startsWith('file:')) continue;
    const from = inWorkspace(fileURLToPath(r.parent));
    const s = r.specifier;
    if (!from || s.startsWith('.') || s.startsWith('/') || s.startsWith('#') || /^[a-z][a-z\d+.-]*:/i.test(s) || BUILTINS.has(s)) continue;
    packages.push({ pkg: s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : (s.split('/')[0] as string), from });
  }
  return { files, outside, packages };
}

/** Missing inputs of one target for one traced run: message -> how the run touched it (empty: all covered). */
function violations(stage: StageName, pass: Pass, targets: Record<string, TargetConfiguration>, run: Run): Map<string, Set<string>> {
  const target = targets[stage]!;
  const key = keyOf(target);
  const inputs = keyedFilesOf(key);
  const external = new Set(key.packages);
  const own = outputsOf(target);
  const upstreamDirs = upstreamOf(targets, stage).flatMap((u) => outputsOf(targets[u]!));
  const outputOf = (s: string) => outputsOf(targets[s]!)[0]!;
  // The upstream files the key covers: those the stage declares, and the summaries summarize's index digests.
  const upstreamRead = (rel: string) =>
    key.reads.some(([s, f]) => rel === `${outputOf(s)}/${f}` || (s === 'summarize' && f === 'index.json' && under(rel, `${outputOf(s)}/summaries`)));
  const dataRoot = relative(root, resolve(root, dataRootOf.get(pass)!)).split(sep).join('/');
  const outParent = own.map((o) => o.slice(0, o.lastIndexOf('/')));
  const allowed = (rel: string, how: string) =>
    rel === 'pipeline.yaml' || // the stage's settings slice is a runtime input
    rel === '.env' || // credentials only
    (how.startsWith('stat') && namedOf.get(pass)!.has(rel)) || // checkNamedPaths: a missing file fails the stage, never changes its output
    (!dataRoot.startsWith('..') && under(rel, dataRoot)) || // the task-list ledger's digests
    upstreamRead(rel) || // dependentTasksOutputFiles, and digested in the record
    (upstreamDirs.some((u) => under(rel, u)) && !how.startsWith('read')) || // looking whether an upstream output is there reads nothing of it
    // Pure stages: of its own previous output a stage reads only the answers it carries (answers by
    // request hash, which cannot change a result); it may list, build and swap its folders.
    own.some((o) => rel === `${o}/answers.jsonl` || /^\.(building|old)-\d+(\/|$)/.test(rel.slice(o.length)) && rel.startsWith(o)) ||
    own.some((o) => (rel === o || rel.startsWith(`${o}/`)) && (how.startsWith('list') || how.startsWith('stat'))) ||
    outParent.some((p) => rel === p && !how.startsWith('read')) || // leftover cleanup next to the output
    under(rel, `out/${ANALYSIS}/logs`) || // run logs: never an input
    under(rel, `out/${ANALYSIS}.lock`) || rel === `out/${ANALYSIS}.lock.owner` || // the writer lock and its owner (executors/lib/context.ts): who writes, never what
    under(rel, '.cache/llm-store'); // answers by request hash
  const covered = (rel: string) => inputs.includes(rel);
  const found = new Map<string, Set<string>>();
  const add = (msg: string, how: string) => found.set(msg, (found.get(msg) ?? new Set()).add(`${how}, ${pass}`));
  const touched = touchedBy(run);
  for (const { rel, how } of touched.files) {
    if (allowed(rel, how) || covered(rel)) continue;
    const st = statSync(join(root, rel), { throwIfNoEntry: false });
    if (st?.isDirectory()) {
      // A listed or probed folder of the code: every file in it must be an input.
      const missing = globSync('*', { cwd: join(root, rel) }).map((f) => `${rel}/${f}`).filter((f) => statSync(join(root, f)).isFile() && !covered(f));
      for (const m of missing) add(`${stage}: ${m} is not in its key`, `in ${rel}: ${how}`);
      continue;
    }
    add(`${stage}: ${rel} is not in its key`, how);
  }
  for (const { abs, how } of touched.outside) {
    if (!dataRoot.startsWith('..') || !under(abs, resolve(root, dataRootOf.get(pass)!))) add(`${stage}: ${abs} is outside the workspace: no input can cover it`, how);
  }
  for (const { pkg, from } of touched.packages) {
    if (!external.has(pkg)) add(`${stage}: package ${pkg} is not in its key's packages`, `imported by ${from}`);
  }
  return found;
}

/** One readable line per missing input: `stage: file is not a file input [how it was touched, pass; ...]`. */
function report(found: Map<string, Set<string>>[]): string[] {
  const all = new Map<string, Set<string>>();
  for (const m of found) for (const [msg, hows] of m) all.set(msg, new Set([...(all.get(msg) ?? []), ...hows]));
  return [...all].map(([msg, hows]) => `${msg} [${[...hows].sort().join('; ')}]`).sort();
}

describe('each cached target\'s inputs cover what its executor really loads and reads', () => {
  it('ran every stage in both passes, the LLM code paths included', () => {
    for (const pass of ['offline', 'openai'] as const) for (const stage of STAGES) expect(runs.get(`${pass}:${stage}`)?.code, `${pass} ${stage}`).toBe(0);
    expect(fake.counts.summarize).toBeGreaterThan(0);
    expect(fake.counts.create + fake.counts.update).toBeGreaterThan(0);
    expect(fake.counts.cluster).toBeGreaterThan(0);
    // The LLM pass loads workspace modules the offline pass does not (the lazily imported client).
    const modules = (pass: Pass) => new Set(touchedBy(runs.get(`${pass}:summarize`)!).files.filter((f) => f.how === 'module').map((f) => f.rel));
    const offline = modules('offline');
    expect([...modules('openai')].filter((m) => !offline.has(m)).length).toBeGreaterThan(0);
  });

  it('every workspace file and package a stage touched is an input of its target', () => {
    const found: Map<string, Set<string>>[] = [];
    for (const pass of ['offline', 'openai'] as const) {
      const targets = targetsOf.get(pass)!;
      for (const stage of STAGES) {
        // Targets that are never cached (plan, lock-taxonomy) have no inputs to check.
        if (targets[stage]?.cache !== true) continue;
        found.push(violations(stage, pass, targets, runs.get(`${pass}:${stage}`)!));
      }
    }
    expect(report(found)).toEqual([]);
  });

  it('every code file a key names exists', () => {
    const problems: string[] = [];
    for (const [pass, targets] of targetsOf) {
      for (const [name, target] of Object.entries(targets)) {
        if (target.cache !== true) continue;
        for (const f of keyOf(target).code) if (!statSync(join(root, f), { throwIfNoEntry: false })?.isFile()) problems.push(`${name}: ${f} (${pass}) is no file`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('the check fails when a loaded file is missing from the inputs', () => {
    const targets = targetsOf.get('openai')!;
    for (const stage of STAGES) {
      if (targets[stage]?.cache !== true) continue;
      const run = runs.get(`openai:${stage}`)!;
      // The executor's entry module is loaded by every run; drop it from the inputs.
      const entry = touchedBy(run).files.find((f) => f.how === 'module')!.rel;
      const key = keyOf(targets[stage]!);
      const inputs = targets[stage]!.inputs!.map((i) => (typeof i === 'object' && i !== null && 'runtime' in i ? { runtime: keyCommand({ ...key, code: key.code.filter((f) => f !== entry) }) } : i));
      const without = { ...targets, [stage]: { ...targets[stage]!, inputs } };
      expect(violations(stage, 'openai', without, run).get(`${stage}: ${entry} is not in its key`)).toContain('module, openai');
    }
  });
});
