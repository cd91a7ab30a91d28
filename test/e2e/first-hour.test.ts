// The first hour with an LLM, through the real nx: switching the sample from
// the offline analyzer to a provider whose key is not set is a configuration
// error before any request, not 117 provider failures.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProviderServer } from '../helpers/fake-provider-server.ts';
import type { FakeProviderServer } from '../helpers/fake-provider-server.ts';
import { fakeOpenAiPipeline } from '../helpers/trees.ts';
import { executedTargets, tempWorkspace } from './workspace.ts';
import type { TempWorkspace } from './workspace.ts';

describe('switching to an LLM provider', () => {
  let ws: TempWorkspace;
  let server: FakeProviderServer;

  beforeAll(async () => {
    server = await startFakeProviderServer({ maxLifetimeMs: 240_000 });
    ws = tempWorkspace({ prefix: 'meta-analysis-first-hour-' });
    const first = await ws.nxAsync(['run', 'analysis:report']);
    expect(first.code, first.out).toBe(0);
  });
  afterAll(async () => {
    await server?.close();
    ws?.dispose();
  });

  it('without its key: exit non-zero, no request, one message naming the variable and the stages, the previous report intact', async () => {
    const report = ws.read('out/analysis/report/report.md');
    const html = ws.read('out/analysis/report/report.html');
    ws.write('pipeline.yaml', fakeOpenAiPipeline(server.url));
    server.reset();
    const res = await ws.nxAsync(['run', 'analysis:report']);
    expect(res.code, res.out).not.toBe(0);
    expect(server.requests).toHaveLength(0);
    const lines = res.out.split('\n').filter((l) => l.includes('OPENAI_API_KEY'));
    expect(lines, res.out).toHaveLength(1);
    expect(lines[0]).toMatch(/^summarize failed: stopped before any request, nothing written: OPENAI_API_KEY is not set \(provider openai\).*\(needed by summarize, categorize, cluster\)$/);
    expect(res.out).not.toContain('failed at the provider');
    expect(executedTargets(res.out)).toContain('summarize');
    expect(ws.read('out/analysis/report/report.md')).toBe(report);
    expect(ws.read('out/analysis/report/report.html')).toBe(html);
  });
});
