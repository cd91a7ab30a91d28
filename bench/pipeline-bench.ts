// Wall-clock benchmark of the whole Nx pipeline on synthetic trees of N runs.
//
//   npx node bench/pipeline-bench.ts [--sizes 117,1000,5000] [--repeats 3] [--seed bench]
//       [--with-history] [--screenshot-fraction 0.05] [--scenarios cold,warm,change,task-list]
//       [--from-worktree] [--profile DIR] [--timeout-s 1800] [--keep] [--json FILE]
//
// For every size it generates a tree (bench/synthetic-tree.ts) outside the
// workspace, builds a throw-away copy of the workspace (the committed HEAD by
// default, or the working tree with --from-worktree; node_modules is linked,
// not copied), points pipeline.yaml's data.root at the tree, and then repeats R
// times, in this order:
//   cold       `nx run analysis:report` with no .nx, out/ or response store
//   warm       the same command again, nothing changed (Nx cache hits)
//   change     one run's refinement_summary.json edited, then the same command
//              (one summary recomputed, the rest from the response store;
//              categorize and later stages recomputed); the edit is undone after
//   task-list  `nx run analysis:task-list --skip-nx-cache` alone (the scan; the target is cached)
// Each command runs under /usr/bin/time (when present) for CPU time and peak
// RSS, with NX_DAEMON=false. Stage timings come from the arrival time of the
// "> nx run analysis:<target>" lines Nx prints when a task starts.
// With --profile DIR, one extra cold and warm run per size are made with
// NODE_OPTIONS=--cpu-prof, and the heaviest functions of each process are
// printed (not part of the timed repeats).
//
// The Markdown result goes to stdout; progress goes to stderr.

