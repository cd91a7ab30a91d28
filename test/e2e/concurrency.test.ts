// Two `nx run analysis:report` at once in one workspace: they wait for each
// other (one writer per analysis), every output is complete, nothing broken is
// ever cached, and a later run is all cache hits with the same bytes.
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSyntheticTree } from '../../bench/synthetic-tree.ts';
import { readTree } from '../helpers/trees.ts';
import { cachedTargets, tempWorkspace } from './workspace.ts';
import type { TempWorkspace } from './workspace.ts';

const RUNS = Number(process.env['CONCURRENCY_TEST_RUNS'] ?? 2000);
const TRIES = Number(process.env['CONCURRENCY_TEST_TRIES'] ?? 3);

describe(`two concurrent runs on ${RUNS} runs (${TRIES} tries)`, () => {
  let ws: TempWorkspace;
  let data: string;
  beforeAll(() => {
    data = mkdtempSync(join(tmpdir(), 'meta-analysis-concurrent-data-'));
    generateSyntheticTree({ runs: RUNS, out: data, screenshotFraction: 0 });
    ws = tempWorkspace({ prefix: 'meta-analysis-concurrent-' });
    ws.write('pipeline.yaml', ws.read('pipeline.yaml').replace('root: examples/perturbed_queries', `root: ${data}`));
  });
  afterAll(() => {
    ws?.dispose();
    rmSync(data, { recursive: true, force: true });
  });

  for (let k = 1; k <= TRIES; k++) {
    it(`try ${k}: both succeed, outputs complete, the next run is all cache hits`, async () => {
      // From nothing each time: no outputs, no Nx cache, no stored answers.
      for (const d of ['out', '.nx', '.cache']) rmSync(join(ws.root, d), { recursive: true, force: true });
      const [a, b] = await Promise.all([ws.nxAsync(['run', 'analysis:report']), ws.nxAsync(['run', 'analysis:report'])]);
      expect(a.code, a.out).toBe(0);
      expect(b.code, b.out).toBe(0);
      expect(`${a.out}\n${b.out}`).toMatch(/another run is writing this analysis' outputs; waiting/);
      const index = JSON.parse(ws.read('out/analysis/summarize/index.json'));
      expect(index.runs.length).toBeGreaterThan(RUNS / 2);
      for (const r of index.runs) expect(r.status === 'done' && existsSync(join(ws.root, 'out/analysis/summarize', r.file)), r.run_id).toBe(true);
      expect(readdirSync(join(ws.root, 'out/analysis')).filter((f) => /\.(building|old)-/.test(f))).toEqual([]);
      const before = readTree(join(ws.root, 'out/analysis'), ['logs']);
      const again = ws.nx(['run', 'analysis:report']);
      expect(again.code, again.out).toBe(0);
      expect(cachedTargets(again.out).sort()).toEqual(['categorize', 'cluster', 'report', 'summarize', 'task-list']);
      expect(readTree(join(ws.root, 'out/analysis'), ['logs'])).toEqual(before);
    });
  }
});
