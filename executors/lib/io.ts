// Filesystem helpers for executors: build a stage's output in a fresh folder
// and swap it in at the end, so a crashed run never leaves a half-written
// output and runs removed from the task list leave no stale files behind.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { writeFileAtomicSync } from '../../stages/util/fs.ts';
import { basename, dirname, join } from 'node:path';

export async function buildOutputDir<T>(finalDir: string, build: (dir: string) => Promise<T>): Promise<T> {
  const tmp = `${finalDir}.building-${process.pid}`;
  removeLeftovers(finalDir);
  mkdirSync(tmp, { recursive: true });
  try {
    const result = await build(tmp);
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

/** Folders a killed run left behind next to a stage's output. */
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
    if (name.startsWith(prefix) && /\.(building|old)-\d+$/.test(name)) rmSync(join(parent, name), { recursive: true, force: true });
  }
}

/** JSON with 2-space indent and a trailing newline: the format of our own files. */
export function writeJson(file: string, value: unknown): void {
  writeFileAtomicSync(file, JSON.stringify(value, null, 2) + '\n');
}

export const writeText: (file: string, text: string) => void = writeFileAtomicSync;

export class MissingUpstreamError extends Error {
  override name = 'MissingUpstreamError';
}

/** Reads an upstream stage's JSON output, with a message that says which target makes it. */
export function readUpstream<T>(dir: string, file: string, target: string): T {
  const path = join(dir, file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new MissingUpstreamError(`${path} is missing: run the ${target} target first (nx run <analysis>:${target})`);
  }
  return JSON.parse(text) as T;
}
