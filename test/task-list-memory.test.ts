// What keeps the task-list stage's memory small at 100,000 runs without
// changing a byte of what it writes: the crawl keeps what selection reads of a
// run's files instead of their bytes (task-list/run-files.ts), and the outputs
// are written as they are made (util/fs.ts writeTextAtomicSync, util/json-pieces.ts, pyJsonDumpTo).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { IoCache, nodeTreeIoSync } from '../stages/task-list/crawl.ts';
import { crawlParallel } from '../stages/task-list/crawl-workers.ts';
import { crawlSpecOf, selectRuns, selectRunsFrom } from '../stages/task-list/select.ts';
import { runInputDigest } from '../stages/task-list/run-files.ts';
import { fileHoldsText } from '../stages/task-list/output-text.ts';
import { writeTextAtomicSync } from '../stages/util/fs.ts';
import { jsonPieces } from '../stages/util/json-pieces.ts';
import type { SelectRunsOptions } from '../stages/task-list/format.ts';
import { pyFloat, pyJsonDumps, pyJsonDumpTo } from '../stages/util/pyjson.ts';

vi.stubEnv('META_ANALYSIS_STRICT_CRAWL', '1');

const REPO = join(import.meta.dirname, '..');
const HAIKU = 'claude-haiku-4-5-20251001';
const scratch = mkdtempSync(join(tmpdir(), 'task-list-memory-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The bundled sample and every fixture tree, as data roots. */
function trees(): string[] {
  const out = [join(REPO, 'examples/perturbed_queries')];
  const root = join(REPO, 'test/fixtures/task-list/trees');
  for (const t of readdirSync(root)) {
    const pq = join(root, t, 'perturbed_queries');
    out.push(existsSync(pq) ? pq : join(root, t));
  }
  return out;
}

const optionsFor = (base: string, agent = HAIKU): SelectRunsOptions => ({
  baseDir: { typed: base, resolved: base },
  domain: 'all',
  perturbationModel: 'o4-mini-2025-04-16',
  refinementModel: null,
  agent,
  dataFilter: { typed: 'f.json', resolved: join(REPO, 'task_filters/final_decisions_example.json') },
  humanAnnotationFilter: { typed: 'h.json', resolved: join(REPO, 'task_filters/final_decisions_example.json') },
});

describe('the crawl for selection', () => {
  it('keeps what selection reads of a run\'s files, not their bytes, and the filter files whole', async () => {
    const base = join(REPO, 'examples/perturbed_queries');
    const cache = new IoCache(true);
    await crawlParallel(crawlSpecOf(optionsFor(base), [HAIKU, 'claude-opus-4-5-20251101']), nodeTreeIoSync, cache);
    expect(cache.pending.size).toBe(0);
    let summaries = 0;
    for (const [path, a] of cache.files) {
      if ('error' in a) continue;
      if (path.startsWith(base)) expect(a.bytes, path).toBeNull();
      else expect(a.bytes !== null && Buffer.from(a.bytes).equals(readFileSync(path)), path).toBe(true);
      if (!path.endsWith('/refinement_summary.json')) continue;
      summaries++;
      const pq = join(path, '../../..', `perturbed_query_${path.split('/').at(-4)!.replace('perturbed_query_', '')}.json`);
      expect(a.summary?.inputDigest).toBe(runInputDigest(readFileSync(path), readFileSync(pq)));
      expect(a.summary?.fields).not.toBeNull();
    }
    expect(summaries).toBeGreaterThan(100);
  });

  it('selects what reading every file from disk selects, on every fixture tree', async () => {
    for (const base of trees()) {
      const fromCrawl = await selectRuns(optionsFor(base));
      vi.stubEnv('META_ANALYSIS_STRICT_CRAWL', '');
      const fromDisk = selectRunsFrom(optionsFor(base), nodeTreeIoSync);
      vi.stubEnv('META_ANALYSIS_STRICT_CRAWL', '1');
      expect(pyJsonDumps(fromCrawl), base).toBe(pyJsonDumps(fromDisk));
    }
  });
});

describe('output text made in pieces', () => {
  const join2 = (value: Record<string, unknown>) => {
    const pieces = [...jsonPieces(value)];
    expect(pieces.pop()).toBe('\n');
    return pieces;
  };

  it('is JSON.stringify(value, null, 2) (and a newline), in pieces: the ledger written as runs.json', () => {
    const run = (i: number) => ({ run_id: `d:t${i}:p:m:a`, path: 'a/"b"\n\u00e9\ud83d\ude00', n: i, f: 1.5, nested: { x: [1, { y: null }], e: [], o: {} } });
    const values: Record<string, unknown>[] = [
      { analysis: 'a', agents: ['x', 'y'], task_list_files: { x: 'task_list_x.json' }, runs: [run(1), run(2), run(3)], problems: [] },
      { problems: [{ file: 'f', message: 'm' }, { file: 'g', field: undefined, message: 'n' }] },
      { gone: undefined, fn: () => 1, sym: Symbol('s'), kept: 1 },
      { odd: [undefined, () => 1, null, 'x'], holes: [1, , 3] },
      {},
      { only: undefined },
    ];
    for (const v of values) expect(join2(v).join('')).toBe(JSON.stringify(v, null, 2));
    expect(join2(values[0]!).length).toBeGreaterThan(6);
  });

  it('is pyJsonDumps(value) when spilled by pyJsonDumpTo, in several pieces', () => {
    const big = {
      metadata: { generated_at: null, n: 3, f: pyFloat(2), nan: pyFloat(Number.NaN) },
      list: Array.from({ length: 4000 }, (_, i) => ({ task_spec: `d:${i}:\u00e9\ud83d\ude00`, score: pyFloat(i / 7), iterations: i, ok: i % 2 === 0, none: [] })),
    };
    for (const indent of [4, null, 0, '\t']) {
      const pieces: string[] = [];
      pyJsonDumpTo(big, indent, (p) => pieces.push(p));
      expect(pieces.length).toBeGreaterThan(1);
      expect(pieces.join('')).toBe(pyJsonDumps(big, indent));
    }
  });

  it('writes the bytes of the whole text, a surrogate pair split between pieces included, and compares a file with it', () => {
    const CHUNK = 1 << 18;
    const cases: string[][] = [
      ['a'.repeat(CHUNK - 1) + '\ud83d', '\ude00b'],
      ['x'.repeat(CHUNK - 1), '\ud83d\ude00', 'y'.repeat(CHUNK + 5), '\ud83d'],
      ['lone \udc00 and \ud800 surrogates', '\u00e9'.repeat(3 * CHUNK)],
      [],
    ];
    for (const [k, pieces] of cases.entries()) {
      const file = join(scratch, `out-${k}.txt`);
      const text = (write: (t: string) => void) => {
        for (const p of pieces) write(p);
      };
      writeTextAtomicSync(file, text);
      expect(readFileSync(file).equals(Buffer.from(pieces.join(''), 'utf8')), `case ${k}`).toBe(true);
      expect(fileHoldsText(file, text)).toBe(true);
      writeFileSync(file, Buffer.concat([Buffer.from(pieces.join(''), 'utf8'), Buffer.from('!')]));
      expect(fileHoldsText(file, text)).toBe(false);
      if (pieces.length > 0) {
        writeFileSync(file, Buffer.from(pieces.join('').slice(1), 'utf8'));
        expect(fileHoldsText(file, text)).toBe(false);
      }
    }
    expect(fileHoldsText(join(scratch, 'missing.txt'), (w) => w(''))).toBe(false);
  });
});
