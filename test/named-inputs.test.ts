// Files named in pipeline.yaml: Nx file inputs where Nx can hash them, a
// runtime digest elsewhere (outside the workspace, or ignored by git/.nxignore).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { treeMaker } from './helpers/trees.ts';
import { namedFileInputs } from '../executors/named-inputs.ts';

const REPO = resolve(import.meta.dirname, '..');
const { tree, cleanup } = treeMaker('named-');
afterEach(cleanup);

describe('namedFileInputs', () => {
  it('uses file inputs for tracked workspace files, a runtime digest for ignored and outside ones', () => {
    const root = tree({ '.gitignore': 'local/\n', 'prompts/a.md': 'a', 'local/b.md': 'b', 'deep/.gitignore': '*.secret.md\n', 'deep/c.secret.md': 'c', '.nxignore': 'hidden.md\n', 'hidden.md': 'h' });
    const inputs = namedFileInputs(root, ['prompts/a.md', './prompts/a.md', 'local/b.md', 'deep/c.secret.md', 'hidden.md', '/abs/x.md', '../up/y.md', join(root, 'prompts/a.md')]);
    expect(inputs).toEqual([
      '{workspaceRoot}/prompts/a.md',
      { runtime: `node executors/hash-files.mjs '../up/y.md' '/abs/x.md' 'deep/c.secret.md' 'hidden.md' 'local/b.md'` },
    ]);
    expect(namedFileInputs(root, ['prompts/a.md'])).toEqual(['{workspaceRoot}/prompts/a.md']);
  });

  it("quotes paths for the shell, and the hasher prints one digest per file that changes with the content", () => {
    const root = tree({ "it's here/p.md": 'one' });
    const [input] = namedFileInputs(root, [join(root, "it's here/p.md"), join(root, 'gone.md')].map((p) => p.replace(root, '../' + root.split('/').pop())));
    const cmd = (input as { runtime: string }).runtime.replace('executors/hash-files.mjs', join(REPO, 'executors/hash-files.mjs'));
    const run = () => execFileSync('/bin/sh', ['-c', cmd], { cwd: root, encoding: 'utf8' });
    const first = run();
    expect(first.split('\n').filter(Boolean)).toHaveLength(2);
    expect(first).toContain('unreadable (ENOENT)');
    writeFileSync(join(root, "it's here/p.md"), 'two');
    expect(run()).not.toBe(first);
  });
});
