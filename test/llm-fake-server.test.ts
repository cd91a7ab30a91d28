// The fake provider server itself: scripting order, recording, and that it never outlives its use.
import { describe, expect, it } from 'vitest';
import { startFakeProviderServer } from './helpers/fake-provider-server.ts';

describe('fake provider server', () => {
  it('answers from the queue, then the handler, then the default; records requests', async () => {
    const server = await startFakeProviderServer();
    try {
      server.reply({ status: 503, headers: { 'retry-after': '1' } });
      server.handle((r, i) => ({ text: `handled ${i} ${r.protocol}` }));
      const post = (path: string, body: unknown) =>
        fetch(server.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const first = await post('/v1/chat/completions', { model: 'm' });
      expect(first.status).toBe(503);
      expect(first.headers.get('retry-after')).toBe('1');
      expect(await first.json()).toMatchObject({ error: { message: 'fake error 503' } });
      const second = await (await post('/v1/messages', { model: 'c' })).json();
      expect(second).toMatchObject({ type: 'message', content: [{ type: 'text', text: 'handled 1 messages' }] });
      server.handle(null);
      const third = await (await post('/model/us.anthropic.x-v1%3A0/invoke', {})).json();
      expect(third).toMatchObject({ content: [{ text: 'ok' }] });
      expect(server.requests.map((r) => [r.protocol, r.model])).toEqual([
        ['chat', 'm'],
        ['messages', 'c'],
        ['bedrock', 'us.anthropic.x-v1:0'],
      ]);
    } finally {
      await server.close();
    }
  });

  it('closes itself after its maximum lifetime, and close() is idempotent', async () => {
    const server = await startFakeProviderServer({ maxLifetimeMs: 50 });
    await new Promise((r) => setTimeout(r, 150));
    await expect(fetch(server.url + '/v1/chat/completions', { method: 'POST', body: '{}' })).rejects.toThrow();
    await server.close();
    await server.close();
  });

  it('close() ends requests that are still waiting', async () => {
    const server = await startFakeProviderServer();
    server.reply({ delayMs: 10_000, text: 'late' });
    const pending = fetch(server.url + '/v1/chat/completions', { method: 'POST', body: '{}' }).catch((e: unknown) => e);
    while (server.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    const started = Date.now();
    await server.close();
    expect(await pending).toBeInstanceOf(Error);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});
