// The team's shared response store: the same server as Nx's self-hosted
// remote cache (NX_SELF_HOSTED_REMOTE_CACHE_SERVER, with the same token,
// NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN), spoken to with the same protocol
// (GET/PUT {server}/v1/cache/{key}, Authorization: Bearer <token>), under keys
// of our own: `llm-<sha256 of the canonical request>` (68 characters of
// [a-z0-9-], which every server accepts; Nx's own keys are decimal task
// hashes, so it never asks for these and we never ask for its).
//
// Layered after the local store and the answers carried in a stage's output
// (carried.ts), for LLM answers only:
// - a lookup the local layers miss is one GET, bounded by a timeout (5 s);
//   a hit is verified (the key, the request it carries, a digest of the
//   answer) and copied into the local store;
// - an entry that fails verification cannot block the team: the server never
//   overwrites a key (409), so a damaged `llm-<h>` is followed by generations
//   `llm-<h>-g1` … `-g3`. A reader tries them in order until one verifies or
//   one is missing (a miss); a writer that met a damaged entry writes the
//   first missing generation. So a damaged entry costs the first teammate who
//   meets it one answer, and everyone after reads the replacement (one more
//   GET). Only when every generation is damaged does the answer stay local;
// - an answer bought in this run is written in the background (a few writes
//   at a time, in a worker thread), and the stage waits for them, bounded,
//   when it ends (flush);
// - a server that is down, slow or failing, or a token it refuses, turns the
//   shared store off for the rest of the process with one warning: the stage
//   goes on with the local store. A read-only token (writes answered 403) is
//   a supported mode: answers are read, and kept locally.
// Nothing here ever fails a stage. The token goes into the Authorization
// header and nowhere else (not in an entry, a key, a message or a log).
//
// Why a worker and Atomics.wait: the store interface is synchronous (the LLM
// client and the offline analyzer look answers up synchronously), so a remote
// lookup blocks the calling thread for at most the timeout while the worker
// does the request.
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import { canonicalJson, requestHash, sha256 } from './store.ts';
import type { StoredAnswer } from './store.ts';
import { endpointUrl } from './endpoint-url.ts';
import type { FlushReply, GetReply, WorkerInit, WorkerRequest, WriteOutcomes } from './remote-worker.ts';
export { OFF_HEADER } from './remote-worker.ts';

export const SERVER_ENV = 'NX_SELF_HOSTED_REMOTE_CACHE_SERVER';
export const TOKEN_ENV = 'NX_SELF_HOSTED_REMOTE_CACHE_ACCESS_TOKEN';
/** `off` (or false, 0, no): keep answers local even when the remote cache is configured. */
export const REMOTE_STORE_ENV = 'META_ANALYSIS_REMOTE_STORE';
/** Milliseconds a remote read (and the health check) may take (default 5000). */
export const REMOTE_TIMEOUT_ENV = 'META_ANALYSIS_REMOTE_TIMEOUT_MS';

export const DEFAULT_TIMEOUT_MS = 5_000;
export const KEY_PREFIX = 'llm-';
export const ENTRY_FORMAT = 'elicitation-meta-analysis/answer/1';
export const USER_AGENT = 'elicitation-meta-analysis-response-store/1';
/**
 * Generations after `llm-<h>`: `llm-<h>-g1` … `-g<MAX_GENERATION>`. A few
 * suffice: each is written only by someone who read all before it and found
 * them damaged; more would only let a misbehaving server make readers ask more.
 */
export const MAX_GENERATION = 3;
/** The environment variable the entry point sets to the server's URL as it may be shown, when the store speaks to it through its proxy. */
export const SHOWN_SERVER_ENV = 'META_ANALYSIS_REMOTE_SERVER_SHOWN';
/** Entries larger than this are not read (a misbehaving server must not exhaust memory). */
const MAX_ENTRY_BYTES = 64 * 1024 * 1024;

const HASH = /^[0-9a-f]{64}$/;

/** The server key of an answer: `llm-<hash>`, or a later generation `llm-<hash>-g<n>` (after damaged ones). */
export function remoteKey(hash: string, generation = 0): string {
  return generation === 0 ? `${KEY_PREFIX}${hash}` : `${KEY_PREFIX}${hash}-g${generation}`;
}

/** The server URL as it may be shown: no credentials, no secret-looking query parameters. */
export function displayUrl(url: string): string {
  return endpointUrl(url);
}

