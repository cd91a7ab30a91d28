// Nx inputs for the files pipeline.yaml names (prompts, the resume file, the
// taxonomy lock), hashed by content wherever they live. Nx hashes a file input
// only when the file is in its file map: inside the workspace and not ignored
// by .gitignore or .nxignore. Any other named file goes into a `runtime` input
// that prints its digest (executors/hash-files.mjs), so editing it still
// invalidates the targets that read it. Paths stay as configured: no
// machine-specific path enters a key.
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, normalize, relative, sep } from 'node:path';
import ignore from 'ignore';
import type { Ignore } from 'ignore';

export type NamedInput = string | { runtime: string };

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** A checker of whether a workspace-relative path is ignored by the .gitignore files on its way or by .nxignore. */
export function ignoreChecker(workspaceRoot: string): (rel: string) => boolean {
  const perDir = new Map<string, Ignore | null>();
  const rulesOf = (dir: string): Ignore | null => {
    if (!perDir.has(dir)) {
      const files = dir === '' ? ['.gitignore', '.nxignore'] : [join(dir, '.gitignore')];
      const text = files.map((f) => join(workspaceRoot, f)).filter(existsSync).map((f) => readFileSync(f, 'utf8')).join('\n');
      perDir.set(dir, text.trim() === '' ? null : ignore().add(text));
    }
    return perDir.get(dir) ?? null;
  };
  return (rel) => {
    const parts = rel.split('/');
    for (let i = 0; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      const rules = rulesOf(dir);
      if (rules?.ignores(parts.slice(i).join('/'))) return true;
    }
    return false;
  };
}

/** File inputs for the named files Nx can hash, and one runtime input for the rest. */
export function namedFileInputs(workspaceRoot: string, paths: readonly string[], isIgnored = ignoreChecker(workspaceRoot)): NamedInput[] {
  const files = new Set<string>();
  const external = new Set<string>();
  for (const p of paths) {
    const rel = normalize(isAbsolute(p) ? relative(workspaceRoot, p) : p).split(sep).join('/');
    if (isAbsolute(rel) || rel === '..' || rel.startsWith('../') || isIgnored(rel)) external.add(p);
    else files.add(`{workspaceRoot}/${rel}`);
  }
  const out: NamedInput[] = [...files].sort();
  if (external.size > 0) out.push({ runtime: `node executors/hash-files.mjs ${[...external].sort().map(shellQuote).join(' ')}` });
  return out;
}
