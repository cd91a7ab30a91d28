// Helpers shared by the benchmarks: throw-away workspaces, running nx with a
// clean environment under /usr/bin/time, the per-process peak memory of what
// nx starts, and small statistics.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { copyWorkspace } from '../scripts/copy-workspace.ts';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const NX_BIN = join(REPO, 'node_modules', 'nx', 'dist', 'bin', 'nx.js');
export const TIME_BIN = '/usr/bin/time';

export function sh(cmd: string, args: string[], cwd = REPO): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
  return r.stdout.trim();
}

/** A throw-away workspace: HEAD (git archive) or the working tree; node_modules linked. */
export function makeWorkspace(root: string, fromWorktree: boolean): void {
  mkdirSync(root, { recursive: true });
  if (fromWorktree) {
    copyWorkspace(root, { linkNodeModules: false });
  } else {
    const r = spawnSync('sh', ['-c', 'git -C "$1" archive --format=tar HEAD | tar -x -C "$2"', 'sh', REPO, root], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`git archive failed: ${r.stderr}`);
  }
  symlinkSync(join(REPO, 'node_modules'), join(root, 'node_modules'), 'dir');
}

export function setDataRoot(ws: string, dataRoot: string): void {
  const file = join(ws, 'pipeline.yaml');
  const doc = parseDocument(readFileSync(file, 'utf8'));
  doc.setIn(['data', 'root'], dataRoot);
  writeFileSync(file, String(doc));
}

/**
 * Empties the Nx cache, the outputs and the response store by moving them
 * into `trash` (a cheap rename). Deleting tens of thousands of files right
 * before a timed run would slow it down: the filesystem keeps working on the
 * deletion (journal, discards) while the next command runs. The trash is
 * emptied between sizes, outside the timed runs.
 */
export function resetState(ws: string, trash: string): void {
  mkdirSync(trash, { recursive: true });
  for (const d of ['.nx', 'out', '.cache']) {
    if (existsSync(join(ws, d))) renameSync(join(ws, d), join(trash, `${d.replace(/^\./, '')}-${process.hrtime.bigint()}`));
  }
}

/** Writes dirty pages to disk, so the previous step's writeback does not overlap the next timed command. */
export function settle(): void {
  spawnSync('sync');
}

export interface Measurement {
  ok: boolean;
  exitCode: number;
  timedOut: boolean;
  wallS: number;
  /** user + sys of the process and the children it waited for; null without /usr/bin/time. */
  cpuS: number | null;
  /** Largest resident set of any single process of the tree, MiB; null without /usr/bin/time. */
  maxRssMiB: number | null;
  /** Seconds from spawn to each "> nx run analysis:<target>" line, and to Nx's final line. */
  marks: { target: string; cached: boolean; atS: number }[];
  doneAtS: number | null;
  /** Date.now() at spawn, to place the run logs' finished_at times. */
  startedAtMs: number;
  /** Seconds from spawn to each executed stage's run log (written as its executor ends); filled by the caller. */
  executorEndS: Record<string, number>;
  executed: string[];
  cached: string[];
  output: string;
  /** Peak resident set per process kind (stage, fingerprint, nx), MiB. */
  peakMiB: Record<string, number>;
}

export function nxEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['NX_SKIP_NX_CACHE', 'NX_CACHE_DIRECTORY', 'META_ANALYSIS_STORE_DIR', 'NODE_OPTIONS']) delete env[k];
  return {
    ...env,
    PATH: `${dirname(process.execPath)}:${join(REPO, 'node_modules', '.bin')}:${process.env['PATH'] ?? ''}`,
    NX_DAEMON: 'false',
    NX_NO_CLOUD: 'true',
    NX_TUI: 'false',
    FORCE_COLOR: '0',
    CI: 'true',
    ...extra,
  };
}

export const TARGET_LINE = /^\s*>\s+nx run [\w-]+:([\w-]+)(.*)$/;

/**
 * Runs nx in `ws`. `timeFile` (for /usr/bin/time) must be outside the
 * workspace: a file that changes there makes Nx recompute its project graph.
 */
