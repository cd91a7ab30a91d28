// `npm run bench`: the build at 1,000 and 10,000 runs, one table, every
// figure next to its limit.
//
//   npx node bench/table.ts [--sizes 1000,10000] [--repeats 3] [--from-head] [--rate-runs 200]
//       [--skip-llm] [--with-100k] [--out bench/table.md] [--json FILE] [--keep]
//
// For each size: a synthetic tree (bench/synthetic-tree.ts, 5% of runs with
// screenshots) outside a throw-away copy of the workspace (the working tree,
// or the committed HEAD with --from-head; node_modules linked), then:
//   - a cold `nx run analysis:report` (offline analyzer): the peak memory of
//     each stage's process and of the task-list fingerprint, and the
//     categorize phase;
//   - the no-op: `nx show projects` and `nx run analysis:report` with nothing
//     changed, alternately, R times each; without the daemon (nothing carries
//     over between commands) and with it (nx.json's everyday setting);
//   - the scan: `nx run analysis:task-list --skip-nx-cache`, R times; with
//     REF_TASK_LIST_SCRIPT set, the reference script on the same tree, once per
//     agent of the analysis (it selects one agent per call), R times;
//   - one run edited: the summaries the next `nx run analysis:report` computes.
// Then, once: `nx run analysis:summarize` on 1,000 runs against a loopback
// OpenAI endpoint answering in 200 ms, at concurrency 10; the same on
// --rate-runs runs against an endpoint allowing 60 requests a minute (a bucket
// of 60, refilled one a second; 429 with Retry-After in whole seconds); and the
// offline categorizer called directly on 1,000 and 10,000 (and 100,000 with
// --with-100k) runs made in memory (bench/offline-scale.ts); and the LLM
// categorizer on 10,000 runs against an endpoint answering in 2 s, both
// strategies (bench/categorize-parallel.ts --scale: induce_assign measured,
// sequential rounds counted and its wall time computed from a measured time
// per round; skipped with --skip-llm).
// Commands run with a clean environment (bench/lib.ts); stderr shows progress.
// The table goes to stdout and to --out.

import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { cpus, freemem, release, tmpdir, totalmem } from 'node:os';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';
import { startFakeProviderServer } from '../test/helpers/fake-provider-server.ts';
import type { FakeReply, RecordedRequest } from '../test/helpers/fake-provider-server.ts';
import { editOneRun, makeWorkspace, median, readJsonMaybe, REPO, resetState, runNx, setDataRoot, settle, sh } from './lib.ts';
import type { Measurement } from './lib.ts';
import type { ScaleResult } from './offline-scale.ts';
import { scaleCell } from './categorize-parallel.ts';
import type { ScaleRow } from './categorize-parallel.ts';
import { generateSyntheticTree } from './synthetic-tree.ts';

const AGENTS = ['claude-haiku-4-5-20251001', 'claude-opus-4-5-20251101'];
const STAGES = ['task-list', 'summarize', 'categorize', 'cluster', 'report'];
const LATENCY_MS = 200;
const CONCURRENCY = 10;
const PER_MINUTE = 60;

interface Options {
  sizes: number[];
  repeats: number;
  fromHead: boolean;
  rateRuns: number;
  skipLlm: boolean;
  with100k: boolean;
  out: string | null;
  json: string | null;
  keep: boolean;
}

function options(): Options {
  const { values: v } = parseArgs({
    options: {
      sizes: { type: 'string' }, repeats: { type: 'string' }, 'from-head': { type: 'boolean' }, 'rate-runs': { type: 'string' },
      'skip-llm': { type: 'boolean' }, 'with-100k': { type: 'boolean' }, out: { type: 'string' }, json: { type: 'string' }, keep: { type: 'boolean' },
    },
  });
  return {
    sizes: (v.sizes ?? '1000,10000').split(',').map(Number),
    repeats: Number(v.repeats ?? 3),
    fromHead: v['from-head'] === true,
    rateRuns: Number(v['rate-runs'] ?? 200),
    skipLlm: v['skip-llm'] === true,
    with100k: v['with-100k'] === true,
    out: v.out === undefined ? join(REPO, 'bench', 'table.md') : v.out === '-' ? null : v.out,
    json: v.json ?? null,
    keep: v.keep === true,
  };
}

const log = (msg: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const s2 = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));