export interface RemoteConfig {
  /** Base URL, no trailing slash. */
  url: string;
  /** Bearer token (null: none sent). */
  token: string | null;
  /** One read (default 5000). */
  timeoutMs: number;
  /** Writes in flight (default 4). */
  writeConcurrency: number;
  /** One write (default 30000). */
  writeTimeoutMs: number;
  /** How long the end of a stage waits for its writes (default 15000). */
  flushTimeoutMs: number;
  /** The server as it is shown (default: the URL without credentials); set when the URL is the entry point's proxy. */
  shownAs?: string;
}

const OFF = /^(off|false|0|no)$/i;

/** Milliseconds from META_ANALYSIS_REMOTE_TIMEOUT_MS, or the default. */
export function timeoutFromEnv(env: NodeJS.ProcessEnv): number {
  const v = Number(env[REMOTE_TIMEOUT_ENV]);
  return Number.isFinite(v) && v > 0 ? v : DEFAULT_TIMEOUT_MS;
}

/**
 * The shared store's settings from the environment Nx's remote cache reads,
 * or null when there is none: no server, Nx told to skip its remote cache
 * (NX_SKIP_REMOTE_CACHE / NX_DISABLE_REMOTE_CACHE, as the health-checking
 * wrapper does when the server is down), or META_ANALYSIS_REMOTE_STORE=off.
 */
export function remoteConfigFromEnv(env: NodeJS.ProcessEnv): RemoteConfig | null {
  const url = (env[SERVER_ENV] ?? '').trim().replace(/\/+$/, '');
  if (url === '') return null;
  if (env['NX_SKIP_REMOTE_CACHE'] === 'true' || env['NX_DISABLE_REMOTE_CACHE'] === 'true') return null;
  if (OFF.test(env[REMOTE_STORE_ENV] ?? '')) return null;
  const token = env[TOKEN_ENV] ?? '';
  const shown = (env[SHOWN_SERVER_ENV] ?? '').trim();
  return {
    url,
    token: token === '' ? null : token,
    timeoutMs: timeoutFromEnv(env),
    writeConcurrency: 4,
    writeTimeoutMs: 30_000,
    flushTimeoutMs: 15_000,
    ...(shown ? { shownAs: displayUrl(shown) } : {}),
  };
}

// ---------------------------------------------------------------------------
// Entries: what is stored under llm-<hash>.

/** The part of an entry its digest covers. */
function entryCore(hash: string, answer: Pick<StoredAnswer, 'text' | 'usage' | 'cost_usd'>) {
  return {
    format: ENTRY_FORMAT,
    request_hash: hash,
    text: answer.text,
    usage: { input_tokens: answer.usage.input_tokens, output_tokens: answer.usage.output_tokens, total_tokens: answer.usage.total_tokens },
    cost_usd: answer.cost_usd,
  };
}

/**
 * The entry for an answer (JSON text), or null when the answer cannot be
 * shared: its request is not the canonical request its hash was computed
 * from (offline answers keep a shortened request), so a reader could not
 * verify it. The entry carries the canonical request (never a key: requests
 * hold none), the answer, and a digest of both.
 */
export function encodeEntry(hash: string, answer: StoredAnswer): string | null {
  if (!HASH.test(hash) || answer.request === null || answer.request === undefined) return null;
  if (requestHash(answer.request) !== hash) return null;
  const core = entryCore(hash, answer);
  return JSON.stringify({ ...core, answer_sha256: sha256(canonicalJson(core)), request: answer.request });
}

function isCount(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0;
}

