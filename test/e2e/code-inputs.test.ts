// Mutation test of the cache keys, through the real nx: for each cached stage,
// edit one line of a file the stage's code reaches; the stage must run again
// (not be served from the cache) and, where the edit changes what it writes,
// its output must change. Reverting the edit gives a cache hit with the
// original bytes again.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTree } from '../helpers/trees.ts';
import { cachedTargets, executedTargets, tempWorkspace } from './workspace.ts';
import type { TempWorkspace } from './workspace.ts';

interface Mutation {
  stage: 'task-list' | 'summarize' | 'categorize' | 'cluster' | 'report';
  file: string;
  find: string | RegExp;
  replace: string;
  /** False where the edited code is not on the offline path (it must still re-run the stage). */
  changesOutput: boolean;
}

const MUTATIONS: Mutation[] = [
  // task-list is cached too: its crawl (read by a worker thread, named by URL) and its selection rules.
  { stage: 'task-list', file: 'stages/task-list/crawl-worker.ts', find: /$/, replace: '\n// mutated\n', changesOutput: false },
  { stage: 'task-list', file: 'stages/task-list/crawl.ts', find: "export const DOMAIN_SUFFIXES_SKIPPED = ['.zip', '.py', '.txt', '.json'];", replace: "export const DOMAIN_SUFFIXES_SKIPPED = ['.zip', '.py', '.txt', '.json', 's'];", changesOutput: true },
  // Files the hand-kept input lists used to miss.
  { stage: 'summarize', file: 'stages/offline/diff.ts', find: /$/, replace: '\nexport const MUTATED = 1;\n', changesOutput: true },
  { stage: 'summarize', file: 'stages/analyzer.ts', find: 'not a language model.', replace: 'not a language model (mutated).', changesOutput: true },
  { stage: 'categorize', file: 'stages/categorize/items.ts', find: "if (typeof phrase !== 'string') return false;", replace: 'return false;', changesOutput: true },
  { stage: 'categorize', file: 'stages/categorize/llm.ts', find: /$/, replace: '\nexport const MUTATED = 1;\n', changesOutput: false },
  { stage: 'cluster', file: 'stages/cluster/llm.ts', find: /$/, replace: '\nexport const MUTATED = 1;\n', changesOutput: false },
  { stage: 'cluster', file: 'stages/cluster/stage.ts', find: "generated_at: null", replace: "generated_at: 'mutated'", changesOutput: true },
  { stage: 'report', file: 'stages/report/html-assets/report.css', find: /$/, replace: '\n.mutated { color: red; }\n', changesOutput: true },
  { stage: 'report', file: 'stages/report/html-assets/report.js', find: /$/, replace: '\n// mutated\n', changesOutput: true },
];

const snapshot = (dir: string) => readTree(dir);

describe('cache keys follow the code each stage reaches (mutation test)', () => {
  let ws: TempWorkspace;
  beforeAll(() => {
    ws = tempWorkspace('meta-analysis-mutation-');
    const first = ws.nx(['run', 'analysis:report']);
    expect(first.code, first.out).toBe(0);
  });
  afterAll(() => ws?.dispose());

  for (const m of MUTATIONS) {
    it(`${m.file} -> ${m.stage}`, () => {
      const outDir = join(ws.root, 'out/analysis', m.stage);
      const original = ws.read(m.file);
      const before = snapshot(outDir);
      const mutated = original.replace(m.find, m.replace);
      expect(mutated).not.toBe(original);
      ws.write(m.file, mutated);
      try {
        const res = ws.nx(['run', `analysis:${m.stage}`]);
        expect(res.code, res.out).toBe(0);
        expect(executedTargets(res.out), res.out).toContain(m.stage);
        if (m.changesOutput) expect(snapshot(outDir)).not.toEqual(before);
      } finally {
        ws.write(m.file, original);
      }
      const again = ws.nx(['run', `analysis:${m.stage}`]);
      expect(again.code, again.out).toBe(0);
      expect(cachedTargets(again.out), again.out).toContain(m.stage);
      expect(snapshot(outDir)).toEqual(before);
    });
  }
});