function must(m: Measurement, what: string): Measurement {
  if (!m.ok) throw new Error(`${what} failed (exit ${m.exitCode}):\n${m.output.slice(-3000)}`);
  return m;
}

interface SizeResult {
  runs: number;
  coldS: number;
  categorizeS: number | null;
  peakMiB: Record<string, number>;
  showS: number;
  noopS: number;
  noopCached: string;
  daemonShowS: number | null;
  daemonNoopS: number | null;
  scanS: number;
  scanStartupS: number;
  refS: number | null;
  editComputed: number | null;
}

async function measureSize(n: number, o: Options, scratch: string, timeFile: string): Promise<SizeResult> {
  const tree = join(scratch, `tree-${n}`);
  log(`n=${n}: generating the tree`);
  generateSyntheticTree({ runs: n, out: tree, seed: 'bench', screenshotFraction: 0.05 });
  const ws = join(scratch, `ws-${n}`);
  const trash = join(scratch, `trash-${n}`);
  makeWorkspace(ws, !o.fromHead);
  setDataRoot(ws, tree);
  const nx = (args: string[], env: Record<string, string> = {}) => {
    settle();
    return runNx(ws, args, timeFile, 3600, env);
  };

  log(`n=${n}: cold report`);
  resetState(ws, trash);
  const cold = must(await nx(['run', 'analysis:report']), 'cold report');
  const marks = cold.marks;
  const at = (t: string) => marks.find((m) => m.target === t)?.atS;
  const cat = at('categorize');
  const next = at('cluster');
  const categorizeS = cat !== undefined && next !== undefined ? next - cat : null;

  log(`n=${n}: no-op without the daemon`);
  const show: number[] = [];
  const noop: number[] = [];
  let cachedLine = '';
  for (let r = 0; r < o.repeats; r++) {
    show.push(must(await nx(['show', 'projects']), 'show projects').wallS);
    const m = must(await nx(['run', 'analysis:report']), 'no-op report');
    noop.push(m.wallS);
    cachedLine = `${m.cached.length}/5 from the cache`;
  }

  log(`n=${n}: no-op with the daemon`);
  const daemon = { NX_DAEMON: 'true' };
  let daemonShowS: number | null = null;
  let daemonNoopS: number | null = null;
  try {
    must(await nx(['show', 'projects'], daemon), 'daemon warm-up');
    must(await nx(['run', 'analysis:report'], daemon), 'daemon warm-up report');
    const ds: number[] = [];
    const dn: number[] = [];
    for (let r = 0; r < o.repeats; r++) {
      ds.push(must(await nx(['show', 'projects'], daemon), 'daemon show projects').wallS);
      dn.push(must(await nx(['run', 'analysis:report'], daemon), 'daemon no-op report').wallS);
    }
    daemonShowS = median(ds);
    daemonNoopS = median(dn);
  } catch (err) {
    log(`  daemon measurements failed: ${(err as Error).message.split('\n')[0]}`);
  } finally {
    await nx(['daemon', '--stop'], daemon);
  }

  log(`n=${n}: task-list scan`);
  const scans: Measurement[] = [];
  for (let r = 0; r < o.repeats; r++) scans.push(must(await nx(['run', 'analysis:task-list', '--skip-nx-cache']), 'task-list scan'));
  const scanS = median(scans.map((m) => m.wallS));
  const scanStartupS = median(scans.map((m) => m.marks[0]?.atS ?? 0));
  let refS: number | null = null;
  const ref = process.env['REF_TASK_LIST_SCRIPT'];
  if (ref) {
    log(`n=${n}: reference script`);
    const times: number[] = [];
    for (let r = 0; r < o.repeats; r++) {
      let total = 0;
      for (const agent of AGENTS) {
        settle();
        const t0 = performance.now();
        const res = spawnSync('python3', [ref, '--base_dir', tree, '--domain', 'all', '--agent', agent, '--output', join(scratch, `ref-${agent}.json`)], { encoding: 'utf8' });
        if (res.status !== 0) throw new Error(`reference script failed: ${res.stderr}`);
        total += (performance.now() - t0) / 1000;
      }
      times.push(total);
    }
    refS = median(times);
  }

  log(`n=${n}: one run edited`);
  const undo = editOneRun(ws, tree, 1);
  let editComputed: number | null = null;
  try {
    must(await nx(['run', 'analysis:report']), 'report after one edit');
    const computed = readJsonMaybe(join(ws, 'out', 'analysis', 'logs', 'summarize.json'))?.['computed'];
    editComputed = typeof computed === 'number' ? computed : null;
  } finally {
    undo();
  }
  if (!o.keep) {
    rmSync(ws, { recursive: true, force: true });
    rmSync(trash, { recursive: true, force: true });
    rmSync(tree, { recursive: true, force: true });
  }
  return {
    runs: n,
    coldS: cold.wallS,
    categorizeS,
    peakMiB: cold.peakMiB,
    showS: median(show),
    noopS: median(noop),
    noopCached: cachedLine,
    daemonShowS,
    daemonNoopS,
    scanS,
    scanStartupS,
    refS,
    editComputed,
  };
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
  generateSyntheticTree({ runs, out: tree, seed: 'bench', screenshotFraction: 0.05 });
  const ws = join(scratch, `ws-${label}-${runs}`);
  makeWorkspace(ws, !o.fromHead);
  setDataRoot(ws, tree);
  const server = await startFakeProviderServer({ maxLifetimeMs: 3_600_000 });
  const limiter = perMinute === null ? null : rateLimited(perMinute, LATENCY_MS);
  server.handle(limiter ? limiter.handler : () => ({ text: 'A summary of the run.', delayMs: LATENCY_MS }));
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
    };
  } finally {
    await server.close();
    if (!o.keep) {
      rmSync(ws, { recursive: true, force: true });
      rmSync(tree, { recursive: true, force: true });
    }
  }
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