import { parseArgs as parseCli } from 'node:util';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { cpus, freemem, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { generateSyntheticTree } from './synthetic-tree.ts';
import type { SyntheticTreeStats } from './synthetic-tree.ts';
import { editOneRun, f1, makeWorkspace, median, NX_BIN, readJsonMaybe, REPO, resetState, runNx, setDataRoot, settle, sh, TIME_BIN } from './lib.ts';
import type { Measurement } from './lib.ts';

const STAGES = ['task-list', 'summarize', 'categorize', 'cluster', 'report'] as const;
const CACHEABLE = ['task-list', 'summarize', 'categorize', 'cluster', 'report'];
const SCENARIOS = ['cold', 'warm', 'change', 'task-list'] as const;
type Scenario = (typeof SCENARIOS)[number];

interface Options {
  sizes: number[];
  repeats: number;
  seed: string;
  withHistory: boolean;
  screenshotFraction: number;
  scenarios: Scenario[];
  fromWorktree: boolean;
  profileDir: string | null;
  timeoutS: number;
  keep: boolean;
  jsonOut: string | null;
}

// ---------------------------------------------------------------------------
// Arguments

const USAGE = `usage: npx node bench/pipeline-bench.ts [--sizes 117,1000,5000] [--repeats 3] [--seed S]
       [--with-history] [--screenshot-fraction F] [--scenarios cold,warm,change,task-list]
       [--from-worktree] [--profile DIR] [--timeout-s 1800] [--keep] [--json FILE]`;

function parseArgs(argv: string[]): Options {
  const o: Options = {
    sizes: [117, 1000, 5000],
    repeats: 3,
    seed: 'bench',
    withHistory: false,
    screenshotFraction: 0.05,
    scenarios: [...SCENARIOS],
    fromWorktree: false,
    profileDir: null,
    timeoutS: 1800,
    keep: false,
    jsonOut: null,
  };
  let v;
  try {
    ({ values: v } = parseCli({
      args: argv,
      strict: true,
      options: {
        sizes: { type: 'string' }, repeats: { type: 'string' }, seed: { type: 'string' }, 'with-history': { type: 'boolean' },
        'screenshot-fraction': { type: 'string' }, scenarios: { type: 'string' }, 'from-worktree': { type: 'boolean' },
        profile: { type: 'string' }, 'timeout-s': { type: 'string' }, keep: { type: 'boolean' }, json: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${USAGE}`);
  }
  if (v.help) {
    console.log(USAGE);
    process.exit(0);
  }
  if (v.sizes !== undefined) o.sizes = v.sizes.split(',').map((s) => Number(s.trim()));
  if (v.repeats !== undefined) o.repeats = Number(v.repeats);
  if (v.seed !== undefined) o.seed = v.seed;
  if (v['with-history']) o.withHistory = true;
  if (v['screenshot-fraction'] !== undefined) o.screenshotFraction = Number(v['screenshot-fraction']);
  if (v.scenarios !== undefined) {
    const names = v.scenarios.split(',').map((s) => s.trim());
    for (const n of names) if (!(SCENARIOS as readonly string[]).includes(n)) throw new Error(`unknown scenario ${n} (known: ${SCENARIOS.join(', ')})`);
    o.scenarios = SCENARIOS.filter((s) => names.includes(s));
  }
  if (v['from-worktree']) o.fromWorktree = true;
  if (v.profile !== undefined) o.profileDir = resolve(v.profile);
  if (v['timeout-s'] !== undefined) o.timeoutS = Number(v['timeout-s']);
  if (v.keep) o.keep = true;
  if (v.json !== undefined) o.jsonOut = resolve(v.json);
  if (o.sizes.some((n) => !Number.isInteger(n) || n < 1)) throw new Error('--sizes must be positive integers');
  if (!Number.isInteger(o.repeats) || o.repeats < (o.profileDir ? 0 : 1)) throw new Error('--repeats must be a positive integer (0 is allowed with --profile)');
  if (o.scenarios.includes('warm') || o.scenarios.includes('change') || o.scenarios.includes('task-list')) {
    // They all need the outputs of a cold run first.
    if (!o.scenarios.includes('cold')) o.scenarios.unshift('cold');
  }
  return o;
}

// ---------------------------------------------------------------------------
// Workspace copy


// ---------------------------------------------------------------------------
// One measured command

/** Reads the finished_at of the run log of each stage this command executed (the report stage writes none). */
function readExecutorEnds(ws: string, m: Measurement): void {
  for (const stage of m.executed) {
    const log = readJsonMaybe(join(ws, 'out', 'analysis', 'logs', `${stage}.json`));
    const at = typeof log?.['finished_at'] === 'string' ? Date.parse(log['finished_at']) : NaN;
    if (Number.isFinite(at) && at >= m.startedAtMs) m.executorEndS[stage] = (at - m.startedAtMs) / 1000;
  }
}

/**
 * Seconds per phase: Nx start-up until the first task, each task (from its
 * start line to the next task's), and Nx's tail after its final line. "nx
 * between tasks" is the part of the task phases after an executor wrote its
 * run log: Nx storing the outputs in its cache and hashing the next task.
 */
function phases(m: Measurement): Record<string, number> | null {
  if (m.marks.length === 0) return null;
  const out: Record<string, number> = { 'nx start-up': (m.marks[0] as { atS: number }).atS };
  let between = 0;
  m.marks.forEach((mark, i) => {
    const end = m.marks[i + 1]?.atS ?? m.doneAtS ?? m.wallS;
    out[mark.target] = end - mark.atS;
    const logAt = m.executorEndS[mark.target];
    if (logAt !== undefined && logAt <= end) between += end - logAt;
  });
  out['nx between tasks'] = between;
  out['nx tail'] = m.wallS - (m.doneAtS ?? m.wallS);
  return out;
}

// ---------------------------------------------------------------------------
// Scenarios

interface Sample {
  size: number;
  scenario: Scenario;
  repeat: number;
  m: Measurement;
  check: string;
  summarizeComputed: number | null;
}

function checkOf(scenario: Scenario, m: Measurement, ws: string, runs: number): { check: string; computed: number | null } {
  if (m.timedOut) return { check: 'timed out', computed: null };
  if (!m.ok) return { check: `exit ${m.exitCode}`, computed: null };
  const log = readJsonMaybe(join(ws, 'out', 'analysis', 'logs', 'summarize.json'));
  const computed = typeof log?.['computed'] === 'number' ? log['computed'] : null;
  const ledger = readJsonMaybe(join(ws, 'out', 'analysis', 'task-list', 'runs.json'));
  const selected = Array.isArray(ledger?.['runs']) ? (ledger['runs'] as unknown[]).length : null;
  const problems: string[] = [];
  if (selected !== runs) problems.push(`task-list selected ${selected} runs`);
  if (scenario === 'cold' && m.executed.join(',') !== STAGES.join(',')) problems.push(`ran ${m.executed.join(',')}`);
  if (scenario === 'warm' && [...m.cached].sort().join(',') !== [...CACHEABLE].sort().join(',')) problems.push(`cache hits: ${m.cached.join(',') || 'none'}`);
  if (scenario === 'change' && computed !== 1) problems.push(`summarize computed ${computed}`);
  return { check: problems.length ? problems.join('; ') : 'ok', computed };
}

// ---------------------------------------------------------------------------
// Were the screenshots read? (access times)
//
// The fake screenshots get an access time far in the past before the runs.
// On a filesystem mounted with relatime (or strictatime), reading a file whose
// access time is older than its modification time updates it, so afterwards
// any screenshot with a recent access time was read. A control file checks
// that this filesystem updates access times at all (noatime does not).

const OLD_ATIME_S = 86_400;

function screenshotFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, inIteration: boolean): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const abs = join(dir, e.name);
      if (e.isDirectory()) walk(abs, inIteration || e.name.startsWith('iteration_'));
      else if (inIteration && e.name.endsWith('.png')) out.push(abs);
    }
  };
  walk(root, false);
  return out;
}

function markUnread(files: string[]): void {
  for (const f of files) utimesSync(f, OLD_ATIME_S, statSync(f).mtime);
}

function countRead(files: string[]): number {
  return files.filter((f) => statSync(f).atimeMs > (OLD_ATIME_S + 1) * 1000).length;
}

function atimeTracked(scratch: string): boolean {
  const probe = join(scratch, 'atime-probe.bin');
  writeFileSync(probe, 'probe');
  markUnread([probe]);
  readFileSync(probe);
  return countRead([probe]) === 1;
}

// ---------------------------------------------------------------------------
// CPU profiles

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Heaviest functions by self time in each .cpuprofile of a folder, as Markdown. */
export function summarizeProfiles(dir: string, top = 10): string {
  const out: string[] = [];
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).sort() : [];
  const described: { label: string; totalS: number; lines: string[] }[] = [];
  for (const f of files) {
    const p = JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const self = new Map<number, number>();
    p.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0)));
    const totalS = (p.endTime - p.startTime) / 1e6;
    const urls = p.nodes.map((n) => n.callFrame.url);
    const stage = STAGES.find((s) => urls.some((u) => u.includes(`/executors/${s}/executor.ts`)));
    const label = stage ? `${stage} task process` : urls.some((u) => u.includes('/nx/bin/') || u.includes('/nx/dist/bin/')) ? 'nx main process' : 'other process';
    const agg = new Map<string, number>();
    for (const [id, us] of self) {
      const n = byId.get(id);
      if (!n) continue;
      const url = n.callFrame.url.replace(/^file:\/\//, '');
      const short = url.includes('/node_modules/') ? `node_modules/${url.split('/node_modules/').pop()}` : url.includes('/stages/') || url.includes('/executors/') ? url.slice(url.search(/\/(stages|executors)\//) + 1) : url || '(native)';
      const key = `${n.callFrame.functionName || '(anonymous)'} ${short}${url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
      agg.set(key, (agg.get(key) ?? 0) + us);
    }
    const ranked = [...agg.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
    described.push({
      label,
      totalS,
      lines: ranked.map(([k, us]) => `| ${(us / 1e6).toFixed(2)} | ${((us / 1e6 / totalS) * 100).toFixed(0)}% | \`${k.replace(/\|/g, '\\|')}\` |`),
    });
  }
  for (const d of described.sort((a, b) => b.totalS - a.totalS)) {
    if (d.totalS < 0.5) continue;
    out.push(`**${d.label}** (${d.totalS.toFixed(1)} s profiled)`, '', '| self s | share | function |', '|---:|---:|---|', ...d.lines, '');
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------
// Reporting

function machineHeader(o: Options, commit: string): string[] {
  const c = cpus();
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  return [
    `- date: ${new Date().toISOString()}`,
    `- machine: ${c[0]?.model ?? 'unknown CPU'}, ${c.length} cores, ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM (${(freemem() / 2 ** 30).toFixed(0)} GiB free at start), Linux ${release()}; load average at start ${load}`,
    `- Node ${process.version} (${process.execPath.includes('node_modules') ? 'the workspace\'s node@24 package' : process.execPath}), nx ${JSON.parse(readFileSync(join(REPO, 'node_modules', 'nx', 'package.json'), 'utf8')).version}, NX_DAEMON=false`,
    `- workspace: ${o.fromWorktree ? `working tree of ${commit} (may hold uncommitted changes)` : `commit ${commit} (git archive HEAD)`}`,
    `- trees: seed \`${o.seed}\`, ${o.withHistory ? 'with 2 failed iterations per run' : 'successful iteration only'}, screenshots in ${(o.screenshotFraction * 100).toFixed(0)}% of runs`,
    `- repeats: ${o.repeats} per scenario (median, min and max shown); CPU = user+sys of nx and the task processes it waited for; RSS = largest single process`,
    `- resource figures from ${existsSync(TIME_BIN) ? '/usr/bin/time' : '(no /usr/bin/time: not measured)'}`,
  ];
}

interface TreeInfo {
  stats: SyntheticTreeStats;
  genS: number;
  /** Screenshots whose access time changed during the timed runs; null when not checkable. */
  screenshotsRead: number | null;
}

function resultTables(samples: Sample[], trees: Map<number, TreeInfo>): string[] {
  const out: string[] = [];
  out.push(
    '### Trees',
    '',
    '| runs | tasks | perturbed_query folders | JSON files | JSON MiB | screenshot files | screenshot MiB | screenshots read by the pipeline | generation s |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  );
  for (const [size, t] of trees) {
    const s = t.stats;
    const read = t.screenshotsRead === null ? 'not checked' : String(t.screenshotsRead);
    out.push(`| ${size} | ${s.tasks} | ${s.perturbedQueryFolders} | ${s.jsonFiles} | ${(s.jsonBytes / 2 ** 20).toFixed(1)} | ${s.screenshotFiles} | ${(s.screenshotBytes / 2 ** 20).toFixed(0)} | ${read} | ${f1(t.genS)} |`);
  }
  out.push('', 'Screenshots read: files under `iteration_<n>/` whose access time changed during the timed runs (relatime; see the script).');
  out.push('', '### Wall clock', '', '| runs | scenario | median s | min s | max s | CPU s (median) | max RSS MiB (median) | summaries computed | checks |', '|---:|---|---:|---:|---:|---:|---:|---:|---|');
  const sizes = [...new Set(samples.map((s) => s.size))];
  for (const size of sizes) {
    for (const scenario of SCENARIOS) {
      const ss = samples.filter((s) => s.size === size && s.scenario === scenario);
      if (ss.length === 0) continue;
      const wall = ss.map((s) => s.m.wallS);
      const cpu = ss.map((s) => s.m.cpuS).filter((x): x is number => x !== null);
      const rss = ss.map((s) => s.m.maxRssMiB).filter((x): x is number => x !== null);
      const computed = [...new Set(ss.map((s) => (scenario === 'task-list' || scenario === 'warm' ? '–' : String(s.summarizeComputed ?? 'n/a'))))].join('/');
      const checks = [...new Set(ss.map((s) => s.check))].join('; ');
      out.push(`| ${size} | ${scenario} | ${f1(median(wall))} | ${f1(Math.min(...wall))} | ${f1(Math.max(...wall))} | ${cpu.length ? f1(median(cpu)) : 'n/a'} | ${rss.length ? median(rss).toFixed(0) : 'n/a'} | ${computed} | ${checks} |`);
    }
  }
  const phaseCols = ['nx start-up', ...STAGES, 'nx between tasks', 'nx tail'];
  out.push(
    '',
    '### Where the time goes (median seconds per phase)',
    '',
    'A task phase runs from the line Nx prints when the task starts to the next such line (for a cache hit: hashing and restoring). ' +
      '"nx between tasks" is the part of the task phases after an executor finished (from its run log\'s finished_at): Nx caching outputs and hashing the next task; it is included in the task columns. ' +
      '"nx tail" runs from Nx\'s final line to the exit.',
    '', `| runs | scenario | ${phaseCols.join(' | ')} |`, `|---:|---|${phaseCols.map(() => '---:').join('|')}|`);
  for (const size of sizes) {
    for (const scenario of SCENARIOS) {
      const ps = samples.filter((s) => s.size === size && s.scenario === scenario && s.m.ok).map((s) => phases(s.m)).filter((p): p is Record<string, number> => p !== null);
      if (ps.length === 0) continue;
      const cells = phaseCols.map((c) => {
        const xs = ps.map((p) => p[c]).filter((x): x is number => x !== undefined);
        return xs.length ? f1(median(xs)) : '–';
      });
      out.push(`| ${size} | ${scenario} | ${cells.join(' | ')} |`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Main

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  if (!existsSync(NX_BIN)) throw new Error(`${NX_BIN} not found: run npm ci first`);
  const commit = sh('git', ['rev-parse', '--short=12', 'HEAD']);
  const header = machineHeader(o, commit);
  const scratch = mkdtempSync(join(tmpdir(), 'pipeline-bench-'));
  const log = (msg: string) => process.stderr.write(`[pipeline-bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
  log(`scratch folder ${scratch}`);
  const samples: Sample[] = [];
  const trees = new Map<number, TreeInfo>();
  const atimeOk = atimeTracked(scratch);
  if (!atimeOk) log('this filesystem does not update access times: the screenshot check is skipped');
  const profiles: string[] = [];
  const timeFile = join(scratch, 'time.txt');
  try {
    for (const size of o.sizes) {
      const treeDir = join(scratch, 'trees', `n${size}`);
      const g0 = performance.now();
      const stats = generateSyntheticTree({ runs: size, out: treeDir, seed: o.seed, withHistory: o.withHistory, screenshotFraction: o.screenshotFraction });
      const genS = (performance.now() - g0) / 1000;
      const shots = screenshotFiles(treeDir);
      if (atimeOk) markUnread(shots);
      const info: TreeInfo = { stats, genS, screenshotsRead: null };
      trees.set(size, info);
      log(`n=${size}: tree with ${stats.runs} runs, ${(stats.screenshotBytes / 2 ** 20).toFixed(0)} MiB of screenshots (${genS.toFixed(1)} s)`);
      const ws = join(scratch, `ws-n${size}`);
      const trash = join(scratch, `trash-n${size}`);
      makeWorkspace(ws, o.fromWorktree);
      setDataRoot(ws, treeDir);

      for (let r = 1; r <= o.repeats; r++) {
        for (const scenario of o.scenarios) {
          let undo: (() => void) | null = null;
          if (scenario === 'cold') resetState(ws, trash);
          if (scenario === 'change') undo = editOneRun(ws, treeDir, r);
          // task-list is cached: --skip-nx-cache measures the scan itself.
          const args = scenario === 'task-list' ? ['run', 'analysis:task-list', '--skip-nx-cache'] : ['run', 'analysis:report'];
          settle();
          const m = await runNx(ws, args, timeFile, o.timeoutS);
          readExecutorEnds(ws, m);
          const { check, computed } = checkOf(scenario, m, ws, size);
          undo?.();
          samples.push({ size, scenario, repeat: r, m, check, summarizeComputed: computed });
          log(`n=${size} #${r} ${scenario}: ${m.wallS.toFixed(2)} s wall, ${m.cpuS?.toFixed(2) ?? 'n/a'} s CPU, ${m.maxRssMiB?.toFixed(0) ?? 'n/a'} MiB; ${check}`);
          if (check !== 'ok') {
            writeFileSync(join(scratch, `failed-n${size}-${scenario}-${r}.log`), m.output);
            log(`  output kept in ${join(scratch, `failed-n${size}-${scenario}-${r}.log`)}`);
          }
          if (!m.ok && scenario === 'cold') break; // later scenarios need the cold run's outputs
        }
      }

      if (atimeOk && o.repeats > 0) info.screenshotsRead = countRead(shots);

      if (o.profileDir) {
        resetState(ws, trash);
        for (const scenario of ['cold', 'warm'] as const) {
          const dir = join(o.profileDir, `n${size}`, scenario);
          rmSync(dir, { recursive: true, force: true });
          mkdirSync(dir, { recursive: true });
          log(`n=${size}: profiled ${scenario} run -> ${dir}`);
          settle();
          const m = await runNx(ws, ['run', 'analysis:report'], timeFile, o.timeoutS, { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${dir}` });
          if (!m.ok) log(`  profiled ${scenario} run failed (exit ${m.exitCode})`);
          profiles.push(`#### ${size} runs, ${scenario} (${m.wallS.toFixed(1)} s wall with profiling on)`, '', summarizeProfiles(dir));
        }
      }
      rmSync(trash, { recursive: true, force: true });
      if (!o.keep) rmSync(ws, { recursive: true, force: true });
      settle();
    }
  } finally {
    if (!o.keep) rmSync(scratch, { recursive: true, force: true });
    else log(`kept ${scratch}`);
  }

  const md = [
    `## Pipeline benchmark`,
    '',
    ...header,
    `- command: \`npx node bench/pipeline-bench.ts ${process.argv.slice(2).join(' ')}\``.replace(/ `$/, '`'),
    '',
    ...resultTables(samples, trees),
    ...(profiles.length ? ['', '### CPU profiles (self time, top functions per process)', '', ...profiles] : []),
    '',
  ].join('\n');
  process.stdout.write(md);
  if (o.jsonOut) {
    writeFileSync(
      o.jsonOut,
      JSON.stringify(
        {
          header,
          trees: Object.fromEntries(trees),
          samples: samples.map((s) => ({ ...s, m: { ...s.m, output: undefined } })),
        },
        null,
        2,
      ) + '\n',
    );
  }
}

main().catch((err: unknown) => {
  console.error(`pipeline-bench: ${(err as Error).message}`);
  process.exit(1);
});
