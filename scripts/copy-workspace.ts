// Copies this workspace's source tree (not node_modules, caches or outputs) to
// another folder and links node_modules there: the throw-away workspaces of the
// end-to-end tests and the benchmarks.
import { cpSync, mkdirSync, symlinkSync } from 'node:fs';
import { basename, join, resolve, sep } from 'node:path';

export const REPO = resolve(import.meta.dirname, '..');

const SKIP = new Set(['node_modules', '.git', '.nx', 'out', '.cache', 'test-artifacts', 'dist', 'coverage']);

/**
 * Copies the source tree of `opts.from` (default: this workspace) to `dest`,
 * without node_modules, caches or outputs, and links this workspace's node_modules there.
 */
export function copyWorkspace(dest: string, opts: { linkNodeModules?: boolean; from?: string } = {}): void {
  const from = resolve(opts.from ?? REPO);
  mkdirSync(dest, { recursive: true });
  cpSync(from, dest, {
    recursive: true,
    filter: (src) => {
      const rel = src.slice(from.length + 1);
      const top = rel.split(sep)[0] ?? '';
      return !(rel.length > 0 && SKIP.has(top)) && !basename(src).endsWith('.tmp');
    },
  });
  if (opts.linkNodeModules !== false) symlinkSync(join(REPO, 'node_modules'), join(dest, 'node_modules'), 'dir');
}
