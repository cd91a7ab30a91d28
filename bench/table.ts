// `npm run bench`: the build at 1,000, 10,000 and 100,000 runs, one table,
// every figure next to its limit.
//
//   npx node bench/table.ts [--sizes 1000,10000,100000] [--skip-100k] [--with-100k] [--repeats 3]
//       [--from-head] [--rate-runs 200] [--skip-llm] [--out bench/table.md] [--json FILE] [--keep]
//
// For each size: a synthetic tree (bench/synthetic-tree.ts in a child process,
// 5% of runs with screenshots; generated before any timed command) outside a
// throw-away copy of the workspace (the working tree, or the committed HEAD
// with --from-head; node_modules linked), then, in this order:
//   - a cold `nx run analysis:report` (offline analyzer): its wall time and
//     the categorize phase; then the disk used by out/, the Nx cache and the
//     response store;
//   - the no-op: `nx show projects` and `nx run analysis:report` with nothing
//     changed, alternately, R times each; without the daemon (nothing carries
//     over between commands) and with it (nx.json's everyday setting);
//   - the scan: `nx run analysis:task-list --skip-nx-cache`, R times; with
//     REF_TASK_LIST_SCRIPT set, the reference script on the same tree, once per
//     agent of the analysis (it selects one agent per call), R times;
//   - one run edited, then `nx run analysis:report` (no daemon): the summaries
//     it computed, its wall time against Nx start-up (`nx show projects`) + 5 s,
//     and what it wrote: the size of out/analysis/<stage> of each stage that
//     ran, and how much the Nx cache folder grew; the edit is undone after;
//   - the categorize prompt edited (a line appended to the create prompt
//     pipeline.yaml resolves to), then `nx run analysis:report`: wall time,
//     the targets that ran and those that came from the cache; the prompt is
//     restored after;
//   - the disk used by out/, the Nx cache and the response store at the end;
//   - the peak resident set of each kind of process (each stage's executor,
//     the task-list fingerprint, key, nx), the largest over every command of
//     the size.
// Then, once: `nx run analysis:summarize` on 1,000 runs against a loopback
// OpenAI endpoint answering in 200 ms, at concurrency 10; the same on
// --rate-runs runs against an endpoint allowing 60 requests a minute (a bucket
// of 60, refilled one a second; 429 with Retry-After in whole seconds); the LLM
// categorizer on 10,000 runs against an endpoint answering in 2 s, both
// strategies (bench/categorize-parallel.ts --scale: induce_assign measured,
// sequential rounds counted and its wall time computed from a measured time
// per round). --skip-llm skips these three, which take minutes. Last, the
// offline categorizer called directly on 1,000 and 10,000 runs (and 100,000
// when 100,000 is among the sizes) made in memory (bench/offline-scale.ts).
// Sizes: 100,000 is in the default; --skip-100k drops it (quick runs),
// --with-100k adds it to --sizes.
// Commands run with a clean environment (bench/lib.ts); stderr shows progress.
// The table goes to stdout and to --out.

import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { cpus, freemem, release, tmpdir, totalmem } from 'node:os';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';
import { startFakeProviderServer } from '../test/helpers/fake-provider-server.ts';
import type { FakeReply, RecordedRequest } from '../test/helpers/fake-provider-server.ts';
import { loadPipeline, resolveAnalysis } from '../stages/config.ts';
import { appendLine, editOneRun, folderUsage, makeWorkspace, median, nxCacheDir, readJsonMaybe, REPO, resetState, runNx, setDataRoot, settle, sh } from './lib.ts';
import type { FolderUsage, Measurement } from './lib.ts';
import type { ScaleResult } from './offline-scale.ts';
import { scaleCell } from './categorize-parallel.ts';
import type { ScaleRow } from './categorize-parallel.ts';

const ANALYSIS = 'analysis';
const AGENTS = ['claude-haiku-4-5-20251001', 'claude-opus-4-5-20251101'];
const STAGES = ['task-list', 'summarize', 'categorize', 'cluster', 'report'];
const LATENCY_MS = 200;
const CONCURRENCY = 10;
const PER_MINUTE = 60;
const BIG = 100_000;
/** The no-op and scan limits apply from this size on (issue 22: at 10k and 100k). */
const LARGE = 10_000;
/** One run edited: the rebuild may take Nx start-up plus this (issue 22: at 100k). */
const EDIT_SLACK_S = 5;
const MEMORY_LIMIT_MIB = 1024;

interface Options {
  sizes: number[];
  repeats: number;
  fromHead: boolean;
  rateRuns: number;
  skipLlm: boolean;
  out: string | null;
  json: string | null;
  keep: boolean;
}