function table(o: Options, sizes: SizeResult[], latency: LlmResult | null, rate: LlmResult | null, scale: ScaleResult[], llmCategorize: ScaleRow | null): string[] {
  const col = (f: (s: SizeResult) => string) => sizes.map(f);
  const head = ['Row', ...sizes.map((s) => `${s.runs.toLocaleString('en-US')} runs`), 'Limit', 'Met'];
  const rows: string[][] = [];
  const ratio = (a: number | null, b: number | null) => (a === null || b === null ? null : a / b);
  const noop = sizes.map((s) => ratio(s.noopS, s.showS));
  rows.push([
    'No-op report vs `nx show projects`, no daemon',
    ...col((s) => `${s2(s.noopS)} s / ${s2(s.showS)} s = ${(s.noopS / s.showS).toFixed(2)}x (${s.noopCached})`),
    '<= 1.5x',
    ok(noop.every((x) => x !== null && x <= 1.5)),
  ]);
  const dn = sizes.map((s) => ratio(s.daemonNoopS, s.daemonShowS));
  rows.push([
    'No-op report vs `nx show projects`, with the daemon',
    ...col((s) => (s.daemonNoopS === null || s.daemonShowS === null ? 'n/a' : `${s2(s.daemonNoopS)} s / ${s2(s.daemonShowS)} s = ${(s.daemonNoopS / s.daemonShowS).toFixed(2)}x`)),
    '<= 1.5x',
    ok(dn.some((x) => x === null) ? null : dn.every((x) => (x as number) <= 1.5)),
  ]);
  rows.push([
    'Task-list scan (`--skip-nx-cache`) vs reference + Nx start-up',
    ...col((s) =>
      s.refS === null
        ? `${s2(s.scanS)} s (Nx start-up incl. fingerprint ${s2(s.scanStartupS)} s); reference not run (set REF_TASK_LIST_SCRIPT)`
        : `${s2(s.scanS)} s vs ${s2(s.refS)} + ${s2(s.showS)} = ${s2(s.refS + s.showS)} s (${(s.scanS / (s.refS + s.showS)).toFixed(2)}x)`,
    ),
    '<= 1.0x of reference (both agents) + `nx show projects`',
    ok(sizes.some((s) => s.refS === null) ? null : sizes.every((s) => s.scanS <= (s.refS as number) + s.showS)),
  ]);
  rows.push(['One run edited: summaries computed', ...col((s) => String(s.editComputed ?? 'n/a')), '= 1', ok(sizes.every((s) => s.editComputed === 1))]);
  rows.push([
    `Summarize, C=${CONCURRENCY}, L=${LATENCY_MS} ms, Nx start-up and task-list included`,
    ...col((s) =>
      latency && latency.runs === s.runs
        ? `${s2(latency.wallS)} s / ${s2(latency.boundS)} s = ${(latency.wallS / latency.boundS).toFixed(3)}x (${latency.requests} calls)`
        : '–',
    ),
    '<= 1.10x of N*L/C (N = 1,000)',
    ok(latency ? latency.wallS <= 1.1 * latency.boundS : null),
  ]);
  rows.push([
    `Under ${PER_MINUTE} rpm (N = ${rate?.runs ?? o.rateRuns}, bucket of ${PER_MINUTE}, 429 + Retry-After)`,
    ...sizes.map((_, i) =>
      i === 0 && rate
        ? `${s2(rate.wallS)} s / ${s2(rate.boundS)} s = ${(rate.wallS / rate.boundS).toFixed(3)}x; ${rate.rejected} answers 429, ${rate.rejectedTwice} requests rejected twice in a row`
        : '–',
    ),
    '<= 1.10x of the rate-limit bound (N-60) s + L; none rejected twice in a row',
    ok(rate ? rate.wallS <= 1.1 * rate.boundS && rate.rejectedTwice === 0 : null),
  ]);
  const at = (n: number) => scale.find((r) => r.runs === n);
  const growth = at(1000) && at(10000) ? (at(10000) as ScaleResult).seconds / (at(1000) as ScaleResult).seconds : null;
  rows.push([
    'Offline categorize (direct call; in the cold pipeline run)',
    ...col((s) => {
      const d = at(s.runs);
      return `${d ? `${s2(d.seconds)} s, ${d.categories} categories, ARI ${d.ari.toFixed(3)}` : '–'}; pipeline phase ${s.categorizeS === null ? 'n/a' : `${s2(s.categorizeS)} s`}`;
    }),
    `<= 30 s at 10k; growth per 10x: ${growth === null ? 'n/a' : `${growth.toFixed(1)}x`}${at(100000) ? ` (100k: ${s2((at(100000) as ScaleResult).seconds)} s)` : ''}`,
    ok(at(10000) ? (at(10000) as ScaleResult).seconds <= 30 : null),
  ]);
  rows.push([
    `categorize ${(llmCategorize?.runs ?? 10000).toLocaleString('en-US')} runs: sequential rounds and wall time against the fake at ${(llmCategorize?.delayMs ?? 2000) / 1000} s per call`,
    // In the column of its size; in the last column when no column has it (it always measures 10,000 runs).
    ...sizes.map((s, i) =>
      llmCategorize && (llmCategorize.runs === s.runs || (i === sizes.length - 1 && !sizes.some((x) => x.runs === llmCategorize.runs))) ? scaleCell(llmCategorize) : '–'),
    `induce_assign <= ${MAX_ROUNDS_10K} sequential rounds (sequential: the reference's 1 + ceil((N-10)/5))`,
    ok(llmCategorize ? llmCategorize.parallel.rounds <= MAX_ROUNDS_10K && llmCategorize.parallel.unassigned === 0 : null),
  ]);
  const mem = (s: SizeResult) =>
    [...STAGES, 'task-list fingerprint', 'key', 'nx'].filter((k) => s.peakMiB[k] !== undefined).map((k) => `${k} ${(s.peakMiB[k] as number).toFixed(0)}`).join(', ');
  rows.push([
    'Peak memory per process of the cold run, MiB',
    ...col(mem),
    'each <= 1024 MiB at 10k',
    ok(sizes.every((s) => Object.values(s.peakMiB).every((v) => v <= 1024))),
  ]);
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

async function main(): Promise<void> {
  const o = options();
  const scratch = mkdtempSync(join(tmpdir(), 'bench-table-'));
  const timeFile = join(scratch, 'time.txt');
  log(`scratch folder ${scratch}`);
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
    for (const n of [1000, 10000, ...(o.with100k ? [100000] : [])]) scale.push(offlineScale(n));
  } finally {
    if (!o.keep) rmSync(scratch, { recursive: true, force: true });
  }
  const md = ['## The build at 1,000 and 10,000 runs', '', ...header, '', ...table(o, sizes, latency, rate, scale, llmCategorize), ''].join('\n');
  process.stdout.write(md);
  if (o.out) writeFileSync(o.out, md);
  if (o.json) writeFileSync(o.json, `${JSON.stringify({ header, sizes, latency, rate, scale, llmCategorize }, null, 2)}\n`);
}

main().catch((err: unknown) => {
  console.error(`bench: ${(err as Error).message}`);
  process.exit(1);
});
