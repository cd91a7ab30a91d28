// Helpers for end-to-end tests: a throw-away copy of this workspace (with
// node_modules linked, not copied) in which the real `nx` runs.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { copyWorkspace, REPO } from '../../scripts/copy-workspace.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export { REPO };

export interface TempWorkspace {
  root: string;
  nx(args: string[], env?: Record<string, string>): { code: number; out: string };
  /** Like nx(), without blocking this process (needed when a test server here must answer nx's calls). */
  nxAsync(args: string[], env?: Record<string, string>): Promise<{ code: number; out: string }>;
  /** nx in its own process group, which `kill` ends as a whole (nx and the executors it started). */
  nxSpawn(args: string[], env?: Record<string, string>): { done: Promise<{ code: number; out: string }>; kill(signal: NodeJS.Signals): void };
  read(rel: string): string;
  write(rel: string, text: string): void;
  dispose(): void;
}

export function tempWorkspace(prefix = 'meta-analysis-e2e-'): TempWorkspace {
  const root = mkdtempSync(join(tmpdir(), prefix));
  copyWorkspace(root);
  const nxBin = join(REPO, 'node_modules', 'nx', 'dist', 'bin', 'nx.js');
  const envOf = (env: Record<string, string>) => ({
    ...process.env,
    PATH: `${join(REPO, 'node_modules', '.bin')}:${process.env['PATH'] ?? ''}`,
    NX_DAEMON: 'false',
    NX_NO_CLOUD: 'true',
    NX_TUI: 'false',
    FORCE_COLOR: '0',
    CI: 'true',
    ...env,
  });
  return {
    root,
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
