// The task-list hint for a data root that Nx would hash on every command.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { dataRootHint } from '../stages/task-list/data-root.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const workspace = () => {
  const d = mkdtempSync(join(tmpdir(), 'data-root-'));
  dirs.push(d);
  return d;
};

describe('dataRootHint', () => {
  it('names a data root inside the workspace that neither .nxignore nor .gitignore covers, and what to add', () => {
    const root = workspace();
    expect(dataRootHint(root, join(root, 'runs/batch-1'))).toMatch(/the data root runs\/batch-1 is inside the workspace .* add "runs\/batch-1\/" to \.nxignore/);
    writeFileSync(join(root, '.nxignore'), '# data\nruns/\n');
    expect(dataRootHint(root, join(root, 'runs/batch-1'))).toBeNull();
    writeFileSync(join(root, '.nxignore'), '');
    writeFileSync(join(root, '.gitignore'), '/runs/batch-1\n');
    expect(dataRootHint(root, join(root, 'runs/batch-1'))).toBeNull();
  });

  it('says nothing of a data root outside the workspace', () => {
    const root = workspace();
    expect(dataRootHint(join(root, 'ws'), join(root, 'data'))).toBeNull();
    expect(dataRootHint(root, '/somewhere/else')).toBeNull();
  });

  it('the workspace itself as data root cannot be ignored: it says so', () => {
    const root = workspace();
    expect(dataRootHint(root, root)).toMatch(/the data root \. is inside the workspace/);
  });
});