function options(): Options {
  const { values: v } = parseArgs({
    options: {
      sizes: { type: 'string' }, repeats: { type: 'string' }, 'from-head': { type: 'boolean' }, 'rate-runs': { type: 'string' },
      'skip-llm': { type: 'boolean' }, 'with-100k': { type: 'boolean' }, 'skip-100k': { type: 'boolean' },
      out: { type: 'string' }, json: { type: 'string' }, keep: { type: 'boolean' },
    },
  });
  let sizes = (v.sizes ?? `1000,10000,${BIG}`).split(',').map(Number);
  if (v['with-100k'] === true && !sizes.includes(BIG)) sizes.push(BIG);
  if (v['skip-100k'] === true) sizes = sizes.filter((n) => n !== BIG);
  if (sizes.length === 0 || sizes.some((n) => !Number.isInteger(n) || n <= 0)) throw new Error(`--sizes: positive integers expected, got ${v.sizes}`);
  return {
    sizes,
    repeats: Number(v.repeats ?? 3),
    fromHead: v['from-head'] === true,
    rateRuns: Number(v['rate-runs'] ?? 200),
    skipLlm: v['skip-llm'] === true,
    out: v.out === undefined ? join(REPO, 'bench', 'table.md') : v.out === '-' ? null : v.out,
    json: v.json ?? null,
    keep: v.keep === true,
  };
}

const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const s2 = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));
/** Decimal units, as in docs/benchmarks.md. */
const bytesText = (b: number): string => {
  const a = Math.abs(b);
  const t = a < 1e3 ? `${a} B` : a < 1e6 ? `${(a / 1e3).toFixed(1)} kB` : a < 1e9 ? `${(a / 1e6).toFixed(1)} MB` : `${(a / 1e9).toFixed(2)} GB`;
  return b < 0 ? `-${t}` : t;
};
/** 1,000 -> 1k, for the limits' "at 10k and 100k". */
const short = (n: number) => (n % 1000 === 0 ? `${n / 1000}k` : String(n));

/** A cold build took about 8.5 minutes at 100,000 runs: an hour per command up to 50,000 runs, two hours beyond. */
const timeoutFor = (n: number) => (n <= 50_000 ? 3600 : 7200);

function must(m: Measurement, what: string): Measurement {
  if (!m.ok) throw new Error(`${what} failed (exit ${m.exitCode}${m.timedOut ? ', timed out' : ''}):\n${m.output.slice(-3000)}`);
  return m;
}

/** Disk use of a benchmark workspace's state. */
interface DiskUse {
  out: FolderUsage;
  nxCache: FolderUsage;
  /** The response store (.cache). */
  store: FolderUsage;
}

/** A rebuild after an edit, and what it wrote. */
interface Rebuild {
  wallS: number;
  executed: string[];
  cached: string[];
  /** out/analysis/<stage> after the build, for each stage that ran. */
  stageOutput: Record<string, FolderUsage>;
  /** What the Nx cache folder gained during the build (files and bytes; negative if Nx evicted more than it stored). */
  nxCacheGrowth: { files: number; bytes: number };
}

interface SizeResult {
  runs: number;
  treeS: number;
  coldS: number;
  categorizeS: number | null;
  /** Largest resident set per kind of process over every command of this size, MiB. */
  peakMiB: Record<string, number>;
  showS: number;
  noopS: number;
  noopCached: string;
  daemonShowS: number | null;
  daemonNoopS: number | null;
  scanS: number;
  scanStartupS: number;
  refS: number | null;
  /** One run edited: the summaries computed (summarize's run log) and the rebuild. */
  editComputed: number | null;
  edit: Rebuild;
  /** The categorize prompt edited: the file (relative to the workspace) and the rebuild. */
  promptFile: string;
  promptEdit: Rebuild;
  diskAfterCold: DiskUse;
  diskAtEnd: DiskUse;
}

/** One size's tree and workspace, and nx run in it. */
interface SizeBench {
  n: number;
  o: Options;
  scratch: string;
  tree: string;
  ws: string;
  trash: string;
  peakMiB: Record<string, number>;
  nx(args: string[], env?: Record<string, string>): Promise<Measurement>;
}

/** The tree, generated in a child process so that the benchmark's own heap never holds it, outside any timing. */
function generateTree(n: number, tree: string): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [join(REPO, 'bench', 'synthetic-tree.ts'), '--runs', String(n), '--out', tree, '--seed', 'bench', '--screenshot-fraction', '0.05'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.status !== 0) throw new Error(`synthetic-tree ${n}: ${r.stderr || r.error?.message}`);
  log(`  ${r.stdout.trim().split('\n').join('; ')}`);
  return (performance.now() - t0) / 1000;
}

