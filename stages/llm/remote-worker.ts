// The network side of the shared response store (remote-store.ts), in a
// worker thread so that the store can stay synchronous: the main thread posts
// a request and blocks on a shared counter (Atomics.wait, bounded) until this
// worker has put the reply on the reply port. Writes run here in the
// background, a few at a time, and keep going while the main thread is busy
// or blocked. The token lives in this thread's memory and in the
// Authorization header of each request, nowhere else.
import { parentPort, workerData } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import pLimit from 'p-limit';

/**
 * A reply header of the entry point's proxy (scripts/shared-cache-proxy.ts):
 * the server stopped answering during this invocation and the entry point has
 * already said so, so the store turns off without a second warning.
 */
export const OFF_HEADER = 'x-meta-analysis-shared-cache-off';
const TURNED_OFF = 'the entry point turned the shared cache off';

export interface WorkerInit {
  /** Server base URL, without a trailing slash. */
  url: string;
  token: string | null;
  userAgent: string;
  writeConcurrency: number;
  /** Per write (a read carries its own). */
  writeTimeoutMs: number;
  /** After this many writes in a row fail (network, 5xx), the rest are dropped. */
  maxWriteFailures: number;
  /** Incremented after every reply, for Atomics.wait in the main thread. */
  signal: Int32Array;
  reply: MessagePort;
}

export type WorkerRequest =
  | { op: 'get'; id: number; key: string; timeoutMs: number; maxBytes: number }
  | { op: 'put'; key: string; body: string }
  | { op: 'flush'; id: number; timeoutMs: number };

/** `quiet`: the entry point's proxy says the server is off for this invocation (already warned about). */
export type GetReply = { id: number; status: number; body: Uint8Array | null } | { id: number; error: string; quiet?: boolean };

/** What happened to the writes since the previous flush. */
export interface WriteOutcomes {
  /** 2xx: stored. */
  written: number;
  /** 409: the server already has the key (and cannot overwrite it). */
  exists: number;
  /** 403: the token may read, not write (a supported mode). */
  refused: number;
  /** Network errors, timeouts, other statuses. */
  failed: number;
  /** Not sent: writing had stopped (refused, unauthorized or failing). */
  dropped: number;
  /** Writes not finished when the flush stopped waiting. */
  pending: number;
  /** Why writing stopped, if it did. */
  stopped: string | null;
  /** The first failure, for the warning. */
  firstFailure: string | null;
  /** The entry point's proxy turned the shared cache off (it has warned; the store says nothing more). */
  quiet: boolean;
}

export type FlushReply = { id: number; outcomes: WriteOutcomes };

/** A short reason for a failed fetch: the cause's code when there is one (ECONNREFUSED, timeout). */
export function describeFetchError(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timed out';
  const cause = e?.cause?.code ?? e?.cause?.message;
  return cause ? `${e?.message ?? 'request failed'} (${cause})` : (e?.message ?? String(err));
}

function start(init: WorkerInit): void {
  const auth: Record<string, string> = init.token ? { authorization: `Bearer ${init.token}` } : {};
  const limit = pLimit(Math.max(1, init.writeConcurrency));
  const inFlight = new Set<Promise<void>>();
  let outcomes = fresh();
  let stopped: string | null = null;
  let failuresInARow = 0;

  function fresh(): WriteOutcomes {
    return { written: 0, exists: 0, refused: 0, failed: 0, dropped: 0, pending: 0, stopped: null, firstFailure: null, quiet: false };
  }
  function send(msg: GetReply | FlushReply): void {
    init.reply.postMessage(msg);
    Atomics.add(init.signal, 0, 1);
    Atomics.notify(init.signal, 0);
  }
  const urlOf = (key: string) => `${init.url}/v1/cache/${encodeURIComponent(key)}`;

  async function get(msg: Extract<WorkerRequest, { op: 'get' }>): Promise<void> {
    try {
      const res = await fetch(urlOf(msg.key), {
        headers: { ...auth, accept: 'application/octet-stream', 'user-agent': init.userAgent },
        signal: AbortSignal.timeout(msg.timeoutMs),
      });
      if (res.headers.has(OFF_HEADER)) {
        await res.arrayBuffer().catch(() => undefined);
        send({ id: msg.id, error: TURNED_OFF, quiet: true });
        return;
      }
      if (res.status !== 200) {
        await res.arrayBuffer().catch(() => undefined);
        send({ id: msg.id, status: res.status, body: null });
        return;
      }
      const declared = Number(res.headers.get('content-length') ?? '0');
      if (declared > msg.maxBytes) {
        await res.body?.cancel().catch(() => undefined);
        send({ id: msg.id, status: 200, body: new Uint8Array(0) });
        return;
      }
      send({ id: msg.id, status: 200, body: new Uint8Array(await res.arrayBuffer()) });
    } catch (err) {
      send({ id: msg.id, error: describeFetchError(err) });
    }
  }

  function failed(reason: string): void {
    outcomes.failed += 1;
    outcomes.firstFailure ??= reason;
    failuresInARow += 1;
    if (failuresInARow >= init.maxWriteFailures) stopped ??= `${failuresInARow} writes in a row failed (${reason})`;
  }

  async function put(key: string, body: string): Promise<void> {
    if (stopped) {
      outcomes.dropped += 1;
      return;
    }
    try {
      const bytes = Buffer.from(body, 'utf8');
      const res = await fetch(urlOf(key), {
        method: 'PUT',
        headers: { ...auth, 'content-type': 'application/octet-stream', 'content-length': String(bytes.length), 'user-agent': init.userAgent },
        body: bytes,
        signal: AbortSignal.timeout(init.writeTimeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.headers.has(OFF_HEADER)) {
        outcomes.dropped += 1;
        stopped ??= TURNED_OFF;
      } else if (res.status >= 200 && res.status < 300) {
        outcomes.written += 1;
        failuresInARow = 0;
      } else if (res.status === 409) {
        outcomes.exists += 1;
        failuresInARow = 0;
      } else if (res.status === 403) {
        outcomes.refused += 1;
        stopped ??= 'read-only token (the server answers 403 to writes)';
      } else if (res.status === 401) {
        failed('HTTP 401: the server does not accept the token');
        stopped ??= 'the server does not accept the token (401)';
      } else {
        failed(`HTTP ${res.status}`);
      }
    } catch (err) {
      failed(describeFetchError(err));
    }
  }

  async function flush(msg: Extract<WorkerRequest, { op: 'flush' }>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const waited = new Promise<void>((done) => (timer = setTimeout(done, msg.timeoutMs)));
    await Promise.race([Promise.allSettled([...inFlight]), waited]);
    clearTimeout(timer);
    const out = { ...outcomes, pending: inFlight.size, stopped, quiet: stopped === TURNED_OFF };
    outcomes = fresh();
    send({ id: msg.id, outcomes: out });
  }

  parentPort?.on('message', (msg: WorkerRequest) => {
    if (msg.op === 'get') void get(msg);
    else if (msg.op === 'flush') void flush(msg);
    else if (msg.op === 'put') {
      const p: Promise<void> = limit(() => put(msg.key, msg.body)).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
  });
}

if (parentPort && workerData) start(workerData as WorkerInit);
