// Layering: the stages and their shared libraries never reach into the Nx
// side. A stage's contract with the runner (stages/stage-context.ts) lives
// under stages/; executors/ imports from stages/, never the other way round.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = resolve(import.meta.dirname, '..');
const STAGES_DIR = join(REPO, 'stages');
const EXECUTORS_DIR = join(REPO, 'executors');

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => join(e.parentPath, e.name))
    .sort();
}

/** Every module specifier of a file: static imports and re-exports (type-only too), import(). */
function specifiers(source: string): string[] {
  const found: string[] = [];
  const patterns = [/\b(?:import|export)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g];
  for (const re of patterns) for (const m of source.matchAll(re)) found.push(m[1]!);
  return found;
}

/** The relative imports of `file` that land under executors/. */
function executorImports(file: string): string[] {
  return specifiers(readFileSync(file, 'utf8'))
    .filter((s) => s.startsWith('.'))
    .filter((s) => {
      const target = resolve(dirname(file), s);
      return target === EXECUTORS_DIR || target.startsWith(EXECUTORS_DIR + '/');
    });
}

describe('layering', () => {
  it('finds the imports of a module, type-only and dynamic ones too', () => {
    const src = [
      "import type { A } from '../executors/lib/runner.ts';",
      "import { b } from './b.ts';",
      "export type { C } from '../../executors/lib/context.ts';",
      "import './side-effect.ts';",
      "const m = await import('./lazy.ts');",
    ].join('\n');
    expect(specifiers(src).sort()).toEqual(['../../executors/lib/context.ts', '../executors/lib/runner.ts', './b.ts', './lazy.ts', './side-effect.ts']);
  });

  it('no module under stages/ imports from executors/', () => {
    const files = tsFiles(STAGES_DIR);
    expect(files.length).toBeGreaterThan(20);
    const offending = files.flatMap((f) => executorImports(f).map((s) => `${relative(REPO, f)} imports ${s}`));
    expect(offending).toEqual([]);
  });
});
