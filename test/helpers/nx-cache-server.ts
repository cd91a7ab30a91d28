// A loopback server implementing Nx's self-hosted remote cache specification
// (OpenAPI "Nx custom remote cache specification", Nx >= 20.8), the way the
// maintained servers do, for end-to-end tests of the team cache:
//   GET /v1/cache/{hash}  200 octet-stream | 404 miss | 401 | 403
//   PUT /v1/cache/{hash}  200 stored | 400 no Content-Length | 401 | 403 read-only token | 409 exists
//   Authorization: Bearer <token>; keys [A-Za-z0-9_-], at most 128 characters (else 400).
// It stores bodies as opaque bytes (Nx's gzip tars and our llm-* entries alike)
// and can be told to misbehave (answer 500, be slow, answer PUT with 202, stop
// answering, serve damaged or swapped task tarballs).
// It never outlives a test: unref'd, closed by the test, and closed by itself
// after a maximum lifetime. It logs nothing and records no token, only which
// kind of token was used.
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type TokenRole = 'read-write' | 'read-only' | 'none' | 'unknown';

export interface CacheRequest {
  method: string;
  key: string;
  role: TokenRole;
  status: number;
  /** Body bytes received (PUT). */
  bytes: number;
  /** The User-Agent header ('' when none). */
  agent: string;
}

export type Misbehaviour =
  | { kind: 'none' }
  /** Every request answered 500. */
  | { kind: 'error500' }
  /** Every request waits this long before it is answered normally. */
  | { kind: 'slow'; delayMs: number }
  /** PUT answered 202 (what some servers do, as an older version of the spec said) instead of 200. */
  | { kind: 'put202' }
  /** PUT answered 500 (reads work). */
  | { kind: 'put500' }
  /** Answers this many more requests normally, then 500 to every request (a server failing during a run). */
  | { kind: 'failAfter'; requests: number }
  /** Answers this many more requests normally, then never answers (the connection stays open until the server closes). */
  | { kind: 'hangAfter'; requests: number }
  /**
   * GET of a task entry (Nx's decimal hashes) answers 200 with: `corrupt`, the stored
   * bytes with the middle overwritten; `truncate`, their first half; `swap`, another
   * task entry's bytes. Everything else is answered normally.
   */
  | { kind: 'tarballs'; how: 'corrupt' | 'truncate' | 'swap' };

export interface NxCacheServer {
  /** http://127.0.0.1:<port> */
  readonly url: string;
  readonly requests: CacheRequest[];
  /** Stored bodies by key (tests may read, replace or delete entries). */
  readonly entries: Map<string, Buffer>;
  misbehave(m: Misbehaviour): void;
  /** Clears the recorded requests (not the entries). */
  clearRequests(): void;
  close(): Promise<void>;
}

export interface NxCacheServerOptions {
  readWriteTokens: string[];
  readOnlyTokens?: string[];
  /** Closes itself after this long (default 120 s). */
  maxLifetimeMs?: number;
  /** Port to listen on (default: any free port); a test reuses a port to bring a "down" server back. */
  port?: number;
}

const KEY = /^[A-Za-z0-9_-]{1,128}$/;

export async function startNxCacheServer(opts: NxCacheServerOptions): Promise<NxCacheServer> {
  const rw = new Set(opts.readWriteTokens);
  const ro = new Set(opts.readOnlyTokens ?? []);
  const requests: CacheRequest[] = [];
  const entries = new Map<string, Buffer>();
  let mode: Misbehaviour = { kind: 'none' };

  const roleOf = (req: IncomingMessage): TokenRole => {
    const auth = req.headers['authorization'];
    if (auth === undefined) return 'none';
    const m = /^Bearer (.+)$/.exec(auth);
    if (!m) return 'unknown';
    if (rw.has(m[1]!)) return 'read-write';
    if (ro.has(m[1]!)) return 'read-only';
    return 'unknown';
  };

  const readBody = (req: IncomingMessage) =>
    new Promise<Buffer>((done, fail) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => done(Buffer.concat(chunks)));
      req.on('error', fail);
    });

  function damage(key: string, body: Buffer, how: 'corrupt' | 'truncate' | 'swap'): Buffer {
    if (how === 'truncate') return body.subarray(0, body.length >> 1);
    if (how === 'corrupt') {
      const out = Buffer.from(body);
      out.fill(0x5a, out.length >> 2, (out.length >> 2) + Math.max(16, out.length >> 3));
      return out;
    }
    const others = [...entries.keys()].filter((k) => /^\d+$/.test(k) && k !== key).sort();
    return others.length ? (entries.get(others[0] as string) as Buffer) : body;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? '';
    const m = /^\/v1\/cache\/([^/?]*)$/.exec(req.url ?? '');
    const key = m ? decodeURIComponent(m[1]!) : '';
    const role = roleOf(req);
    // The whole body is read first, as a server that answers after the upload does.
    const body = method === 'PUT' ? await readBody(req) : Buffer.alloc(0);
    const answer = (status: number, payload?: Buffer | string, type = 'text/plain') => {
      requests.push({ method, key, role, status, bytes: body.length, agent: String(req.headers['user-agent'] ?? '') });
      res.writeHead(status, payload === undefined ? {} : { 'content-type': type });
      res.end(payload);
    };
    const current = mode;
    if (current.kind === 'slow') await new Promise((r) => setTimeout(r, current.delayMs));
    let failing = current.kind === 'error500';
    if (current.kind === 'failAfter') {
      if (current.requests > 0) current.requests -= 1;
      else failing = true;
    }
    if (failing) return answer(500, 'internal error (test server told to fail)');
    if (current.kind === 'hangAfter') {
      if (current.requests > 0) current.requests -= 1;
      else {
        requests.push({ method, key, role, status: 0, bytes: body.length, agent: String(req.headers['user-agent'] ?? '') });
        return new Promise<void>((done) => res.on('close', () => done()));
      }
    }
    if (!m || (method !== 'GET' && method !== 'PUT')) return answer(404, 'not found');
    if (!KEY.test(key)) return answer(400, 'invalid hash');
    if (role === 'none' || role === 'unknown') return answer(401, 'missing or invalid authentication token');
    if (method === 'GET') {
      const hit = entries.get(key);
      if (hit && current.kind === 'tarballs' && /^\d+$/.test(key)) return answer(200, damage(key, hit, current.how), 'application/octet-stream');
      return hit ? answer(200, hit, 'application/octet-stream') : answer(404, 'not found');
    }
    if (req.headers['content-length'] === undefined) return answer(400, 'missing Content-Length');
    if (role === 'read-only') return answer(403, 'read-only token');
    if (current.kind === 'put500') return answer(500, 'internal error (test server told to fail writes)');
    if (entries.has(key)) return answer(409, 'cannot override an existing record');
    entries.set(key, body);
    return answer(current.kind === 'put202' ? 202 : 200);
  }

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500);
      res.end();
    });
  });
  await new Promise<void>((ready, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, '127.0.0.1', () => ready());
  });
  server.unref();
  const { port } = server.address() as AddressInfo;
  let closed: Promise<void> | null = null;
  const close = () => {
    closed ??= new Promise<void>((done) => {
      clearTimeout(lifetime);
      server.close(() => done());
      server.closeAllConnections();
    });
    return closed;
  };
  const lifetime = setTimeout(() => void close(), opts.maxLifetimeMs ?? 120_000);
  lifetime.unref();

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    entries,
    misbehave: (m) => {
      mode = { ...m };
    },
    clearRequests: () => {
      requests.length = 0;
    },
    close,
  };
}

