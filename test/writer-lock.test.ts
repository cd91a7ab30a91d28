// The analysis' writer lock across processes (executors/lib/context.ts
// lockAnalysis): a holder killed mid-stage does not make the next run wait out
// the stale time, and a live holder is still waited for.
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const CONTEXT = pathToFileURL(resolve(import.meta.dirname, '../executors/lib/context.ts')).href;
const root = mkdtempSync(join(tmpdir(), 'writer-lock-'));
const children: ChildProcessWithoutNullStreams[] = [];
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

/** A process that takes the lock, prints "locked <ms waited>", and holds it until killed, `holdMs`, or a line on its stdin. */
function locker(holdMs = 60_000): { child: ChildProcessWithoutNullStreams; locked: Promise<number>; out: () => string } {
  const script = [
    `const { lockAnalysis } = await import(${JSON.stringify(CONTEXT)});`,
    'const t = performance.now();',
    `lockAnalysis(${JSON.stringify(join(root, 'out/a'))}, ${JSON.stringify(root)});`,
    "console.log('locked ' + Math.round(performance.now() - t));",
    `setTimeout(() => process.exit(0), ${holdMs});`,
    'process.stdin.once("data", () => process.exit(0));',
  ].join('\n');
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: root });
  children.push(child);
  let out = '';
  child.stderr.on('data', (d) => (out += d));
  const locked = new Promise<number>((done, fail) => {
    child.stdout.on('data', (d) => {
      out += d;
      const m = /locked (\d+)/.exec(out);
      if (m) done(Number(m[1]));
    });
    child.on('exit', (code) => fail(new Error(`exited (${code}) before taking the lock: ${out}`)));
  });
  locked.catch(() => {});
  return { child, locked, out: () => out };
}

describe('the writer lock', () => {
  it('is taken over at once from a holder that was killed', async () => {
    const first = locker();
    await first.locked;
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.on('exit', r));
    const started = performance.now();
    const second = locker(100);
    const waited = await second.locked;
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(waited).toBeLessThan(5_000);
    expect(second.out()).toMatch(/took over the writer lock of a run that ended without releasing it \(pid \d+\)/);
    await new Promise((r) => second.child.on('exit', r));
  }, 20_000);

  it('waits for a live holder, and goes on when it ends', async () => {
    const holder = locker();
    await holder.locked;
    const waiter = locker(100);
    let waiterLocked = false;
    void waiter.locked.then(() => (waiterLocked = true));
    // However slowly this machine starts the waiter, it is released only once it says it waits.
    while (!waiter.out().includes('waiting for it to finish')) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 500));
    expect(waiterLocked).toBe(false);
    holder.child.stdin.write('release\n');
    await waiter.locked;
    expect(waiter.out()).toContain("another run is writing this analysis' outputs; waiting for it to finish.");
    expect(waiter.out()).not.toContain('took over');
  }, 30_000);
});
