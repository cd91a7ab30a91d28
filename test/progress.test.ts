// The progress line every stage that makes calls prints: done/total, the
// stage's counters, the time left from the pace so far; in CI one line per ~10%.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { progressPrinter } from '../executors/lib/context.ts';

afterEach(() => vi.restoreAllMocks());

describe('progressPrinter', () => {
  it('prints about one line per 10% without a TTY, with the time left', () => {
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((l: unknown) => void lines.push(String(l)));
    const tty = process.stdout.isTTY;
    Object.defineProperty(process.stdout, 'isTTY', { value: false, configurable: true });
    try {
      let t = 0;
      const show = progressPrinter('categorize', 100, () => t);
      for (let done = 1; done <= 100; done++) {
        t += 2000; // 2 s a batch
        show(done, 'reused 0, computed 1, failed 0, spent $0.0100');
      }
    } finally {
      Object.defineProperty(process.stdout, 'isTTY', { value: tty, configurable: true });
    }
    expect(lines.length).toBeGreaterThanOrEqual(10);
    expect(lines.length).toBeLessThanOrEqual(12);
    expect(lines[0]).toBe('categorize: 1/100  reused 0, computed 1, failed 0, spent $0.0100, ~3m18s left');
    expect(lines.at(-1)).toBe('categorize: 100/100  reused 0, computed 1, failed 0, spent $0.0100');
  });
});

describe('summarize\'s progress lines', () => {
  it('add up on every line: reused + computed + failed = runs done, first run and re-run', async () => {
    const { cpSync, mkdtempSync, rmSync, writeFileSync, readdirSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { join, resolve } = await import('node:path');
    const { default: taskList } = await import('../executors/task-list/executor.ts');
    const { default: summarize } = await import('../executors/summarize/executor.ts');
    const REPO = resolve(import.meta.dirname, '..');
    const root = mkdtempSync(join(tmpdir(), 'progress-'));
    try {
      cpSync(join(REPO, 'examples/perturbed_queries'), join(root, 'data'), { recursive: true });
      cpSync(join(REPO, 'prompts'), join(root, 'prompts'), { recursive: true });
      writeFileSync(join(root, 'pipeline.yaml'), 'data:\n  root: data\ndefaults:\n  concurrency: 10\nanalyses:\n  - name: p\n    agents: [claude-haiku-4-5-20251001, claude-opus-4-5-20251101]\n');
      const ctx = { root, projectName: 'p' };
      const lines: string[] = [];
      vi.spyOn(console, 'log').mockImplementation((l: unknown) => void lines.push(String(l)));
      vi.spyOn(console, 'error').mockImplementation(() => {});
      expect((await taskList({ analysis: 'p', outDir: 'out' }, ctx)).success).toBe(true);
      // One run's summary file made unreadable after selection: a failure among the counts.
      const os = join(root, 'data/os');
      const task = readdirSync(os).sort()[0]!;
      const pq = readdirSync(join(os, task, 'o4-mini-2025-04-16')).sort()[0]!;
      const rm = readdirSync(join(os, task, 'o4-mini-2025-04-16', pq)).filter((d) => d.startsWith('iterative_refinement_')).sort()[0]!;
      const agent = readdirSync(join(os, task, 'o4-mini-2025-04-16', pq, rm))[0]!;
      const runDir = join(os, task, 'o4-mini-2025-04-16', pq, rm, agent);
      for (const f of readdirSync(runDir)) if (f.endsWith('.json')) writeFileSync(join(runDir, f), '{ broken');
      await summarize({ analysis: 'p', outDir: 'out' }, ctx);
      await summarize({ analysis: 'p', outDir: 'out' }, ctx);
      const progress = lines.filter((l) => /^summarize: \d+\/\d+ {2}reused/.test(l));
      expect(progress.length).toBeGreaterThan(4);
      for (const l of progress) {
        const m = /^summarize: (\d+)\/(\d+) {2}reused (\d+), computed (\d+), failed (\d+)/.exec(l)!;
        const [done, total, reused, computed, failed] = m.slice(1).map(Number) as [number, number, number, number, number];
        expect(reused + computed + failed, l).toBe(done);
        expect(done, l).toBeLessThanOrEqual(total);
      }
      expect(progress.some((l) => /failed [1-9]/.test(l))).toBe(true);
      expect(progress.some((l) => /reused [1-9]/.test(l))).toBe(true);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }, 60_000);
});
