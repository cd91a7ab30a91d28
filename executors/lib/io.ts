// Filesystem helpers for executors: build a stage's output in a fresh folder
// and swap it in at the end, so a crashed run never leaves a half-written
// output and runs removed from the task list leave no stale files behind.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { writeFileAtomicSync } from '../../stages/util/fs.ts';
import { basename, dirname, join } from 'node:path';

/**
 * Builds a stage's output in a fresh folder and swaps it in. `verify` lists
 * what is missing from the built folder (for example files an index names):
 * an incomplete output is never swapped in, so Nx can never cache one.
 */
export async function buildOutputDir<T>(finalDir: string, build: (dir: string) => Promise<T>, verify?: (dir: string) => string[]): Promise<T> {
  const tmp = `${finalDir}.building-${process.pid}`;
  removeLeftovers(finalDir);
  mkdirSync(tmp, { recursive: true });
  try {
    const result = await build(tmp);
    for (const [name, text] of outputExtras?.(finalDir) ?? []) writeFileAtomicSync(join(tmp, name), text);
    const missing = verify?.(tmp) ?? [];
    if (missing.length > 0) {
      throw new Error(`the output is incomplete (${missing.length} missing, e.g. ${missing.slice(0, 3).join(', ')}); nothing was replaced`);
    }
    const old = `${finalDir}.old-${process.pid}`;
    if (existsSync(finalDir)) renameSync(finalDir, old);
    renameSync(tmp, finalDir);
    rmSync(old, { recursive: true, force: true });
    return result;
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
}

/** Files every output of the running stage carries besides its own (the input record: executors/lib/context.ts). */
let outputExtras: ((finalDir: string) => [string, string][]) | null = null;

export function setOutputExtras(fn: ((finalDir: string) => [string, string][]) | null): void {
  outputExtras = fn;
}

/** Folders a killed run left behind next to a stage's output (never those of a live process). */
function removeLeftovers(finalDir: string): void {
  const parent = dirname(finalDir);
  const prefix = `${basename(finalDir)}.`;
  let names: string[] = [];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /\.(building|old)-(\d+)$/.exec(name);
    if (name.startsWith(prefix) && m && !isAlive(Number(m[2]))) rmSync(join(parent, name), { recursive: true, force: true });
  }
}

/** Whether a process with this pid exists (this process counts as not: its own leftovers are from an earlier attempt). */
export function isAlive(pid: number): boolean {
  if (pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export { writeJson } from '../../stages/util/fs.ts';

export const writeText: (file: string, text: string) => void = writeFileAtomicSync;

export class MissingUpstreamError extends Error {
  override name = 'MissingUpstreamError';
}

/**
 * Reads an upstream stage's JSON output, with a message that says which
 * target makes it. Unchecked: check it against the file's schema
 * (stages/file-format.ts checkUpstreamFile).
 */
export function readUpstream(dir: string, file: string, target: string): unknown {
  const path = join(dir, file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new MissingUpstreamError(`${path} is missing: run the ${target} target first (nx run <analysis>:${target})`);
  }
  return JSON.parse(text) as unknown;
}