function prepareSize(n: number, o: Options, scratch: string, timeFile: string): { bench: SizeBench; treeS: number } {
  const tree = join(scratch, `tree-${n}`);
  log(`n=${n}: generating the tree`);
  const treeS = generateTree(n, tree);
  const ws = join(scratch, `ws-${n}`);
  makeWorkspace(ws, !o.fromHead);
  setDataRoot(ws, tree);
  const peakMiB: Record<string, number> = {};
  const bench: SizeBench = {
    n, o, scratch, tree, ws, peakMiB,
    trash: join(scratch, `trash-${n}`),
    async nx(args, env = {}) {
      settle();
      const m = await runNx(ws, args, timeFile, timeoutFor(n), env);
      for (const [label, mib] of Object.entries(m.peakMiB)) peakMiB[label] = Math.max(peakMiB[label] ?? 0, mib);
      return m;
    },
  };
  return { bench, treeS };
}

function diskUse(ws: string): DiskUse {
  return { out: folderUsage(join(ws, 'out')), nxCache: folderUsage(nxCacheDir(ws)), store: folderUsage(join(ws, '.cache')) };
}

async function coldBuild(b: SizeBench): Promise<{ coldS: number; categorizeS: number | null }> {
  log(`n=${b.n}: cold report`);
  resetState(b.ws, b.trash);
  const cold = must(await b.nx(['run', 'analysis:report']), 'cold report');
  const at = (t: string) => cold.marks.find((m) => m.target === t)?.atS;
  const cat = at('categorize');
  const next = at('cluster');
  return { coldS: cold.wallS, categorizeS: cat !== undefined && next !== undefined ? next - cat : null };
}

async function noopWithoutDaemon(b: SizeBench): Promise<{ showS: number; noopS: number; noopCached: string }> {
  log(`n=${b.n}: no-op without the daemon`);
  const show: number[] = [];
  const noop: number[] = [];
  let noopCached = '';
  for (let r = 0; r < b.o.repeats; r++) {
    show.push(must(await b.nx(['show', 'projects']), 'show projects').wallS);
    const m = must(await b.nx(['run', 'analysis:report']), 'no-op report');
    noop.push(m.wallS);
    noopCached = `${m.cached.length}/${STAGES.length} from the cache`;
  }
  return { showS: median(show), noopS: median(noop), noopCached };
}

/** The daemon's own memory is not measured: it is no child of the nx command. */
async function noopWithDaemon(b: SizeBench): Promise<{ daemonShowS: number | null; daemonNoopS: number | null }> {
  log(`n=${b.n}: no-op with the daemon`);
  const daemon = { NX_DAEMON: 'true' };
  try {
    must(await b.nx(['show', 'projects'], daemon), 'daemon warm-up');
    must(await b.nx(['run', 'analysis:report'], daemon), 'daemon warm-up report');
    const ds: number[] = [];
    const dn: number[] = [];
    for (let r = 0; r < b.o.repeats; r++) {
      ds.push(must(await b.nx(['show', 'projects'], daemon), 'daemon show projects').wallS);
      dn.push(must(await b.nx(['run', 'analysis:report'], daemon), 'daemon no-op report').wallS);
    }
    return { daemonShowS: median(ds), daemonNoopS: median(dn) };
  } catch (err) {
    log(`  daemon measurements failed: ${(err as Error).message.split('\n')[0]}`);
    return { daemonShowS: null, daemonNoopS: null };
  } finally {
    await b.nx(['daemon', '--stop'], daemon);
  }
}

async function taskListScan(b: SizeBench): Promise<{ scanS: number; scanStartupS: number }> {
  log(`n=${b.n}: task-list scan`);
  const scans: Measurement[] = [];
  for (let r = 0; r < b.o.repeats; r++) scans.push(must(await b.nx(['run', 'analysis:task-list', '--skip-nx-cache']), 'task-list scan'));
  return { scanS: median(scans.map((m) => m.wallS)), scanStartupS: median(scans.map((m) => m.marks[0]?.atS ?? 0)) };
}

/**
 * The reference (AutoElicit's generate_successful_task_list.py) on the same
 * tree, once per agent: `--base_dir <tree> --domain all --agent A --output F`;
 * its perturbation model defaults to the one pipeline.yaml names. Its stdout
 * (a line per task: megabytes at 100k) goes to /dev/null, not into a pipe
 * buffer here.
 */