export function runNx(ws: string, args: string[], timeFile: string, timeoutS: number, extraEnv: Record<string, string> = {}): Promise<Measurement> {
  const useTime = existsSync(TIME_BIN);
  rmSync(timeFile, { force: true });
  const argv = useTime ? [TIME_BIN, '-f', '%e %U %S %M', '-o', timeFile, process.execPath, NX_BIN, ...args] : [process.execPath, NX_BIN, ...args];
  return new Promise((resolvePromise) => {
    const t0 = performance.now();
    const startedAtMs = Date.now();
    const child = spawn(argv[0] as string, argv.slice(1), { cwd: ws, env: nxEnv(extraEnv), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const memory = watchMemory(child.pid as number);
    const marks: Measurement['marks'] = [];
    let doneAtS: number | null = null;
    let output = '';
    let pending = '';
    const onData = (chunk: Buffer): void => {
      const now = (performance.now() - t0) / 1000;
      const text = chunk.toString('utf8');
      output += text;
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        const m = TARGET_LINE.exec(line);
        if (m) marks.push({ target: m[1] as string, cached: /cache/.test(m[2] ?? ''), atS: now });
        else if (/Successfully ran target|Ran target .* failed|Running target .* failed/.test(line)) doneAtS = now;
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutS * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const wallS = (performance.now() - t0) / 1000;
      const peakMiB = memory.stop();
      let cpuS: number | null = null;
      let maxRssMiB: number | null = null;
      if (useTime && existsSync(timeFile)) {
        // The last line holds the numbers (earlier lines may say the command exited non-zero).
        const last = readFileSync(timeFile, 'utf8').trim().split('\n').pop() ?? '';
        const [, user, sys, rssKb] = last.split(/\s+/).map(Number);
        if (user !== undefined && sys !== undefined && Number.isFinite(user + sys)) cpuS = user + sys;
        if (rssKb !== undefined && Number.isFinite(rssKb)) maxRssMiB = rssKb / 1024;
      }
      resolvePromise({
        ok: code === 0 && !timedOut,
        exitCode: code ?? -1,
        timedOut,
        wallS,
        cpuS,
        maxRssMiB,
        marks,
        doneAtS,
        startedAtMs,
        executorEndS: {},
        executed: marks.filter((m) => !m.cached).map((m) => m.target),
        cached: marks.filter((m) => m.cached).map((m) => m.target),
        output,
        peakMiB,
      });
    });
  });
}


// ---------------------------------------------------------------------------
// Peak memory of every process nx starts

/** The pids below `root` (children, grandchildren, ...), from /proc. */
function descendants(root: number): number[] {
  const parent = new Map<number, number>();
  let names: string[] = [];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid ...: comm may hold spaces and parentheses.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(name), ppid);
    } catch {
      // gone
    }
  }
  const out: number[] = [];
  for (const pid of parent.keys()) {
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) {
      if (p === root) {
        out.push(pid);
        break;
      }
    }
  }
  return out;
}

/** What a process of an nx run is: the target whose executor it runs, a target's key (executors/key.ts), or nx itself. */
function labelOf(pid: number): string {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    // Nx runs `node executors/key.mjs '<description>'` (which loads key.ts); older commits ran key.ts itself.
    if (/executors\/key\.(ts|mjs)/.test(cmd)) return /"stage":"task-list"/.test(cmd) ? 'task-list fingerprint' : 'key';
    const target = env.find((e) => e.startsWith('NX_TASK_TARGET_TARGET='));
    if (target && cmd.includes('run-executor')) return target.slice('NX_TASK_TARGET_TARGET='.length);
    return 'nx';
  } catch {
    return 'nx';
  }
}

function peakKb(pid: number): number | null {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Samples the peak resident set (VmHWM) of every process below `root` every
 * `everyMs` until stopped: the largest value seen per label (a stage, the
 * task-list fingerprint, nx), in MiB. A process that lives less than one
 * interval may be missed; the stages live for seconds.
 */
export function watchMemory(root: number, everyMs = 40): { stop(): Record<string, number> } {
  const peak: Record<string, number> = {};
  const labels = new Map<number, string>();
  const sample = () => {
    for (const pid of [root, ...descendants(root)]) {
      let label = labels.get(pid);
      // A process seen between fork and exec still shows its parent's command line and environment ('nx'):
      // only a definite label is kept, 'nx' is looked at again on the next sample.
      if (label === undefined || (label === 'nx' && pid !== root)) labels.set(pid, (label = pid === root ? 'nx' : labelOf(pid)));
      const kb = peakKb(pid);
      if (kb !== null) peak[label] = Math.max(peak[label] ?? 0, kb / 1024);
    }
  };
  const timer = setInterval(sample, everyMs);
  sample();
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

export function readJsonMaybe(file: string): Record<string, unknown> | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/**
 * The `refinement_summary_path` of every run in a task-list ledger (runs.json),
 * read in chunks: at 100,000 runs the ledger is about 90 MB, and parsing it
 * whole would cost the benchmark process several hundred MiB of heap for a
 * list of paths.
 */
export function ledgerRunPaths(file: string): string[] {
  const KEY = /"refinement_summary_path"\s*:\s*("(?:[^"\\]|\\.)*")/g;
  // Longer than any path: an unmatched tail shorter than this may be a match cut by the chunk boundary.
  const CARRY = 64 * 1024;
  const paths: string[] = [];
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.alloc(4 * 2 ** 20);
    const decoder = new StringDecoder('utf8');
    let text = '';
    for (let n = readSync(fd, chunk); ; n = readSync(fd, chunk)) {
      text += n > 0 ? decoder.write(chunk.subarray(0, n)) : decoder.end();
      let end = 0;
      KEY.lastIndex = 0;
      for (let m = KEY.exec(text); m; m = KEY.exec(text)) {
        paths.push(JSON.parse(m[1] as string) as string);
        end = KEY.lastIndex;
      }
      if (n === 0) break;
      text = text.slice(Math.max(end, text.length - CARRY));
    }
  } finally {
    closeSync(fd);
  }
  return paths;
}

