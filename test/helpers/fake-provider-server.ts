// A loopback HTTP server that speaks enough of the OpenAI (Chat Completions,
// Responses) and Anthropic (Messages, and Bedrock's /model/<id>/invoke) wire
// protocols to drive the real SDK clients. Scriptable per request: a queue of
// replies, else a handler, else a default answer. Records every request.
// It never outlives a test: unref'd, closed by the test, and closed by itself
// after a maximum lifetime.
//
// It also speaks both batch APIs (OpenAI files + batches, Anthropic message
// batches; see `FakeBatchOptions`): every line of a batch is answered, when
// the batch ends, by the same queue / handler / default answer as a normal
// request, so a scripted handler (test/helpers/analyst-fake.ts) answers
// batch lines too.
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
  /** Set on a batch line (answered when its batch ends, not an HTTP request of its own). */
  batch?: { id: string; customId: string };
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
  /** Clears recorded requests, queue and handler (and the batch state). */
  reset(): void;
  close(): Promise<void>;
  /** The batch endpoints: their settings, counters and what was submitted. */
  readonly batches: FakeBatches;
}

export interface FakeServerOptions {
  /** Closes itself after this long (default 60 s). */
  maxLifetimeMs?: number;
  /** Answer when neither queue nor handler gives one (default text "ok"). */
  defaultReply?: FakeReply;
  /** Initial settings of the batch endpoints. */
  batch?: FakeBatchOptions;
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

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export async function startFakeProviderServer(opts: FakeServerOptions = {}): Promise<FakeProviderServer> {
  const requests: RecordedRequest[] = [];
  let queue: FakeReply[] = [];
  let handler: FakeHandler | null = null;
  const pendingTimers = new Set<NodeJS.Timeout>();
  let baseUrl = '';
  /** The answer to one request (or batch line): the queue, else the handler, else the default. */
  const replyFor = async (recorded: RecordedRequest, index: number): Promise<FakeReply> =>
    queue.shift() ?? (handler ? await handler(recorded, index) : (opts.defaultReply ?? { text: 'ok' }));
  const batches = createFakeBatches({ answer: replyFor, baseUrl: () => baseUrl, options: opts.batch });

  async function respond(req: IncomingMessage, res: ServerResponse) {
    const bytes = await readBody(req);
    const rawBody = bytes.toString('utf8');
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

    // Batch endpoints answer themselves; they never take a reply from the queue or the handler.
    const batchReply = await batches.route(recorded, bytes);
    if (batchReply) {
      res.writeHead(batchReply.status, { 'content-type': batchReply.contentType ?? 'application/json', 'request-id': `req_${index}` });
      res.end(batchReply.body);
      return;
    }

    const reply: FakeReply = await replyFor(recorded, index);
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
  server.keepAliveTimeout = 65_000;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  server.unref();
  const { port } = server.address() as AddressInfo;
  baseUrl = `http://127.0.0.1:${port}`;

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
      batches.reset();
    },
    close,
    batches,
  };
}

// --- batch APIs ---------------------------------------------------------------

export interface FakeBatchOptions {
  /** Status checks a batch answers "running" before it ends (default 0: it has ended at the first check). */
  completeAfterPolls?: number;
  /** Milliseconds after creation before a batch may end (default 0). Both conditions must hold. */
  completeAfterMs?: number;
  /** custom_ids answered with an error (a 500 line) instead of an answer. */
  errorIds?: Iterable<string>;
  /** custom_ids that expire unanswered. */
  expireIds?: Iterable<string>;
  /** Share of each batch's lines that error / expire, chosen by position and evenly spread (exactly floor(n * share)). */
  errorFraction?: number;
  expireFraction?: number;
  /** Order of the result lines (Anthropic's come in any order; OpenAI's files too). Default: request order. */
  resultOrder?: 'request' | 'reverse';
  /** The next this-many status checks (either protocol) answer 503, as a provider having a bad minute. */
  statusErrors?: number;
}

export interface FakeBatchCounters {
  /** Batches created (either protocol). */
  created: number;
  /** Lines in those batches. */
  lines: number;
  /** Files uploaded (OpenAI). */
  files: number;
  /** Status checks (batches.retrieve). */
  polls: number;
  /** Downloads of results (OpenAI output/error files, Anthropic results). */
  resultReads: number;
  cancels: number;
}

