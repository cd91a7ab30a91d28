// Where the key script leaves what it computed, in the workspace's .cache
// (gitignored): in no output and not under out/; where stage outputs live; and
// how a record digests a file. Its own module, with nothing but node:
// modules, because the key's fast path (executors/key-memo.ts) needs them on
// every nx command and must not load the record's code to find them.
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Hex sha256, as every record digest is written. */
export const sha256 = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');

/**
 * A file's digest, following symlinks; "missing", or "unreadable (<code>)".
 * Read in blocks through one buffer: an upstream output can be a hundred MB,
 * and a stage digests them again when its output is complete, when it holds
 * the most.
 */
export function fileDigest(path: string): string {
  let fd: number | null = null;
  try {
    fd = openSync(path, 'r');
    const hash = createHash('sha256');
    const block = Buffer.allocUnsafe(1024 * 1024);
    for (let n = readSync(fd, block, 0, block.length, null); n > 0; n = readSync(fd, block, 0, block.length, null)) hash.update(block.subarray(0, n));
    return hash.digest('hex');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'missing' : `unreadable (${code ?? 'error'})`;
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** Where an analysis' stage output lives. */
export const stageOutputDir = (workspaceRoot: string, d: { outDir: string; analysis: string }, stage: string): string =>
  join(resolve(workspaceRoot, d.outDir), d.analysis, stage);

/** The folder of the keys' records and memos. */
export const keysDir = (workspaceRoot: string): string => join(workspaceRoot, '.cache', 'keys');

/** The record a stage's key was the digest of (the runner checks what the stage reads against it). */
export const keyedRecordFile = (workspaceRoot: string, d: { analysis: string; stage: string }): string =>
  join(keysDir(workspaceRoot), d.analysis, `${d.stage}.json`);

/** task-list: the crawl its key computed the data fingerprint from, for the executor to select from (task-list/keyed-crawl.ts). */
export const keyedCrawlFile = (workspaceRoot: string, d: { analysis: string; stage: string }): string =>
  join(keysDir(workspaceRoot), d.analysis, `${d.stage}.crawl`);

/** The memo of that key: valid while nothing the key's computation read has changed (executors/key-memo.ts). */
export const keyMemoFile = (workspaceRoot: string, d: { analysis: string; stage: string }): string =>
  join(keysDir(workspaceRoot), d.analysis, `${d.stage}.memo.json`);
