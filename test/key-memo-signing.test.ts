// The key memo's check signs the stat data of every path the last computation
// read; past PARALLEL_SIGNING_FROM paths a worker thread signs half of them.
// The digest must be the one a single thread computes, whatever the paths are.
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { memoSignatures } from '../executors/key-memo.ts';
import { encodePaths } from '../stages/keyed-record.ts';

const dir = mkdtempSync(join(tmpdir(), 'memo-sign-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A tree of files, folders, links (to a file, dangling, to a folder), missing paths and a path under a file. */
function paths(): string[] {
  const out: string[] = [];
  for (let d = 0; d < 12; d++) {
    const folder = join(dir, `task-${d}`);
    mkdirSync(folder, { recursive: true });
    out.push(folder);
    for (let f = 0; f < 25; f++) {
      const file = join(folder, `run-${f}.json`);
      writeFileSync(file, `{"run": ${d * 100 + f}}`);
      out.push(file, join(folder, `missing-${f}.json`));
    }
  }
  symlinkSync(join(dir, 'task-1', 'run-3.json'), join(dir, 'link-file'));
  symlinkSync(join(dir, 'nowhere'), join(dir, 'link-dangling'));
  symlinkSync(join(dir, 'task-2'), join(dir, 'link-dir'));
  // The same at the end of the order, in the worker's half.
  symlinkSync(join(dir, 'task-9', 'run-1.json'), join(dir, 'zz-link-file'));
  symlinkSync(join(dir, 'gone'), join(dir, 'zz-link-dangling'));
  out.push(join(dir, 'link-file'), join(dir, 'link-dangling'), join(dir, 'link-dir'), join(dir, 'task-0', 'run-0.json', 'under-a-file'));
  out.push(join(dir, 'zz-link-file'), join(dir, 'zz-link-dangling'), join(dir, 'task-11', 'run-4.json', 'under-a-file'));
  return out.sort();
}

describe('the memo check signed in two threads', () => {
  const sorted = paths();
  const lines = ['{"header": "not read"}', ...encodePaths(sorted)];

  it.runIf(availableParallelism() >= 2)('gives the digest one thread gives, and changes with any path', async () => {
    const one = await memoSignatures(lines, sorted.length, Infinity);
    const two = await memoSignatures(lines, sorted.length, 1);
    expect(one.threads).toBe(1);
    expect(two.threads).toBe(2);
    expect(two.digest).toBe(one.digest);
    // A change in either half is seen.
    for (const changed of [sorted[5]!, sorted[sorted.length - 8]!]) {
      writeFileSync(changed, 'changed, and longer than before');
      const after = await memoSignatures(lines, sorted.length, 1);
      expect(after.digest).not.toBe(one.digest);
      expect(after.digest).toBe((await memoSignatures(lines, sorted.length, Infinity)).digest);
    }
  });
});
