// A loopback HTTP server that speaks enough of the OpenAI (Chat Completions,
// Responses) and Anthropic (Messages, and Bedrock's /model/<id>/invoke) wire
// protocols to drive the real SDK clients. Scriptable per request: a queue of
// replies, else a handler, else a default answer. Records every request.
// It never outlives a test: unref'd, closed by the test, and closed by itself
// after a maximum lifetime.
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type WireProtocol = 'chat' | 'responses' | 'messages' | 'bedrock' | 'unknown';

export interface RecordedRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  /** Decoded path without the query. */
  path: string;
  query: Record<string, string>;
  /** Lower-cased header names. */
  headers: Record<string, string>;
  rawBody: string;
  /** The parsed JSON body (undefined when not JSON). */
  body: any;
  protocol: WireProtocol;
  /** Model from the body, or from the Bedrock path. */
  model: string | undefined;
}

export interface FakeReply {
  /** HTTP status (default 200). */
  status?: number;
  headers?: Record<string, string>;
  /** The model's answer, wrapped in the protocol's response shape. */
  text?: string;
  usage?: { input?: number; output?: number };
  /** Finish/stop reason for the answer (default: the protocol's normal stop). */
  finishReason?: string;
  /** Send this JSON body as it is. */
  json?: unknown;
  /** Send this body as it is, with a JSON content type (e.g. broken JSON). */
  raw?: string;
  /** Message of the protocol's error body (used when status >= 400 and no json/raw). */
  error?: string;
  /** Wait this long before answering. */
  delayMs?: number;
  /** Destroy the connection instead of answering. */
  hangUp?: boolean;
}

export type FakeHandler = (req: RecordedRequest, index: number) => FakeReply | Promise<FakeReply>;

export interface FakeProviderServer {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Queues replies, used in order before the handler. */
  reply(...replies: FakeReply[]): void;
  /** Answers requests the queue does not cover (null: the default answer). */
  handle(handler: FakeHandler | null): void;
  /** Clears recorded requests, queue and handler. */
  reset(): void;
  close(): Promise<void>;
}

export interface FakeServerOptions {
  /** Closes itself after this long (default 60 s). */
  maxLifetimeMs?: number;
  /** Answer when neither queue nor handler gives one (default text "ok"). */
  defaultReply?: FakeReply;
}

function protocolOf(path: string): { protocol: WireProtocol; pathModel?: string } {
  const bedrock = /\/model\/([^/]+)\/invoke$/.exec(path);
  if (bedrock) return { protocol: 'bedrock', pathModel: decodeURIComponent(bedrock[1]!) };
  if (path.endsWith('/chat/completions')) return { protocol: 'chat' };
  if (path.endsWith('/responses')) return { protocol: 'responses' };
  if (path.endsWith('/messages')) return { protocol: 'messages' };
  return { protocol: 'unknown' };
}

let ids = 0;

function answerBody(protocol: WireProtocol, model: string | undefined, r: FakeReply): unknown {
  const text = r.text ?? 'ok';
  const input = r.usage?.input ?? 10;
  const output = r.usage?.output ?? 5;
  const id = `fake_${++ids}`;
  switch (protocol) {
    case 'chat':
    case 'unknown':
      return {
        id: `chatcmpl-${id}`,
        object: 'chat.completion',
        created: 1_700_000_000,
        model: model ?? 'fake',
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content: text, refusal: null },
            logprobs: null,
            finish_reason: r.finishReason ?? 'stop',
          },
        ],
        usage: { prompt_tokens: input, completion_tokens: output, total_tokens: input + output },
      };
    case 'responses':
      return {
        id: `resp_${id}`,
        object: 'response',
        created_at: 1_700_000_000,
        status: r.finishReason ?? 'completed',
        model: model ?? 'fake',
        output: [
          {
            type: 'message',
            id: `msg_${id}`,
            status: 'completed',
            role: 'assistant',
            content: [{ type: 'output_text', text, annotations: [] }],
          },
        ],
        usage: { input_tokens: input, output_tokens: output, total_tokens: input + output },
      };
    case 'messages':
    case 'bedrock':
      return {
        id: `msg_${id}`,
        type: 'message',
        role: 'assistant',
        model: model ?? 'fake',
        content: [{ type: 'text', text }],
        stop_reason: r.finishReason ?? 'end_turn',
        stop_sequence: null,
        usage: { input_tokens: input, output_tokens: output },
      };
  }
}

function errorBody(protocol: WireProtocol, status: number, message: string): unknown {
  if (protocol === 'messages' || protocol === 'bedrock') {
    return { type: 'error', error: { type: status === 429 ? 'rate_limit_error' : 'api_error', message } };
  }
  return { error: { message, type: status === 429 ? 'rate_limit_error' : 'server_error', code: null, param: null } };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startFakeProviderServer(opts: FakeServerOptions = {}): Promise<FakeProviderServer> {
  const requests: RecordedRequest[] = [];
  let queue: FakeReply[] = [];
  let handler: FakeHandler | null = null;
  const pendingTimers = new Set<NodeJS.Timeout>();

  async function respond(req: IncomingMessage, res: ServerResponse) {
    const rawBody = await readBody(req);
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = decodeURIComponent(url.pathname);
    const { protocol, pathModel } = protocolOf(url.pathname);
    let body: any;
    try {
      body = rawBody ? JSON.parse(rawBody) : undefined;
    } catch {
      body = undefined;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : (v ?? '');
    const recorded: RecordedRequest = {
      method: req.method ?? 'GET',
      url: req.url ?? '/',
      path,
      query: Object.fromEntries(url.searchParams),
      headers,
      rawBody,
      body,
      protocol,
      model: pathModel ?? (typeof body?.model === 'string' ? body.model : undefined),
    };
    const index = requests.length;
    requests.push(recorded);

    const reply: FakeReply = queue.shift() ?? (handler ? await handler(recorded, index) : (opts.defaultReply ?? { text: 'ok' }));
    if (reply.delayMs) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          pendingTimers.delete(t);
          resolve();
        }, reply.delayMs);
        pendingTimers.add(t);
        res.on('close', () => {
          clearTimeout(t);
          pendingTimers.delete(t);
          resolve();
        });
      });
    }
    if (res.destroyed || res.writableEnded) return;
    if (reply.hangUp) {
      req.socket.destroy();
      return;
    }
    const status = reply.status ?? 200;
    let payload: string;
    if (reply.raw !== undefined) payload = reply.raw;
    else if (reply.json !== undefined) payload = JSON.stringify(reply.json);
    else if (status >= 400) payload = JSON.stringify(errorBody(protocol, status, reply.error ?? `fake error ${status}`));
    else payload = JSON.stringify(answerBody(protocol, recorded.model, reply));
    res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_${index}`, ...reply.headers });
    res.end(payload);
  }

  const server = createServer((req, res) => {
    respond(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `fake server failure: ${(err as Error).message}` } }));
    });
  });
  server.keepAliveTimeout = 1000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  server.unref();
  const { port } = server.address() as AddressInfo;

  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= new Promise<void>((resolve) => {
      clearTimeout(lifetime);
      for (const t of pendingTimers) clearTimeout(t);
      pendingTimers.clear();
      server.close(() => resolve());
      server.closeAllConnections();
    });
    return closed;
  };
  const lifetime = setTimeout(() => void close(), opts.maxLifetimeMs ?? 60_000);
  lifetime.unref();

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    reply: (...replies) => {
      queue.push(...replies);
    },
    handle: (h) => {
      handler = h;
    },
    reset: () => {
      requests.length = 0;
      queue = [];
      handler = null;
    },
    close,
  };
}
