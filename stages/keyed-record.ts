// Where the key script leaves what it computed, in the workspace's .cache
// (gitignored): in no output and not under out/. Its own module, with nothing
// but node:path, because the key's fast path (executors/key-memo.ts) reads it
// on every nx command and must not load the record's code to find it.
import { join } from 'node:path';

/** The folder of the keys' records and memos. */
export const keysDir = (workspaceRoot: string): string => join(workspaceRoot, '.cache', 'keys');

/** The record a stage's key was the digest of (the runner checks what the stage reads against it). */
export const keyedRecordFile = (workspaceRoot: string, d: { analysis: string; stage: string }): string =>
  join(keysDir(workspaceRoot), d.analysis, `${d.stage}.json`);

/** The memo of that key: valid while nothing the key's computation read has changed (executors/key-memo.ts). */
export const keyMemoFile = (workspaceRoot: string, d: { analysis: string; stage: string }): string =>
  join(keysDir(workspaceRoot), d.analysis, `${d.stage}.memo.json`);