/** The answer in an entry read under llm-<hash>, or why it cannot be used. */
export function decodeEntry(hash: string, body: Uint8Array): { answer: StoredAnswer } | { damaged: string } {
  if (body.length === 0) return { damaged: 'empty or too large' };
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    return { damaged: 'not JSON' };
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return { damaged: 'not a JSON object' };
  const o = v as Record<string, unknown>;
  if (o['format'] !== ENTRY_FORMAT) return { damaged: `unknown format ${JSON.stringify(o['format'])}` };
  if (o['request_hash'] !== hash) {
    const other = typeof o['request_hash'] === 'string' ? `${o['request_hash'].slice(0, 12)}…` : 'no hash';
    return { damaged: `mismatched: it holds the answer to another request (${other})` };
  }
  if (o['request'] === undefined || o['request'] === null || requestHash(o['request']) !== hash) {
    return { damaged: 'mismatched: the request it carries does not hash to its key' };
  }
  const u = o['usage'] as Record<string, unknown> | null | undefined;
  const cost = o['cost_usd'];
  if (
    typeof o['text'] !== 'string' ||
    !u ||
    typeof u !== 'object' ||
    !isCount(u['input_tokens']) ||
    !isCount(u['output_tokens']) ||
    !isCount(u['total_tokens']) ||
    !(cost === null || (typeof cost === 'number' && Number.isFinite(cost)))
  ) {
    return { damaged: 'missing or invalid text, usage or cost_usd' };
  }
  const answer: StoredAnswer = {
    request: o['request'],
    text: o['text'],
    usage: { input_tokens: u['input_tokens'], output_tokens: u['output_tokens'], total_tokens: u['total_tokens'] },
    cost_usd: cost,
  };
  if (o['answer_sha256'] !== sha256(canonicalJson(entryCore(hash, answer)))) return { damaged: 'its digest does not match its content' };
  return { answer };
}

// ---------------------------------------------------------------------------
// The store.

export interface RemoteStats {
  /** Lookups answered by the server. */
  hits: number;
  /** Lookups the server did not have (404). */
  misses: number;
  /** Entries ignored because they were damaged or mismatched. */
  damaged: number;
  /** Hits read from a later generation, past damaged entries. */
  replaced: number;
  /** Answers handed to the worker for writing. */
  queued: number;
  /** Null while the store is in use; else why it was turned off. */
  off: string | null;
}

export interface RemoteStore {
  /** The server, as it may be shown. */
  readonly server: string;
  /** The verified answer under `hash`, or undefined (miss, damaged, off). `request` must be the canonical request of `hash`. */
  get(hash: string, request: unknown): StoredAnswer | undefined;
  /** Queues the answer for writing (only answers whose request hashes to `hash`). Returns at once. */
  put(hash: string, answer: StoredAnswer): void;
  /** Waits, bounded, for the queued writes; prints one line about them. Never throws. */
  flush(): void;
  stats(): RemoteStats;
}

export interface RemoteStoreHooks {
  /** Problems (stderr). */
  warn: (msg: string) => void;
  /** The one-line summary after a flush (stdout). */
  info?: (msg: string) => void;
}

/** One worker per process and server: answerers of one process share it (and its warnings). */
const shared = new Map<string, RemoteStore>();

/**
 * The shared store for this process's environment (null when none is
 * configured), created on first use and shared by every answerer in the
 * process.
 */
export function sharedRemoteStore(env: NodeJS.ProcessEnv, warn: (msg: string) => void): RemoteStore | null {
  const config = remoteConfigFromEnv(env);
  if (!config) return null;
  const id = `${config.url}\n${config.token ?? ''}`;
  let store = shared.get(id);
  if (!store) {
    store = openRemoteStore(config, { warn, info: (m) => console.log(m) });
    shared.set(id, store);
  }
  return store;
}

/** How long the first request may wait on top of its timeout: the worker has to start. */
const STARTUP_MS = 3_000;

