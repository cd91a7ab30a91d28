// The fake provider's batch endpoints themselves, driven by the real SDK
// clients: the wire shapes the engine relies on, delays, chosen failures,
// cancellation and counters.
import Anthropic from '@anthropic-ai/sdk';
import OpenAI, { toFile } from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFakeProviderServer } from './helpers/fake-provider-server.ts';
import type { FakeProviderServer } from './helpers/fake-provider-server.ts';

let server: FakeProviderServer;
let openai: OpenAI;
let anthropic: Anthropic;

beforeAll(async () => {
  server = await startFakeProviderServer();
  openai = new OpenAI({ apiKey: 'sk-fake', baseURL: `${server.url}/v1`, maxRetries: 0 });
  anthropic = new Anthropic({ apiKey: 'sk-ant-fake', baseURL: server.url, maxRetries: 0 });
});
afterEach(() => server.reset());
afterAll(async () => {
  await server.close();
});

const chatLine = (id: string) => JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-5-mini', messages: [{ role: 'user', content: id }] } });

async function openaiBatch(ids: string[]) {
  const file = await openai.files.create({ file: await toFile(Buffer.from(ids.map(chatLine).join('\n')), 'in.jsonl'), purpose: 'batch' });
  return openai.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
}

const lines = (text: string) => text.trim().split('\n').map((l) => JSON.parse(l) as { custom_id: string; response: { status_code: number; body: any } | null; error: { code: string } | null });

describe('fake OpenAI batches', () => {
  it('upload, create, poll until completed, output and error files by custom_id', async () => {
    server.batches.configure({ completeAfterPolls: 1, errorIds: ['b'], expireIds: ['c'] });
    server.handle((r) => ({ text: `answer to ${r.body.messages[0].content}` }));
    const created = await openaiBatch(['a', 'b', 'c']);
    expect(created).toMatchObject({ status: 'validating', endpoint: '/v1/chat/completions', request_counts: { total: 3 } });
    expect((await openai.batches.retrieve(created.id)).status).toBe('in_progress');
    const done = await openai.batches.retrieve(created.id);
    // A line that expired makes the batch "expired"; its answered lines are still in the output file.
    expect(done).toMatchObject({ status: 'expired', request_counts: { total: 3, completed: 1, failed: 2 } });
    const output = lines(await (await openai.files.content(done.output_file_id!)).text());
    expect(output).toEqual([expect.objectContaining({ custom_id: 'a', response: expect.objectContaining({ status_code: 200 }) })]);
    expect(output[0]!.response!.body.choices[0].message.content).toBe('answer to a');
    const errors = lines(await (await openai.files.content(done.error_file_id!)).text());
    expect(errors.map((e) => [e.custom_id, e.response?.status_code ?? null, e.error?.code ?? null])).toEqual([
      ['b', 500, null],
      ['c', null, 'batch_expired'],
    ]);
    expect(server.batches.counters).toEqual({ created: 1, lines: 3, files: 1, polls: 2, resultReads: 2, cancels: 0 });
    // Batch lines are answered by the handler, but are not HTTP requests of their own.
    expect(server.batches.lines.map((l) => l.batch)).toEqual([{ id: created.id, customId: 'a' }]);
  });

  it('a cancelled batch ends cancelled with every line batch_cancelled', async () => {
    server.batches.configure({ completeAfterPolls: 10 });
    const created = await openaiBatch(['a', 'b']);
    expect((await openai.batches.cancel(created.id)).status).toBe('cancelling');
    const done = await openai.batches.retrieve(created.id);
    expect(done.status).toBe('cancelled');
    expect(lines(await (await openai.files.content(done.error_file_id!)).text()).map((e) => e.error?.code)).toEqual(['batch_cancelled', 'batch_cancelled']);
  });

  it('refuses a line whose url is not the batch endpoint', async () => {
    const file = await openai.files.create({
      file: await toFile(Buffer.from(JSON.stringify({ custom_id: 'x', method: 'POST', url: '/v1/responses', body: {} })), 'in.jsonl'),
      purpose: 'batch',
    });
    await expect(openai.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' })).rejects.toMatchObject({ status: 400 });
  });
});

describe('fake Anthropic message batches', () => {
  const request = (id: string) => ({ custom_id: id, params: { model: 'claude-haiku-4-5', max_tokens: 10, messages: [{ role: 'user' as const, content: id }] } });

  it('is processing until the delay has passed, then ends with results in the configured order and shares', async () => {
    server.batches.configure({ completeAfterMs: 60, resultOrder: 'reverse', errorFraction: 0.2, expireFraction: 0.1 });
    const ids = Array.from({ length: 10 }, (_, i) => `r${i}`);
    const created = await anthropic.messages.batches.create({ requests: ids.map(request) });
    expect(created).toMatchObject({ processing_status: 'in_progress', results_url: null });
    expect((await anthropic.messages.batches.retrieve(created.id)).processing_status).toBe('in_progress');
    await new Promise((r) => setTimeout(r, 80));
    const ended = await anthropic.messages.batches.retrieve(created.id);
    expect(ended).toMatchObject({ processing_status: 'ended', request_counts: { succeeded: 7, errored: 2, expired: 1, canceled: 0, processing: 0 } });
    expect(ended.results_url).toBe(`${server.url}/v1/messages/batches/${created.id}/results`);
    const results = [];
    for await (const r of await anthropic.messages.batches.results(created.id)) results.push(r);
    expect(results.map((r) => r.custom_id)).toEqual([...ids].reverse());
    expect(results.filter((r) => r.result.type === 'succeeded')).toHaveLength(7);
  });

  it('cancel ends the batch with every request canceled', async () => {
    server.batches.configure({ completeAfterPolls: 10 });
    const created = await anthropic.messages.batches.create({ requests: [request('a')] });
    expect((await anthropic.messages.batches.cancel(created.id)).processing_status).toBe('canceling');
    expect((await anthropic.messages.batches.retrieve(created.id)).processing_status).toBe('ended');
    const results = [];
    for await (const r of await anthropic.messages.batches.results(created.id)) results.push(r.result.type);
    expect(results).toEqual(['canceled']);
    expect(server.batches.counters.cancels).toBe(1);
  });
});