function referenceScan(b: SizeBench, script: string): number {
  log(`n=${b.n}: reference script`);
  const times: number[] = [];
  for (let r = 0; r < b.o.repeats; r++) {
    let total = 0;
    for (const agent of AGENTS) {
      settle();
      const t0 = performance.now();
      const res = spawnSync('python3', [script, '--base_dir', b.tree, '--domain', 'all', '--agent', agent, '--output', join(b.scratch, `ref-${agent}.json`)], {
        encoding: 'utf8',
        stdio: ['ignore', 'ignore', 'pipe'],
        maxBuffer: 64 * 2 ** 20,
        timeout: timeoutFor(b.n) * 1000,
      });
      if (res.status !== 0) throw new Error(`reference script failed (${res.status ?? res.signal}): ${res.stderr || res.error?.message}`);
      total += (performance.now() - t0) / 1000;
    }
    times.push(total);
  }
  return median(times);
}

/** `nx run analysis:report` after an edit: its wall time, what ran, and what it wrote (measured outside the timing). */
async function rebuild(b: SizeBench, what: string): Promise<Rebuild> {
  const cacheDir = nxCacheDir(b.ws);
  const before = folderUsage(cacheDir);
  const m = must(await b.nx(['run', 'analysis:report']), what);
  const after = folderUsage(cacheDir);
  return {
    wallS: m.wallS,
    executed: m.executed,
    cached: m.cached,
    stageOutput: Object.fromEntries(m.executed.map((t) => [t, folderUsage(join(b.ws, 'out', ANALYSIS, t))])),
    nxCacheGrowth: { files: after.files - before.files, bytes: after.bytes - before.bytes },
  };
}

async function oneRunEdited(b: SizeBench): Promise<{ editComputed: number | null; edit: Rebuild }> {
  log(`n=${b.n}: one run edited`);
  const undo = editOneRun(b.ws, b.tree, 1);
  try {
    const edit = await rebuild(b, 'report after one edit');
    const computed = readJsonMaybe(join(b.ws, 'out', ANALYSIS, 'logs', 'summarize.json'))?.['computed'];
    return { editComputed: typeof computed === 'number' ? computed : null, edit };
  } finally {
    undo();
  }
}

/** The categorize prompt pipeline.yaml resolves to (the create prompt: the one every strategy and provider reads), with a line appended. */
async function onePromptEdited(b: SizeBench): Promise<{ promptFile: string; promptEdit: Rebuild }> {
  const promptFile = resolveAnalysis(loadPipeline(b.ws), ANALYSIS).categorize.prompts.create;
  log(`n=${b.n}: one prompt edited (${promptFile})`);
  const undo = appendLine(resolve(b.ws, promptFile), 'Keep each category name short.');
  try {
    return { promptFile, promptEdit: await rebuild(b, 'report after a prompt edit') };
  } finally {
    undo();
  }
}