export function openRemoteStore(config: RemoteConfig, hooks: RemoteStoreHooks): RemoteStore {
  const server = config.shownAs ?? displayUrl(config.url);
  /** What may be shown of a message: the URL as displayed, never the token (an error may quote the URL it was given). */
  const scrub = (m: string) => {
    let out = m.split(config.url).join(server);
    if (config.token) out = out.split(config.token).join('***');
    return out;
  };
  const warn = (m: string) => {
    try {
      hooks.warn(scrub(m));
    } catch {
      // a broken printer must not break a lookup
    }
  };
  const info = (m: string) => {
    try {
      (hooks.info ?? (() => {}))(scrub(m));
    } catch {
      // idem
    }
  };
  let worker: Worker | null = null;
  let port: MessageChannel['port1'] | null = null;
  let signal: Int32Array | null = null;
  let started = false;
  let ids = 0;
  let off: string | null = null;
  /** Hashes known to be missing or damaged: asked once per process. */
  const known = new Set<string>();
  /** The generation a write of a hash read as missing goes to (null: every generation is damaged, nothing is written). */
  const writeTo = new Map<string, number | null>();
  const reported = new Set<string>();
  const stats = { hits: 0, misses: 0, damaged: 0, replaced: 0, queued: 0 };
  /** Since the last flush, for its summary line. */
  let recent = { hits: 0, queued: 0, damaged: 0, replaced: 0 };
  let unflushed = 0;
  let exitHook = false;

  function turnOff(reason: string, quiet = false): void {
    if (off) return;
    off = reason;
    if (quiet) return;
    warn(`shared response store ${server}: ${reason}; using the local store only for the rest of this run (results are not affected).`);
  }

  function ensureWorker(): boolean {
    if (off) return false;
    if (worker) return true;
    try {
      const channel = new MessageChannel();
      signal = new Int32Array(new SharedArrayBuffer(4));
      const init: WorkerInit = {
        url: config.url,
        token: config.token,
        userAgent: USER_AGENT,
        writeConcurrency: config.writeConcurrency,
        writeTimeoutMs: config.writeTimeoutMs,
        maxWriteFailures: 3,
        signal,
        reply: channel.port2,
      };
      // No execArgv of this process (an -e script, loaders): the worker needs none.
      worker = new Worker(new URL('./remote-worker.ts', import.meta.url), { workerData: init, transferList: [channel.port2], execArgv: [] });
      worker.on('error', () => {
        // Reported through the timeout of the request that was waiting for it.
      });
      worker.unref();
      port = channel.port1;
      port.unref();
      return true;
    } catch (err) {
      turnOff(`could not start its worker (${(err as Error).message})`);
      return false;
    }
  }

  /** Posts a request and blocks until its reply (or null after `waitMs`). */
  function call<R extends { id: number }>(msg: WorkerRequest & { id: number }, waitMs: number): R | null {
    const w = worker as Worker;
    const p = port as MessageChannel['port1'];
    const s = signal as Int32Array;
    const total = waitMs + (started ? 0 : STARTUP_MS);
    started = true;
    w.postMessage(msg);
    const deadline = Date.now() + total;
    for (;;) {
      const seen = Atomics.load(s, 0);
      for (let m = receiveMessageOnPort(p); m !== undefined; m = receiveMessageOnPort(p)) {
        if ((m.message as R).id === msg.id) return m.message as R;
      }
      const left = deadline - Date.now();
      if (left <= 0) return null;
      Atomics.wait(s, 0, seen, left);
    }
  }

  /** One GET: the body of a 200, 'missing' for a 404, or null when the store turned off. */
  function fetchKey(key: string): Uint8Array | 'missing' | null {
    const reply = call<GetReply>({ op: 'get', id: ++ids, key, timeoutMs: config.timeoutMs, maxBytes: MAX_ENTRY_BYTES }, config.timeoutMs + 1_000);
    if (reply === null) {
      turnOff(`no answer within ${(config.timeoutMs / 1000).toFixed(1)} s`);
      return null;
    }
    if ('error' in reply) {
      if (reply.quiet) turnOff(reply.error, true);
      else turnOff(reply.error === 'timed out' ? `no answer within ${(config.timeoutMs / 1000).toFixed(1)} s` : `unreachable (${reply.error})`);
      return null;
    }
    if (reply.status === 404) return 'missing';
    if (reply.status === 401 || reply.status === 403) {
      turnOff(`the server refuses the token (HTTP ${reply.status} on a read)`);
      return null;
    }
    if (reply.status !== 200 || reply.body === null) {
      turnOff(`HTTP ${reply.status} on a read`);
      return null;
    }
    return reply.body;
  }

  function get(hash: string, request: unknown): StoredAnswer | undefined {
    if (off || !HASH.test(hash) || known.has(hash)) return undefined;
    if (request === undefined || request === null || requestHash(request) !== hash) return undefined;
    if (!ensureWorker()) return undefined;
    const damaged: string[] = [];
    for (let generation = 0; generation <= MAX_GENERATION; generation++) {
      const key = remoteKey(hash, generation);
      const body = fetchKey(key);
      if (body === null) return undefined;
      if (body === 'missing') {
        stats.misses += 1;
        known.add(hash);
        writeTo.set(hash, generation);
        if (damaged.length > 0) report(hash, damaged, `It counts as a miss: the answer is asked again and shared as ${key}, which readers try next, so it is paid for once.`);
        return undefined;
      }
      const decoded = decodeEntry(hash, body);
      if ('damaged' in decoded) {
        stats.damaged += 1;
        recent.damaged += 1;
        damaged.push(`${key}: ${decoded.damaged}`);
        continue;
      }
      stats.hits += 1;
      recent.hits += 1;
      if (generation > 0) {
        stats.replaced += 1;
        recent.replaced += 1;
      }
      return decoded.answer;
    }
    known.add(hash);
    writeTo.set(hash, null);
    report(hash, damaged, `Every generation is damaged: the answer is asked again and kept locally; delete ${remoteKey(hash)}* on the server.`);
    return undefined;
  }

  /** One warning per hash whose entries could not be used. */
  function report(hash: string, damaged: string[], consequence: string): void {
    if (reported.has(hash)) return;
    reported.add(hash);
    warn(`shared response store ${server}: ignoring entry ${damaged.join('; entry ')}. ${consequence}`);
  }

  function put(hash: string, answer: StoredAnswer): void {
    if (off) return;
    // The generation after the damaged ones this process read (0 when it read none).
    const generation = writeTo.has(hash) ? writeTo.get(hash) : 0;
    if (generation === null || generation === undefined) return;
    known.delete(hash);
    writeTo.delete(hash);
    const body = encodeEntry(hash, answer);
    if (body === null || !ensureWorker()) return;
    (worker as Worker).postMessage({ op: 'put', key: remoteKey(hash, generation), body } satisfies WorkerRequest);
    stats.queued += 1;
    recent.queued += 1;
    unflushed += 1;
    if (!exitHook) {
      // A stage that throws before its flush still gets its answers out (bounded).
      exitHook = true;
      process.once('exit', () => {
        if (unflushed > 0) drain(false);
      });
    }
  }

  /** Waits for the queued writes; returns what happened, or null when the worker did not answer. */
  function drain(summary: boolean): void {
    const w = recent;
    recent = { hits: 0, queued: 0, damaged: 0, replaced: 0 };
    let outcomes: WriteOutcomes | null = null;
    if (unflushed > 0 && worker && !off) {
      unflushed = 0;
      const reply = call<FlushReply>({ op: 'flush', id: ++ids, timeoutMs: config.flushTimeoutMs }, config.flushTimeoutMs + 2_000);
      if (reply === null) {
        warn(`shared response store ${server}: the writes did not finish within ${(config.flushTimeoutMs / 1000).toFixed(0)} s; answers not written are kept locally only.`);
      } else {
        outcomes = reply.outcomes;
      }
    }
    if (outcomes) {
      const o = outcomes;
      const readOnly = o.refused > 0;
      if (o.quiet) turnOff('the entry point turned the shared cache off', true);
      else if (o.failed > 0 || (o.stopped && !readOnly)) {
        warn(
          `shared response store ${server}: ${o.failed + o.dropped} answer(s) not written` +
            `${o.stopped ? ` (writing stopped: ${o.stopped})` : o.firstFailure ? ` (${o.firstFailure})` : ''}; they are kept locally only.`,
        );
      }
      if (o.pending > 0) warn(`shared response store ${server}: ${o.pending} write(s) still unfinished after ${(config.flushTimeoutMs / 1000).toFixed(0)} s; those answers are kept locally only.`);
    }
    if (!summary || (w.hits === 0 && w.queued === 0 && w.damaged === 0)) return;
    const parts = [`${w.hits} answer(s) read`];
    if (outcomes) {
      parts.push(`${outcomes.written} written`);
      if (outcomes.exists) parts.push(`${outcomes.exists} already there`);
      if (outcomes.refused) parts.push(`${outcomes.refused + outcomes.dropped} kept locally (read-only token)`);
    } else if (w.queued > 0) {
      parts.push('0 written');
    }
    if (w.damaged) parts.push(`${w.damaged} damaged entr${w.damaged === 1 ? 'y' : 'ies'} ignored`);
    if (w.replaced) parts.push(`${w.replaced} read from a later generation`);
    info(`  shared response store ${server}: ${parts.join(', ')}`);
  }

  return {
    server,
    get(hash, request) {
      try {
        return get(hash, request);
      } catch (err) {
        turnOff(`failed (${(err as Error).message})`);
        return undefined;
      }
    },
    put(hash, answer) {
      try {
        put(hash, answer);
      } catch (err) {
        turnOff(`failed (${(err as Error).message})`);
      }
    },
    flush() {
      try {
        drain(true);
      } catch (err) {
        warn(`shared response store ${server}: flush failed (${(err as Error).message}); answers not written are kept locally only.`);
      }
    },
    stats: () => ({ ...stats, off }),
  };
}