export interface FakeBatch {
  id: string;
  protocol: 'openai' | 'anthropic';
  customIds: string[];
  /** Status checks so far. */
  polls: number;
  ended: boolean;
}

export interface FakeBatches {
  /** Changes the settings (merged into the current ones). */
  configure(options: FakeBatchOptions): void;
  readonly counters: FakeBatchCounters;
  /** Every batch created, in order. */
  readonly list: FakeBatch[];
  /** Every batch line answered so far, as the handler saw it (with `batch` set); its index is the handler's. */
  readonly lines: RecordedRequest[];
}

interface BatchHttpReply {
  status: number;
  body: string;
  contentType?: string;
}

interface LineIn {
  customId: string;
  /** The URL the line calls (OpenAI: its `url`; Anthropic: /v1/messages). */
  url: string;
  body: any;
}

type LineOutcome =
  | { kind: 'answer'; reply: FakeReply; protocol: WireProtocol; model: string | undefined }
  | { kind: 'error'; status: number; message: string; protocol: WireProtocol }
  | { kind: 'expired' }
  | { kind: 'canceled' };

interface BatchState extends FakeBatch {
  lineIns: LineIn[];
  createdAtMs: number;
  headers: Record<string, string>;
  cancelled: boolean;
  /** Filled when the batch ends: one outcome per line, in request order. */
  outcomes?: LineOutcome[];
  /** OpenAI: the endpoint, input file and the two result files. */
  endpoint?: string;
  inputFileId?: string;
  outputFileId?: string;
  errorFileId?: string;
}

/** `k` of the positions 0..n-1, spread evenly. */
function spread(n: number, k: number): number[] {
  return Array.from({ length: Math.min(k, n) }, (_, j) => Math.floor((j * n) / k));
}

/** How many of `n` lines a share selects: exactly floor(n * share). */
const shareOf = (n: number, share: number | undefined) => Math.floor(n * (share ?? 0) + 1e-9);

function json(status: number, body: unknown): BatchHttpReply {
  return { status, body: JSON.stringify(body) };
}

/** Parses a multipart/form-data body with the platform's own parser. */
async function formData(headers: Record<string, string>, bytes: Buffer): Promise<FormData> {
  return new Request('http://fake.invalid/', { method: 'POST', headers: { 'content-type': headers['content-type'] ?? '' }, body: bytes }).formData();
}