async function measureSize(n: number, o: Options, scratch: string, timeFile: string): Promise<SizeResult> {
  const { bench: b, treeS } = prepareSize(n, o, scratch, timeFile);
  try {
    const cold = await coldBuild(b);
    const diskAfterCold = diskUse(b.ws);
    const noop = await noopWithoutDaemon(b);
    const daemon = await noopWithDaemon(b);
    const scan = await taskListScan(b);
    const ref = process.env['REF_TASK_LIST_SCRIPT'];
    const refS = ref ? referenceScan(b, ref) : null;
    const edited = await oneRunEdited(b);
    const prompt = await onePromptEdited(b);
    return { runs: n, treeS, ...cold, peakMiB: b.peakMiB, ...noop, ...daemon, ...scan, refS, ...edited, ...prompt, diskAfterCold, diskAtEnd: diskUse(b.ws) };
  } finally {
    if (!o.keep) for (const dir of [b.ws, b.trash, b.tree]) rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// The summarize stage against a loopback OpenAI endpoint

interface LlmResult {
  runs: number;
  wallS: number;
  requests: number;
  boundS: number;
  rejected: number;
  rejectedTwice: number;
  startupS: number;
  /** Seconds from spawn: each target's start line, the first request and the last request the server received. */
  marks: { target: string; atS: number }[];
  firstRequestS: number | null;
  lastRequestS: number | null;
}

function useFakeEndpoint(ws: string, url: string, maxRetries: number): void {
  const file = join(ws, 'pipeline.yaml');
  const doc = parseDocument(readFileSync(file, 'utf8'));
  doc.setIn(['stages', 'summarize', 'provider'], 'openai');
  doc.setIn(['stages', 'summarize', 'model'], 'gpt-5-mini');
  doc.setIn(['stages', 'summarize', 'base_url'], `${url}/v1`);
  doc.setIn(['stages', 'summarize', 'concurrency'], CONCURRENCY);
  doc.setIn(['stages', 'summarize', 'max_retries'], maxRetries);
  writeFileSync(file, String(doc));
}

/** A limiter of `perMinute` requests a minute: a bucket of that many, refilled continuously; 429 with Retry-After in whole seconds. */
function rateLimited(perMinute: number, latencyMs: number) {
  const perMs = perMinute / 60_000;
  let tokens = perMinute;
  let last = Date.now();
  const history = new Map<string, string[]>();
  return {
    history,
    handler: (req: RecordedRequest): FakeReply => {
      const now = Date.now();
      tokens = Math.min(perMinute, tokens + (now - last) * perMs);
      last = now;
      const id = createHash('sha256').update(req.rawBody).digest('hex');
      const seen = history.get(id) ?? [];
      history.set(id, seen);
      if (tokens >= 1) {
        tokens -= 1;
        seen.push('ok');
        return { text: 'A summary of the run.', delayMs: latencyMs };
      }
      seen.push('429');
      return { status: 429, headers: { 'retry-after': String(Math.ceil((1 - tokens) / perMs / 1000)) }, error: 'Rate limit reached for requests' };
    },
  };
}

async function measureSummarize(runs: number, perMinute: number | null, o: Options, scratch: string, timeFile: string): Promise<LlmResult> {
  const label = perMinute === null ? 'latency' : 'rate';
  const tree = join(scratch, `tree-${label}-${runs}`);
  log(`summarize (${label}): ${runs} runs`);
  generateTree(runs, tree);
  const ws = join(scratch, `ws-${label}-${runs}`);
  makeWorkspace(ws, !o.fromHead);
  setDataRoot(ws, tree);
  const server = await startFakeProviderServer({ maxLifetimeMs: 3_600_000 });
  const limiter = perMinute === null ? null : rateLimited(perMinute, LATENCY_MS);
  const arrivals: number[] = [];
  const answer = limiter ? limiter.handler : (): FakeReply => ({ text: 'A summary of the run.', delayMs: LATENCY_MS });
  server.handle((req) => {
    arrivals.push(Date.now());
    return answer(req);
  });
  try {
    useFakeEndpoint(ws, server.url, perMinute === null ? 4 : 10);
    settle();
    const m = must(await runNx(ws, ['run', 'analysis:summarize'], timeFile, 3600, { OPENAI_API_KEY: 'sk-bench-not-a-key' }), `summarize (${label})`);
    const histories = limiter ? [...limiter.history.values()] : [];
    const boundS = perMinute === null ? (runs * LATENCY_MS) / CONCURRENCY / 1000 : Math.max(0, runs - perMinute) / (perMinute / 60) + LATENCY_MS / 1000;
    return {
      runs,
      wallS: m.wallS,
      requests: server.requests.length,
      boundS,
      rejected: histories.reduce((k, h) => k + h.filter((x) => x === '429').length, 0),
      rejectedTwice: histories.filter((h) => h.some((x, i) => x === '429' && h[i - 1] === '429')).length,
      startupS: m.marks[0]?.atS ?? 0,
      marks: m.marks.map(({ target, atS }) => ({ target, atS })),
      firstRequestS: arrivals.length > 0 ? ((arrivals[0] as number) - m.startedAtMs) / 1000 : null,
      lastRequestS: arrivals.length > 0 ? ((arrivals[arrivals.length - 1] as number) - m.startedAtMs) / 1000 : null,
    };
  } finally {
    await server.close();
    if (!o.keep) {
      rmSync(ws, { recursive: true, force: true });
      rmSync(tree, { recursive: true, force: true });
    }
  }
}

/** Where a summarize run's wall time went, in seconds from spawn: each target's start, the first and the last call the server received, the exit. */
function summarizeTimeline(r: LlmResult): string {
  const at = (x: number | null) => (x === null ? 'n/a' : `${s2(x)} s`);
  const targets = r.marks.map((m) => `${m.target} ${at(m.atS)}`).join(', ');
  return `from spawn: ${targets}, first call ${at(r.firstRequestS)}, last call ${at(r.lastRequestS)}, exit ${at(r.wallS)}`;
}

/** Both LLM categorization strategies on 10,000 runs at 2 s per call (bench/categorize-parallel.ts), in a child process. */
function categorizeParallel(): ScaleRow {
  log('LLM categorize: 10,000 runs at 2 s per call, both strategies');
  const r = spawnSync(process.execPath, ['--max-old-space-size=4096', join(REPO, 'bench', 'categorize-parallel.ts'), '--scale', '--one-json'], { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 });
  if (r.status !== 0) throw new Error(`categorize-parallel: ${r.stderr}`);
  return (JSON.parse(r.stdout.trim().split('\n').pop() as string) as { scale: ScaleRow }).scale;
}

/** At most this many sequential rounds at 10,000 runs (issue 14). */
const MAX_ROUNDS_10K = 50;

function offlineScale(n: number): ScaleResult {
  log(`offline categorize: ${n} runs`);
  const r = spawnSync(process.execPath, ['--max-old-space-size=4096', join(REPO, 'bench', 'offline-scale.ts'), '--one', String(n)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`offline-scale ${n}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as ScaleResult;
}

// ---------------------------------------------------------------------------
// The table

const ok = (met: boolean | null) => (met === null ? 'not measured' : met ? 'yes' : '**no**');
const ratio = (a: number | null, b: number | null) => (a === null || b === null ? null : a / b);
const atLarge = (n: number) => n >= LARGE;
const atBig = (n: number) => n >= BIG;

/** Met over the sizes a limit applies to: null (not measured) when none of them was measured or one lacks its figure. */
function metWhere(sizes: SizeResult[], applies: (n: number) => boolean, check: (s: SizeResult) => boolean | null): boolean | null {
  const judged = sizes.filter((s) => applies(s.runs)).map(check);
  return judged.length === 0 || judged.some((x) => x === null) ? null : judged.every(Boolean);
}

/** The limit, saying where it applies when some measured size is outside its scope (those show their figure only). */
function scoped(limit: string, sizes: SizeResult[], applies: (n: number) => boolean, scope: string): string {
  const off = sizes.filter((s) => !applies(s.runs)).map((s) => short(s.runs));
  return off.length === 0 ? limit : `${limit} at ${scope} (${off.join(', ')}: figure only)`;
}

function noopRows(sizes: SizeResult[]): string[][] {
  const col = (f: (s: SizeResult) => string) => sizes.map(f);
  const scope = `${short(LARGE)} and more`;
  return [
    [
      'No-op report vs `nx show projects`, no daemon',
      ...col((s) => `${s2(s.noopS)} s / ${s2(s.showS)} s = ${(s.noopS / s.showS).toFixed(2)}x (${s.noopCached})`),
      scoped('<= 1.5x', sizes, atLarge, scope),
      ok(metWhere(sizes, atLarge, (s) => s.noopS / s.showS <= 1.5)),
    ],
    [
      'No-op report vs `nx show projects`, with the daemon',
      ...col((s) => (s.daemonNoopS === null || s.daemonShowS === null ? 'n/a' : `${s2(s.daemonNoopS)} s / ${s2(s.daemonShowS)} s = ${(s.daemonNoopS / s.daemonShowS).toFixed(2)}x`)),
      scoped('<= 1.5x', sizes, atLarge, scope),
      ok(metWhere(sizes, atLarge, (s) => {
        const r = ratio(s.daemonNoopS, s.daemonShowS);
        return r === null ? null : r <= 1.5;
      })),
    ],
    [
      'Task-list scan (`--skip-nx-cache`) vs reference + Nx start-up',
      ...col((s) =>
        s.refS === null
          ? `${s2(s.scanS)} s (Nx start-up incl. fingerprint ${s2(s.scanStartupS)} s); reference not run (set REF_TASK_LIST_SCRIPT)`
          : `${s2(s.scanS)} s vs ${s2(s.refS)} + ${s2(s.showS)} = ${s2(s.refS + s.showS)} s (${(s.scanS / (s.refS + s.showS)).toFixed(2)}x)`,
      ),
      scoped('<= 1.0x of reference (both agents) + `nx show projects`', sizes, atLarge, scope),
      ok(metWhere(sizes, atLarge, (s) => (s.refS === null ? null : s.scanS <= s.refS + s.showS))),
    ],
  ];
}

const stageBytes = (r: Rebuild) => Object.entries(r.stageOutput).map(([t, u]) => `${t} ${bytesText(u.bytes)}`).join(', ') || 'no stage ran';
const cacheGrowth = (r: Rebuild) => `${r.nxCacheGrowth.bytes >= 0 ? '+' : ''}${bytesText(r.nxCacheGrowth.bytes)} (${r.nxCacheGrowth.files >= 0 ? '+' : ''}${r.nxCacheGrowth.files} files)`;
const ranText = (r: Rebuild) => `ran ${r.executed.join(', ') || 'nothing'}; from the cache: ${r.cached.join(', ') || 'nothing'}`;
const diskText = (d: DiskUse) => `out/ ${bytesText(d.out.diskBytes)}, Nx cache ${bytesText(d.nxCache.diskBytes)}, store ${bytesText(d.store.diskBytes)}`;

function editRows(sizes: SizeResult[]): string[][] {
  const col = (f: (s: SizeResult) => string) => sizes.map(f);
  const prompt = sizes[0]?.promptFile ?? 'the categorize prompt';
  return [
    ['One run edited: summaries computed', ...col((s) => String(s.editComputed ?? 'n/a')), '= 1', ok(sizes.every((s) => s.editComputed === 1))],
    [
      'One run edited: wall time of `nx run analysis:report` (no daemon) vs Nx start-up (`nx show projects`) + 5 s',
      ...col((s) => `${s2(s.edit.wallS)} s vs ${s2(s.showS)} + ${EDIT_SLACK_S} = ${s2(s.showS + EDIT_SLACK_S)} s; ${ranText(s.edit)}`),
      scoped(`<= \`nx show projects\` + ${EDIT_SLACK_S} s`, sizes, atBig, short(BIG)),
      ok(metWhere(sizes, atBig, (s) => s.edit.wallS <= s.showS + EDIT_SLACK_S)),
    ],
    [
      'One run edited: bytes written, out/analysis/<stage> of each stage that ran (after the build); growth of the Nx cache folder',
      ...col((s) => `${stageBytes(s.edit)}; Nx cache ${cacheGrowth(s.edit)}`),
      '–',
      '–',
    ],
    [
      `One prompt edited (\`${prompt}\`, a line appended): \`nx run analysis:report\` (no daemon)`,
      ...col((s) => `${s2(s.promptEdit.wallS)} s; ${ranText(s.promptEdit)}`),
      '–',
      '–',
    ],
    [
      'Disk used (allocated, as `du`) by out/, the Nx cache folder and the response store (.cache)',
      ...col((s) => `after the cold run: ${diskText(s.diskAfterCold)}; at the end: ${diskText(s.diskAtEnd)}`),
      '–',
      '–',
    ],
  ];
}

function llmRows(o: Options, sizes: SizeResult[], latency: LlmResult | null, rate: LlmResult | null, scale: ScaleResult[], llmCategorize: ScaleRow | null): string[][] {
  const col = (f: (s: SizeResult) => string) => sizes.map(f);
  const at = (n: number) => scale.find((r) => r.runs === n);
  const growth = at(1000) && at(10000) ? (at(10000) as ScaleResult).seconds / (at(1000) as ScaleResult).seconds : null;
  return [
    [
      `Summarize, C=${CONCURRENCY}, L=${LATENCY_MS} ms, Nx start-up and task-list included`,
      ...col((s) =>
        latency && latency.runs === s.runs
          ? `${s2(latency.wallS)} s / ${s2(latency.boundS)} s = ${(latency.wallS / latency.boundS).toFixed(3)}x (${latency.requests} calls); ${summarizeTimeline(latency)}`
          : '–',
      ),
      '<= 1.10x of N*L/C (N = 1,000)',
      ok(latency ? latency.wallS <= 1.1 * latency.boundS : null),
    ],
    [
      `Under ${PER_MINUTE} rpm (N = ${rate?.runs ?? o.rateRuns}, bucket of ${PER_MINUTE}, 429 + Retry-After)`,
      ...sizes.map((_, i) =>
        i === 0 && rate
          ? `${s2(rate.wallS)} s / ${s2(rate.boundS)} s = ${(rate.wallS / rate.boundS).toFixed(3)}x; ${rate.rejected} answers 429, ${rate.rejectedTwice} requests rejected twice in a row`
          : '–',
      ),
      '<= 1.10x of the rate-limit bound (N-60) s + L; none rejected twice in a row',
      ok(rate ? rate.wallS <= 1.1 * rate.boundS && rate.rejectedTwice === 0 : null),
    ],
    [
      'Offline categorize (direct call; in the cold pipeline run)',
      ...col((s) => {
        const d = at(s.runs);
        return `${d ? `${s2(d.seconds)} s, ${d.categories} categories, ARI ${d.ari.toFixed(3)}` : '–'}; pipeline phase ${s.categorizeS === null ? 'n/a' : `${s2(s.categorizeS)} s`}`;
      }),
      `<= 30 s at 10k; growth per 10x: ${growth === null ? 'n/a' : `${growth.toFixed(1)}x`}${at(BIG) && !sizes.some((s) => s.runs === BIG) ? ` (100k: ${s2((at(BIG) as ScaleResult).seconds)} s)` : ''}`,
      ok(at(10000) ? (at(10000) as ScaleResult).seconds <= 30 : null),
    ],
    [
      `categorize ${(llmCategorize?.runs ?? 10000).toLocaleString('en-US')} runs: sequential rounds and wall time against the fake at ${(llmCategorize?.delayMs ?? 2000) / 1000} s per call`,
      // In the column of its size; in the last column when no column has it (it always measures 10,000 runs).
      ...sizes.map((s, i) =>
        llmCategorize && (llmCategorize.runs === s.runs || (i === sizes.length - 1 && !sizes.some((x) => x.runs === llmCategorize.runs))) ? scaleCell(llmCategorize) : '–'),
      `induce_assign <= ${MAX_ROUNDS_10K} sequential rounds (sequential: the reference's 1 + ceil((N-10)/5))`,
      ok(llmCategorize ? llmCategorize.parallel.rounds <= MAX_ROUNDS_10K && llmCategorize.parallel.unassigned === 0 : null),
    ],
  ];
}

function memoryRow(sizes: SizeResult[]): string[] {
  const mem = (s: SizeResult) =>
    [...STAGES, 'task-list fingerprint', 'key', 'nx'].filter((k) => s.peakMiB[k] !== undefined).map((k) => `${k} ${(s.peakMiB[k] as number).toFixed(0)}`).join(', ');
  return [
    'Peak memory per process, largest over every command of the size (the Nx daemon not included), MiB',
    ...sizes.map(mem),
    `each <= ${MEMORY_LIMIT_MIB} MiB`,
    ok(sizes.length === 0 ? null : sizes.every((s) => Object.values(s.peakMiB).every((v) => v <= MEMORY_LIMIT_MIB))),
  ];
}

function table(o: Options, sizes: SizeResult[], latency: LlmResult | null, rate: LlmResult | null, scale: ScaleResult[], llmCategorize: ScaleRow | null): string[] {
  const head = ['Row', ...sizes.map((s) => `${s.runs.toLocaleString('en-US')} runs`), 'Limit', 'Met'];
  const rows: string[][] = [
    ['Cold `nx run analysis:report` (the tree generated before it)', ...sizes.map((s) => `${s2(s.coldS)} s`), '–', '–'],
    ...noopRows(sizes),
    ...editRows(sizes),
    ...llmRows(o, sizes, latency, rate, scale, llmCategorize),
    memoryRow(sizes),
  ];
  const esc = (c: string) => c.replace(/\|/g, '\\|');
  return [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`)];
}

function machine(o: Options): string[] {
  const c = cpus();
  const commit = sh('git', ['rev-parse', '--short=12', 'HEAD']);
  const dirty = sh('git', ['status', '--porcelain']).length > 0;
  return [
    `- date: ${new Date().toISOString()}`,
    `- machine: ${c[0]?.model ?? 'unknown CPU'}, ${c.length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM (${(freemem() / 2 ** 30).toFixed(0)} GiB free), Linux ${release()}; load average at start ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
    `- Node ${process.version}, nx ${JSON.parse(readFileSync(join(REPO, 'node_modules', 'nx', 'package.json'), 'utf8')).version}`,
    `- workspace: ${o.fromHead ? `commit ${commit}` : `working tree of ${commit}${dirty ? ' (with uncommitted changes)' : ''}`}; trees: bench/synthetic-tree.ts, seed \`bench\`, screenshots in 5% of runs; medians of ${o.repeats} repeats`,
    `- command: \`npx node bench/table.ts ${process.argv.slice(2).join(' ')}\``.replace(/ `$/, '`'),
  ];
}

/** "1,000, 10,000 and 100,000 runs" */
function sizesTitle(sizes: number[]): string {
  const names = sizes.map((n) => n.toLocaleString('en-US'));
  return `${names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}` : names[0]} runs`;
}

async function main(): Promise<void> {
  const o = options();
  const scratch = mkdtempSync(join(tmpdir(), 'bench-table-'));
  const timeFile = join(scratch, 'time.txt');
  log(`scratch folder ${scratch}; sizes ${o.sizes.join(', ')}`);
  const header = machine(o);
  const sizes: SizeResult[] = [];
  let latency: LlmResult | null = null;
  let rate: LlmResult | null = null;
  const scale: ScaleResult[] = [];
  let llmCategorize: ScaleRow | null = null;
  try {
    for (const n of o.sizes) sizes.push(await measureSize(n, o, scratch, timeFile));
    if (!o.skipLlm) {
      latency = await measureSummarize(1000, null, o, scratch, timeFile);
      rate = await measureSummarize(o.rateRuns, PER_MINUTE, o, scratch, timeFile);
      llmCategorize = categorizeParallel();
    }
    for (const n of [1000, 10000, ...(o.sizes.includes(BIG) ? [BIG] : [])]) scale.push(offlineScale(n));
  } finally {
    if (!o.keep) rmSync(scratch, { recursive: true, force: true });
  }
  // resourceUsage().maxRSS is in kilobytes: this process only, not the commands it ran.
  header.push(`- this benchmark's own process: peak resident set ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB`);
  const md = [`## The build at ${sizesTitle(o.sizes)}`, '', ...header, '', ...table(o, sizes, latency, rate, scale, llmCategorize), ''].join('\n');
  process.stdout.write(md);
  if (o.out) writeFileSync(o.out, md);
  if (o.json) writeFileSync(o.json, `${JSON.stringify({ header, sizes, latency, rate, scale, llmCategorize }, null, 2)}\n`);
}

main().catch((err: unknown) => {
  console.error(`bench: ${(err as Error).message}`);
  process.exit(1);
});