/** Edits one run (a harmful action added to its COLLECT evaluation); returns an undo function. */
export function editOneRun(ws: string, dataRoot: string, repeat: number): () => void {
  const ledger = join(ws, 'out', 'analysis', 'task-list', 'runs.json');
  const paths = existsSync(ledger) ? ledgerRunPaths(ledger) : [];
  if (paths.length === 0) throw new Error('no ledger to pick a run from');
  const file = join(dataRoot, paths[(repeat * 7919) % paths.length] as string);
  const before = readFileSync(file);
  const json = JSON.parse(before.toString('utf8')) as { execution_history: { trajectory_evaluation: { harmful_actions_observed?: string[] } }[] };
  const last = json.execution_history[json.execution_history.length - 1];
  if (!last) throw new Error(`${file}: empty execution_history`);
  last.trajectory_evaluation.harmful_actions_observed = [...(last.trajectory_evaluation.harmful_actions_observed ?? []), `benchmark edit ${repeat}: removed the backup folder`];
  writeFileSync(file, JSON.stringify(json, null, 2) + '\n');
  return () => writeFileSync(file, before);
}

/** Appends `line` to a text file; returns an undo function that puts the old bytes back. */
export function appendLine(file: string, line: string): () => void {
  const before = readFileSync(file);
  const sep = before.length > 0 && before[before.length - 1] !== 0x0a ? '\n' : '';
  writeFileSync(file, Buffer.concat([before, Buffer.from(`${sep}${line}\n`)]));
  return () => writeFileSync(file, before);
}

// ---------------------------------------------------------------------------
// Disk use

export interface FolderUsage {
  files: number;
  /** Sum of the files' sizes: what was written. */
  bytes: number;
  /** Blocks allocated, as `du` counts them (each hard-linked file once). */
  diskBytes: number;
}

/** Walks `dir` without following symbolic links; zeros when it does not exist. */
export function folderUsage(dir: string): FolderUsage {
  const usage: FolderUsage = { files: 0, bytes: 0, diskBytes: 0 };
  const seen = new Set<string>();
  const walk = (path: string): void => {
    const st = lstatSync(path, { throwIfNoEntry: false });
    if (!st) return;
    const inode = `${st.dev}:${st.ino}`;
    if (!seen.has(inode)) {
      seen.add(inode);
      usage.diskBytes += st.blocks * 512;
    }
    if (st.isDirectory()) {
      for (const name of readdirSync(path)) walk(join(path, name));
    } else if (st.isFile()) {
      usage.files += 1;
      usage.bytes += st.size;
    }
  };
  walk(dir);
  return usage;
}

/**
 * The Nx cache folder of a benchmark workspace. nxEnv() removes
 * NX_CACHE_DIRECTORY from the environment, so it is nx.json's
 * `cacheDirectory`, or Nx's default `.nx/cache`.
 */
export function nxCacheDir(ws: string): string {
  const configured = readJsonMaybe(join(ws, 'nx.json'))?.['cacheDirectory'];
  return typeof configured === 'string' ? resolve(ws, configured) : join(ws, '.nx', 'cache');
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

export const f1 = (x: number | null | undefined): string => (x === null || x === undefined || !Number.isFinite(x) ? 'n/a' : x < 10 ? x.toFixed(2) : x.toFixed(1));