function createFakeBatches(init: {
  answer: (recorded: RecordedRequest, index: number) => Promise<FakeReply>;
  baseUrl: () => string;
  options?: FakeBatchOptions;
}) {
  let options: FakeBatchOptions = { ...init.options };
  const counters: FakeBatchCounters = { created: 0, lines: 0, files: 0, polls: 0, resultReads: 0, cancels: 0 };
  const list: BatchState[] = [];
  const lines: RecordedRequest[] = [];
  const files = new Map<string, { id: string; filename: string; purpose: string; content: string; createdAt: number }>();
  let seq = 0;
  const now = () => Math.floor(Date.now() / 1000);

  function addFile(filename: string, purpose: string, content: string) {
    const id = `file-fake${++seq}`;
    files.set(id, { id, filename, purpose, content, createdAt: now() });
    return files.get(id)!;
  }
  const fileObject = (f: { id: string; filename: string; purpose: string; content: string; createdAt: number }) => ({
    id: f.id,
    object: 'file',
    bytes: Buffer.byteLength(f.content),
    created_at: f.createdAt,
    filename: f.filename,
    purpose: f.purpose,
    status: 'processed',
  });

  function create(protocol: 'openai' | 'anthropic', lineIns: LineIn[], headers: Record<string, string>): BatchState {
    const id = protocol === 'openai' ? `batch_fake${++seq}` : `msgbatch_fake${++seq}`;
    const batch: BatchState = {
      id,
      protocol,
      customIds: lineIns.map((l) => l.customId),
      polls: 0,
      ended: false,
      lineIns,
      createdAtMs: Date.now(),
      headers,
      cancelled: false,
    };
    list.push(batch);
    counters.created += 1;
    counters.lines += lineIns.length;
    return batch;
  }

  /** Answers every line (once, when the batch ends) through the server's normal reply logic. */
  async function finish(batch: BatchState): Promise<void> {
    const n = batch.lineIns.length;
    const errorIds = new Set(options.errorIds ?? []);
    const expireIds = new Set(options.expireIds ?? []);
    const errorAt = new Set(spread(n, shareOf(n, options.errorFraction)));
    // Expiries are spread over the lines that do not error, so the two shares never overlap.
    const rest = [...Array(n).keys()].filter((i) => !errorAt.has(i));
    const expireAt = new Set(spread(rest.length, shareOf(n, options.expireFraction)).map((k) => rest[k]!));
    const outcomes: LineOutcome[] = [];
    for (let i = 0; i < n; i++) {
      const line = batch.lineIns[i]!;
      const { protocol } = protocolOf(line.url);
      if (batch.cancelled) outcomes.push({ kind: 'canceled' });
      else if (expireIds.has(line.customId) || expireAt.has(i)) outcomes.push({ kind: 'expired' });
      else if (errorIds.has(line.customId) || errorAt.has(i)) outcomes.push({ kind: 'error', status: 500, message: 'fake batch line error', protocol });
      else {
        const recorded: RecordedRequest = {
          method: 'POST',
          url: line.url,
          path: line.url,
          query: {},
          headers: batch.headers,
          rawBody: JSON.stringify(line.body),
          body: line.body,
          protocol,
          model: typeof line.body?.model === 'string' ? line.body.model : undefined,
          batch: { id: batch.id, customId: line.customId },
        };
        const index = lines.length;
        lines.push(recorded);
        const reply = await init.answer(recorded, index);
        if (reply.hangUp || (reply.status ?? 200) >= 400) {
          outcomes.push({ kind: 'error', status: reply.hangUp ? 500 : (reply.status as number), message: reply.error ?? `fake error ${reply.status ?? 500}`, protocol });
        } else {
          outcomes.push({ kind: 'answer', reply, protocol, model: recorded.model });
        }
      }
    }
    batch.outcomes = outcomes;
    batch.ended = true;
    if (batch.protocol === 'openai') writeOpenAIResults(batch);
  }

  /** Polls the batch: it ends once it has been checked often enough and is old enough (or was cancelled). */
  async function advance(batch: BatchState): Promise<void> {
    counters.polls += 1;
    batch.polls += 1;
    if (batch.ended) return;
    const polled = batch.polls > (options.completeAfterPolls ?? 0);
    const aged = Date.now() - batch.createdAtMs >= (options.completeAfterMs ?? 0);
    if (batch.cancelled || (polled && aged)) await finish(batch);
  }

  /** True when this status check is to fail (statusErrors counts down). */
  function takeStatusError(): boolean {
    if (!options.statusErrors) return false;
    options = { ...options, statusErrors: options.statusErrors - 1 };
    return true;
  }

  const ordered = <T>(items: T[]): T[] => (options.resultOrder === 'reverse' ? [...items].reverse() : items);

  /** The body of an answered line: the reply's JSON, its raw text (possibly broken), or the protocol's answer. */
  function answerText(o: Extract<LineOutcome, { kind: 'answer' }>): string {
    if (o.reply.raw !== undefined) return o.reply.raw;
    if (o.reply.json !== undefined) return JSON.stringify(o.reply.json);
    return JSON.stringify(answerBody(o.protocol, o.model, o.reply));
  }

  // --- OpenAI -----------------------------------------------------------------

  function writeOpenAIResults(batch: BatchState) {
    const output: string[] = [];
    const errors: string[] = [];
    batch.outcomes!.forEach((o, i) => {
      const head = `{"id":"batch_req_${batch.id}_${i}","custom_id":${JSON.stringify(batch.lineIns[i]!.customId)}`;
      if (o.kind === 'answer') output.push(`${head},"response":{"status_code":200,"request_id":"req_line_${i}","body":${answerText(o)}},"error":null}`);
      else if (o.kind === 'error') {
        errors.push(`${head},"response":{"status_code":${o.status},"request_id":"req_line_${i}","body":${JSON.stringify(errorBody(o.protocol, o.status, o.message))}},"error":null}`);
      } else {
        const code = o.kind === 'expired' ? 'batch_expired' : 'batch_cancelled';
        const message = o.kind === 'expired' ? 'This request could not be executed before the completion window expired.' : 'The batch was cancelled.';
        errors.push(`${head},"response":null,"error":${JSON.stringify({ code, message })}}`);
      }
    });
    if (output.length) batch.outputFileId = addFile(`${batch.id}_output.jsonl`, 'batch_output', ordered(output).join('\n') + '\n').id;
    if (errors.length) batch.errorFileId = addFile(`${batch.id}_error.jsonl`, 'batch_output', ordered(errors).join('\n') + '\n').id;
  }

  function openaiBatchObject(batch: BatchState) {
    const outcomes = batch.outcomes ?? [];
    const expired = outcomes.some((o) => o.kind === 'expired');
    const status = !batch.ended ? (batch.cancelled ? 'cancelling' : batch.polls === 0 ? 'validating' : 'in_progress') : batch.cancelled ? 'cancelled' : expired ? 'expired' : 'completed';
    const created = Math.floor(batch.createdAtMs / 1000);
    return {
      id: batch.id,
      object: 'batch',
      endpoint: batch.endpoint,
      input_file_id: batch.inputFileId,
      completion_window: '24h',
      status,
      created_at: created,
      expires_at: created + 86_400,
      output_file_id: batch.outputFileId ?? null,
      error_file_id: batch.errorFileId ?? null,
      errors: null,
      metadata: null,
      request_counts: {
        total: batch.lineIns.length,
        completed: outcomes.filter((o) => o.kind === 'answer').length,
        failed: outcomes.filter((o) => o.kind !== 'answer').length,
      },
    };
  }

  async function openaiRoute(r: RecordedRequest, bytes: Buffer): Promise<BatchHttpReply | undefined> {
    if (r.method === 'POST' && r.path === '/v1/files') {
      const form = await formData(r.headers, bytes);
      const file = form.get('file');
      if (!(file instanceof Blob)) return json(400, { error: { message: 'no file in the upload' } });
      counters.files += 1;
      const name = file instanceof File ? file.name : 'upload.jsonl';
      return json(200, fileObject(addFile(name, String(form.get('purpose') ?? ''), await file.text())));
    }
    const content = /^\/v1\/files\/([^/]+)\/content$/.exec(r.path);
    if (r.method === 'GET' && content) {
      const file = files.get(content[1]!);
      if (!file) return json(404, { error: { message: `no file ${content[1]}` } });
      if (file.purpose === 'batch_output') counters.resultReads += 1;
      return { status: 200, body: file.content, contentType: 'application/octet-stream' };
    }
    if (r.method === 'POST' && r.path === '/v1/batches') {
      const input = files.get(String(r.body?.input_file_id));
      if (!input) return json(400, { error: { message: 'unknown input_file_id' } });
      const lineIns: LineIn[] = [];
      for (const text of input.content.split('\n')) {
        if (text.trim() === '') continue;
        const l = JSON.parse(text) as { custom_id: string; url: string; body: unknown };
        if (l.url !== r.body?.endpoint) return json(400, { error: { message: `line ${l.custom_id} calls ${l.url}, the batch ${r.body?.endpoint}` } });
        lineIns.push({ customId: l.custom_id, url: l.url, body: l.body });
      }
      if (new Set(lineIns.map((l) => l.customId)).size !== lineIns.length) return json(400, { error: { message: 'duplicate custom_id' } });
      const batch = create('openai', lineIns, r.headers);
      batch.endpoint = r.body.endpoint;
      batch.inputFileId = input.id;
      return json(200, openaiBatchObject(batch));
    }
    const one = /^\/v1\/batches\/([^/]+)(\/cancel)?$/.exec(r.path);
    if (one) {
      const batch = list.find((b) => b.id === one[1] && b.protocol === 'openai');
      if (!batch) return json(404, { error: { message: `no batch ${one[1]}` } });
      if (r.method === 'POST' && one[2]) {
        counters.cancels += 1;
        if (!batch.ended) batch.cancelled = true;
        return json(200, openaiBatchObject(batch));
      }
      if (r.method === 'GET' && !one[2]) {
        if (takeStatusError()) return json(503, errorBody('chat', 503, 'fake batch status unavailable'));
        await advance(batch);
        return json(200, openaiBatchObject(batch));
      }
    }
    return undefined;
  }

  // --- Anthropic ---------------------------------------------------------------

  function anthropicBatchObject(batch: BatchState) {
    const outcomes = batch.outcomes ?? [];
    const count = (kind: LineOutcome['kind']) => outcomes.filter((o) => o.kind === kind).length;
    const created = new Date(batch.createdAtMs);
    return {
      id: batch.id,
      type: 'message_batch',
      processing_status: batch.ended ? 'ended' : batch.cancelled ? 'canceling' : 'in_progress',
      request_counts: {
        processing: batch.ended ? 0 : batch.lineIns.length,
        succeeded: count('answer'),
        errored: count('error'),
        canceled: count('canceled'),
        expired: count('expired'),
      },
      created_at: created.toISOString(),
      expires_at: new Date(batch.createdAtMs + 86_400_000).toISOString(),
      ended_at: batch.ended ? new Date().toISOString() : null,
      cancel_initiated_at: batch.cancelled ? created.toISOString() : null,
      archived_at: null,
      results_url: batch.ended ? `${init.baseUrl()}/v1/messages/batches/${batch.id}/results` : null,
    };
  }

  function anthropicResults(batch: BatchState): string {
    const out = batch.outcomes!.map((o, i) => {
      const head = `{"custom_id":${JSON.stringify(batch.lineIns[i]!.customId)},"result":`;
      if (o.kind === 'answer') return `${head}{"type":"succeeded","message":${answerText(o)}}}`;
      if (o.kind === 'error') {
        return `${head}${JSON.stringify({ type: 'errored', error: { ...(errorBody('messages', o.status, o.message) as object), request_id: null } })}}`;
      }
      return `${head}{"type":"${o.kind}"}}`;
    });
    return ordered(out).join('\n') + '\n';
  }

  async function anthropicRoute(r: RecordedRequest): Promise<BatchHttpReply | undefined> {
    if (r.method === 'POST' && r.path === '/v1/messages/batches') {
      const requests = r.body?.requests;
      if (!Array.isArray(requests) || requests.length === 0) return json(400, errorBody('messages', 400, 'requests: at least one request is required'));
      const lineIns: LineIn[] = requests.map((q: { custom_id: string; params: unknown }) => ({ customId: q.custom_id, url: '/v1/messages', body: q.params }));
      if (new Set(lineIns.map((l) => l.customId)).size !== lineIns.length) return json(400, errorBody('messages', 400, 'duplicate custom_id'));
      return json(200, anthropicBatchObject(create('anthropic', lineIns, r.headers)));
    }
    const one = /^\/v1\/messages\/batches\/([^/]+)(\/cancel|\/results)?$/.exec(r.path);
    if (!one) return undefined;
    const batch = list.find((b) => b.id === one[1] && b.protocol === 'anthropic');
    if (!batch) return json(404, errorBody('messages', 404, `no batch ${one[1]}`));
    if (r.method === 'POST' && one[2] === '/cancel') {
      counters.cancels += 1;
      if (!batch.ended) batch.cancelled = true;
      return json(200, anthropicBatchObject(batch));
    }
    if (r.method === 'GET' && one[2] === '/results') {
      if (!batch.ended) return json(400, errorBody('messages', 400, 'the batch is still processing'));
      counters.resultReads += 1;
      return { status: 200, body: anthropicResults(batch), contentType: 'application/binary' };
    }
    if (r.method === 'GET' && !one[2]) {
      if (takeStatusError()) return json(503, errorBody('messages', 503, 'fake batch status unavailable'));
      await advance(batch);
      return json(200, anthropicBatchObject(batch));
    }
    return undefined;
  }

  return {
    configure(more: FakeBatchOptions) {
      options = { ...options, ...more };
    },
    counters,
    list: list as FakeBatch[],
    lines,
    /** The reply of a batch endpoint, or undefined when the request is not for one. */
    async route(r: RecordedRequest, bytes: Buffer): Promise<BatchHttpReply | undefined> {
      if (r.path.startsWith('/v1/messages/batches')) return anthropicRoute(r);
      if (r.path.startsWith('/v1/files') || r.path.startsWith('/v1/batches')) return openaiRoute(r, bytes);
      return undefined;
    },
    reset() {
      options = { ...init.options };
      for (const key of Object.keys(counters) as (keyof FakeBatchCounters)[]) counters[key] = 0;
      list.length = 0;
      lines.length = 0;
      files.clear();
    },
  };
}
