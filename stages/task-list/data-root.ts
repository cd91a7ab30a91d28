// Where the data lives relative to Nx's file map. Nx hashes every workspace
// file it does not ignore (.nxignore, .gitignore) on every command, though no
// target needs it: run data enters a stage's key only through the task-list
// fingerprint (executors/key.ts). A data root inside the workspace that Nx
// still sees makes every nx command slower as the runs grow.
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative, sep } from 'node:path';
import ignore from 'ignore';
import { DATA_ROOT_IGNORE_FILES as IGNORE_FILES } from './data-root-files.ts';

/** A line that says how to keep the data root out of Nx's file map, or null when it already is (or lies outside the workspace). */
export function dataRootHint(workspaceRoot: string, dataRoot: string): string | null {
  const rel = relative(workspaceRoot, dataRoot);
  if (rel === '' || rel.startsWith(`..${sep}`) || rel === '..' || isAbsolute(rel)) return rel === '' ? hint('.') : null;
  const posix = rel.split(sep).join('/');
  const ig = ignore();
  for (const f of IGNORE_FILES) if (existsSync(join(workspaceRoot, f))) ig.add(readFileSync(join(workspaceRoot, f), 'utf8'));
  return ig.ignores(`${posix}/`) ? null : hint(posix);
}

function hint(rel: string): string {
  return `task-list: the data root ${rel} is inside the workspace and Nx does not ignore it, so every nx command reads and hashes its files ` +
    `(no target needs that: data enters the keys through the task-list fingerprint); add "${rel}/" to .nxignore to keep Nx's start-up from growing with the runs.`;
}
