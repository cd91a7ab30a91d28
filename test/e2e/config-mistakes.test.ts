// Configuration mistakes through the real nx: each exits non-zero with a
// message naming the file, the key and what was expected, no stage writes, and
// the previous report stays as it was.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTree } from '../helpers/trees.ts';
import { tempWorkspace } from './workspace.ts';
import type { TempWorkspace } from './workspace.ts';

/** A "billion laughs": level n is ten aliases to level n-1 (about 10^n values). */
function aliasLevels(levels: number): string {
  const lines = [`      - &l1 [${Array(10).fill('x').join(', ')}]`];
  for (let n = 2; n <= levels; n++) lines.push(`      - &l${n} [${Array(10).fill(`*l${n - 1}`).join(', ')}]`);
  return lines.join('\n');
}

describe('configuration mistakes', () => {
  let ws: TempWorkspace;
  let good: string;
  let before: Record<string, string>;
  beforeAll(() => {
    ws = tempWorkspace({ prefix: 'meta-analysis-config-' });
    const first = ws.nx(['run', 'analysis:report']);
    expect(first.code, first.out).toBe(0);
    good = ws.read('pipeline.yaml');
    before = readTree(join(ws.root, 'out/analysis'), ['logs']);
  });
  afterAll(() => ws?.dispose());

  const cases: [string, (yaml: string) => string, RegExp][] = [
    ['a data root that does not exist', (y) => y.replace('root: examples/perturbed_queries', 'root: examples/nowhere'), /data\.root \(analysis "analysis"\): examples\/nowhere: not found; expected a folder/],
    ['a prompt file that does not exist', (y) => y.replace('prompt: prompts/cluster.md', 'prompt: prompts/clusterr.md'), /stages\.cluster\.prompt \(analysis "analysis"\): prompts\/clusterr\.md: not found; expected a file: a prompt template/],
    ['a filter file that does not exist', (y) => y.replace('baseline_harm: null', 'baseline_harm: task_filters/missing.json'), /data\.filters\.baseline_harm \(analysis "analysis"\): task_filters\/missing\.json: not found/],
    ['an agent that matches no run', (y) => y.replace('agents: [claude-haiku-4-5-20251001, claude-opus-4-5-20251101]', 'agents: [claude-haiku-4-5-2025100]'), /no runs|zero runs|0 runs/i],
    ['an alias bomb', (y) => y.replace('    domains: all', `    domains:\n${aliasLevels(9)}`), /pipeline\.yaml: invalid configuration[\s\S]*analyses\[0\]\.domains\[3\]\[7\]: too many alias expansions \(YAML aliases may stand for at most 10000 values in all; \*l3 brings them past it\); write the values out/],
  ];
  for (const [what, edit, message] of cases) {
    it(`${what}: exit 1, a clear message, the previous outputs intact`, () => {
      ws.write('pipeline.yaml', edit(good));
      try {
        const res = ws.nx(['run', 'analysis:report']);
        expect(res.code, res.out).not.toBe(0);
        expect(res.out).toMatch(message);
        expect(readTree(join(ws.root, 'out/analysis'), ['logs'])).toEqual(before);
      } finally {
        ws.write('pipeline.yaml', good);
      }
    });
  }
});
