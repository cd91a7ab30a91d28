// What keeps the task-list stage's memory small at 100,000 runs without
// changing a byte of what it writes: the crawl keeps what selection reads of a
// run's files instead of their bytes (task-list/run-files.ts).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { IoCache, nodeTreeIoSync } from '../stages/task-list/crawl.ts';
import { crawlParallel } from '../stages/task-list/crawl-workers.ts';
import { crawlSpecOf, selectRuns, selectRunsFrom } from '../stages/task-list/select.ts';
import { runInputDigest } from '../stages/task-list/run-files.ts';
import type { SelectRunsOptions } from '../stages/task-list/format.ts';
import { pyJsonDumps } from '../stages/util/pyjson.ts';

vi.stubEnv('META_ANALYSIS_STRICT_CRAWL', '1');

const REPO = join(import.meta.dirname, '..');
const HAIKU = 'claude-haiku-4-5-20251001';

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
