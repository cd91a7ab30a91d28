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
