// Helpers for end-to-end tests: a throw-away copy of this workspace (with
// node_modules linked, not copied) in which the real `nx` runs, hermetically:
// with a clean environment and its own Nx cache and workspace data, so the
// caller's NX_* settings, provider keys and ~/.nx cache cannot change a result.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { copyWorkspace, REPO } from '../../scripts/copy-workspace.ts';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export { REPO };

export interface TempWorkspace {
  root: string;
  /** Nx's folder for this workspace: `cache` (task outputs) and `workspace-data` (the database indexing them). */
  nxDir: string;
  nx(args: string[], env?: Record<string, string>): { code: number; out: string };
  /** Like nx(), without blocking this process (needed when a test server here must answer nx's calls). */
  nxAsync(args: string[], env?: Record<string, string>): Promise<{ code: number; out: string }>;
  /** nx in its own process group, which `kill` ends as a whole (nx and the executors it started). */
  nxSpawn(args: string[], env?: Record<string, string>): { done: Promise<{ code: number; out: string }>; kill(signal: NodeJS.Signals): void };
  read(rel: string): string;
  write(rel: string, text: string): void;
  dispose(): void;
}

export interface TempWorkspaceOptions {
  /** Folder name prefix under the temporary folder (default `meta-analysis-e2e-`). */
  prefix?: string;
  /**
   * Where the workspace is created: a folder that must not exist yet (made with its
   * parents), e.g. to put two workspaces at different depths. Default: a fresh temp folder.
   */
  dir?: string;
  /**
   * Nx's folder (absolute): the task cache in `<nxDir>/cache` and the workspace data in
   * `<nxDir>/workspace-data`. Default `<root>/.nx`. Give two workspaces the same folder
   * to share one Nx cache: Nx 24 restores only outputs its database (in the workspace
   * data) knows about, so sharing NX_CACHE_DIRECTORY alone gives no cache hit.
   */
  nxDir?: string;
  /** The workspace to copy (default: this repository), e.g. a snapshot so that several workspaces hold the same files. */
  from?: string;
}

/** Variables passed on from the caller's environment: what a process needs, nothing that configures Nx, a provider or the pipeline. */
const PASS_THROUGH = new Set(['HOME', 'TMPDIR', 'LANG', 'TERM', 'SYSTEMROOT', 'COMSPEC', 'PATHEXT', 'WINDIR', 'TEMP', 'TMP']);

/**
 * The environment nx runs with: a clean one, not the caller's. Only PASS_THROUGH
 * and LC_* come from the caller (so `NX_CACHE_DIRECTORY`, `NX_*`, provider keys
 * and `META_ANALYSIS_*` never leak in); the Nx cache and workspace data live in
 * `nxDir` (Nx 24 otherwise shares ~/.nx/<workspace id> between all clones of a
 * repository); `extra` adds per-call variables last.
 */
export function hermeticEnv(nxDir: string, extra: Record<string, string> = {}, from: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(from)) {
    if (v !== undefined && (PASS_THROUGH.has(k) || k.startsWith('LC_'))) env[k] = v;
  }
  return {
    ...env,
    PATH: [join(REPO, 'node_modules', '.bin'), from['PATH'] ?? ''].filter((p) => p !== '').join(delimiter),
    NX_CACHE_DIRECTORY: join(nxDir, 'cache'),
    NX_WORKSPACE_DATA_DIRECTORY: join(nxDir, 'workspace-data'),
    NX_DAEMON: 'false',
    NX_NO_CLOUD: 'true',
    NX_TUI: 'false',
    CI: 'true',
    FORCE_COLOR: '0',
    NO_COLOR: '1',
    ...extra,
  };
}

export function tempWorkspace(options: TempWorkspaceOptions | string = {}): TempWorkspace {
  const opts: TempWorkspaceOptions = typeof options === 'string' ? { prefix: options } : options;
  let root: string;
  if (opts.dir) {
    if (existsSync(opts.dir)) throw new Error(`tempWorkspace: ${opts.dir} already exists`);
    mkdirSync(opts.dir, { recursive: true });
    root = realpathSync(opts.dir);
  } else {
    root = realpathSync(mkdtempSync(join(tmpdir(), opts.prefix ?? 'meta-analysis-e2e-')));
  }
  copyWorkspace(root, opts.from ? { from: opts.from } : {});
  const nxDir = opts.nxDir ?? join(root, '.nx');
  const nxBin = join(REPO, 'node_modules', 'nx', 'dist', 'bin', 'nx.js');
  const envOf = (env: Record<string, string>) => hermeticEnv(nxDir, env);
  return {
    root,
    nxDir,
    nx(args, env = {}) {
      const res = spawnSync(process.execPath, [nxBin, ...args], { cwd: root, encoding: 'utf8', env: envOf(env), timeout: 240_000 });
      return { code: res.status ?? -1, out: `${res.stdout}\n${res.stderr}` };
    },
    nxAsync(args, env = {}) {
      return this.nxSpawn(args, env).done;
    },
    nxSpawn(args, env = {}) {
      const child = spawn(process.execPath, [nxBin, ...args], { cwd: root, env: envOf(env), detached: true });
      const done = new Promise<{ code: number; out: string }>((done) => {
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.stderr.on('data', (d) => (out += d));
        const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          done({ code: code ?? (signal ? 128 : -1), out });
        });
      });
      return {
        done,
        kill(signal) {
          if (child.pid !== undefined) process.kill(-child.pid, signal);
        },
      };
    },
    read: (rel) => readFileSync(join(root, rel), 'utf8'),
    write: (rel, text) => writeFileSync(join(root, rel), text),
    dispose: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** Targets Nx ran (not restored from its cache) in one command's output. */
export function executedTargets(out: string): string[] {
  const ran: string[] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*>\s+nx run [\w-]+:([\w-]+)(.*)$/.exec(line);
    if (m && !/cache/.test(m[2] ?? '')) ran.push(m[1] as string);
  }
  return ran;
}

/** Targets restored from the cache in one command's output. */
export function cachedTargets(out: string): string[] {
  const hit: string[] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*>\s+nx run [\w-]+:([\w-]+)(.*)$/.exec(line);
    if (m && /cache/.test(m[2] ?? '')) hit.push(m[1] as string);
  }
  return hit;
}
