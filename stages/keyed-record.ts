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

/**
 * Paths front-coded, each as `<length of the prefix shared with the previous
 * path>\t<rest>`: the paths of a data tree share most of their characters with
 * the one before them (sorted, or in the order a walk meets them). The key's
 * memo and the key's crawl keep their paths so.
 */
export function encodePaths(paths: readonly string[]): string[] {
  let previous = '';
  return paths.map((p) => {
    let n = 0;
    const max = Math.min(p.length, previous.length);
    while (n < max && p.charCodeAt(n) === previous.charCodeAt(n)) n++;
    previous = p;
    return `${n}\t${p.slice(n)}`;
  });
}

/** The paths of front-coded lines (encodePaths), from the line `from` on. */
export function* decodePaths(lines: readonly string[], from = 0): Generator<string> {
  let previous = '';
  for (let i = from; i < lines.length; i++) yield (previous = nextPath(previous, lines[i]!));
}

/** The paths of front-coded lines joined by `sep` into one text, taken one at a time (no array of the lines). */
export function* decodeJoinedPaths(text: string, sep: string): Generator<string> {
  let previous = '';
  for (let at = 0; at < text.length; ) {
    const end = text.indexOf(sep, at);
    const stop = end === -1 ? text.length : end;
    yield (previous = nextPath(previous, text.slice(at, stop)));
    at = stop + sep.length;
  }
}

/** The path a front-coded line gives after `previous`. */
function nextPath(previous: string, line: string): string {
  const tab = line.indexOf('\t');
  return previous.slice(0, Number(line.slice(0, tab))) + line.slice(tab + 1);
}