// ---------------------------------------------------------------------------
// The same server in a worker thread, for tests whose own thread blocks: the
// shared response store waits for its reads with Atomics.wait, which would
// stop a server running in the same thread.

export interface NxCacheServerThread {
  readonly url: string;
  requests(): Promise<CacheRequest[]>;
  entries(): Promise<Map<string, Buffer>>;
  setEntry(key: string, body: Buffer | string | null): Promise<void>;
  misbehave(m: Misbehaviour): Promise<void>;
  clearRequests(): Promise<void>;
  close(): Promise<void>;
}

type Control =
  | { op: 'requests' }
  | { op: 'entries' }
  | { op: 'set'; key: string; body: Uint8Array | null }
  | { op: 'misbehave'; m: Misbehaviour }
  | { op: 'clear' }
  | { op: 'close' };

export async function startNxCacheServerThread(opts: NxCacheServerOptions): Promise<NxCacheServerThread> {
  const { Worker } = await import('node:worker_threads');
  const worker = new Worker(new URL(import.meta.url), { workerData: { nxCacheServer: opts } });
  worker.unref();
  let seq = 0;
  const waiting = new Map<number, (v: unknown) => void>();
  worker.on('message', (m: { id: number; value: unknown }) => {
    waiting.get(m.id)?.(m.value);
    waiting.delete(m.id);
  });
  const ask = <T,>(c: Control | { op: 'url' }): Promise<T> =>
    new Promise<T>((done, fail) => {
      const id = ++seq;
      const timer = setTimeout(() => fail(new Error(`nx cache server thread: no answer to ${c.op}`)), 10_000);
      timer.unref();
      waiting.set(id, (v) => {
        clearTimeout(timer);
        done(v as T);
      });
      worker.postMessage({ id, control: c });
    });
  const url = await ask<string>({ op: 'url' });
  let closed: Promise<void> | null = null;
  return {
    url,
    requests: () => ask<CacheRequest[]>({ op: 'requests' }),
    entries: async () => new Map((await ask<[string, Uint8Array][]>({ op: 'entries' })).map(([k, v]) => [k, Buffer.from(v)])),
    setEntry: (key, body) => ask<void>({ op: 'set', key, body: body === null ? null : Buffer.from(body) }),
    misbehave: (m) => ask<void>({ op: 'misbehave', m }),
    clearRequests: () => ask<void>({ op: 'clear' }),
    close: () => (closed ??= ask<void>({ op: 'close' }).then(() => worker.terminate()).then(() => undefined)),
  };
}

async function serveInThisThread(): Promise<void> {
  const { parentPort, workerData } = await import('node:worker_threads');
  const opts = (workerData as { nxCacheServer?: NxCacheServerOptions } | null)?.nxCacheServer;
  if (!parentPort || !opts) return;
  const port = parentPort;
  const server = await startNxCacheServer(opts);
  port.on('message', async ({ id, control }: { id: number; control: Control | { op: 'url' } }) => {
    let value: unknown;
    switch (control.op) {
      case 'url': value = server.url; break;
      case 'requests': value = [...server.requests]; break;
      case 'entries': value = [...server.entries.entries()].map(([k, v]) => [k, new Uint8Array(v)]); break;
      case 'set':
        if (control.body === null) server.entries.delete(control.key);
        else server.entries.set(control.key, Buffer.from(control.body));
        break;
      case 'misbehave': server.misbehave(control.m); break;
      case 'clear': server.clearRequests(); break;
      case 'close': await server.close(); break;
    }
    port.postMessage({ id, value });
  });
}

void serveInThisThread();
