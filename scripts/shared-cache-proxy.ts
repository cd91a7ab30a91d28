// The entry point's guard in front of the shared cache server (used by
// scripts/nx-shared-cache.ts for one invocation): a loopback HTTP server that
// speaks Nx's remote cache protocol (GET/PUT /v1/cache/{key}) to nx and to the
// shared response store of every stage, and forwards to the real server with
// bounds that neither has:
//
// - Time. Nx 24's client has no timeout (a server that stops answering holds
//   one GET for 600 s and more), and every stage process would pay the store's
//   timeout on its own. Here every upstream request is bounded: on a read, no
//   response or no body bytes for META_ANALYSIS_REMOTE_TIMEOUT_MS (T, 5 s), and
//   4T in all; a task write 3T, an answer write 2T (under the store's 15 s
//   wait for its writes); the store's reads 0.8T (under its own T, so that
//   the guard, not each stage, is the one to notice). A server that exceeds it, fails (5xx, network) or refuses the
//   token is turned off for the rest of the invocation after ONE warning: nx
//   then gets misses (GET 404) and refused writes (PUT 403, which it accepts
//   silently) at once, and the store gets OFF_HEADER, on which it turns off
//   without a warning of its own. The results are the local caches' results.
// - Content. Nx extracts what the server sends: a corrupt or truncated gzip
//   fails the whole run with a Rust backtrace, a `../` path fails it too, and
//   another entry's tarball is restored as this task's outputs. Here a task
//   tarball is read whole (bounded) and checked before nx sees it: the gzip
//   stream and the tar are complete, every path is relative and stays inside,
//   no links, the `code` and `terminalOutput` entries are there, and, when the
//   entry was written through this guard, its sha256 matches the digest entry
//   `nxsha256-<hash>` written next to it (which also names the hash, so a
//   swapped tarball or a swapped digest is caught). An entry that fails is a
//   miss for nx (it builds the task locally) and one warning names the hash
//   and how to delete it; the server's task entries are not read for the rest
//   of the invocation (a server that served one bad tarball is not trusted
//   for the others; the answers stay shared, the store verifies its own).
//
// The guard adds no credentials: it forwards the Authorization header its
// client sent (nx and the store send the same token) and never logs it.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import { KEY_PREFIX, OFF_HEADER } from '../stages/llm/remote-store.ts';

/** The digest entry written next to a task entry: `nxsha256-<hash>`. */
export const DIGEST_PREFIX = 'nxsha256-';
export const DIGEST_FORMAT = 'elicitation-meta-analysis/nx-entry-digest/1';
/** The User-Agent of the guard's own requests (digest entries); the requests it forwards keep their client's. */
export const GUARD_USER_AGENT = 'elicitation-meta-analysis-shared-cache-guard/1';
/** Task entries (and their unpacked contents) larger than this are not restored. */
const MAX_ENTRY_BYTES = 1024 * 1024 * 1024;

export const digestKey = (hash: string) => `${DIGEST_PREFIX}${hash}`;

/** The digest entry of a task tarball. */
export function encodeDigest(hash: string, tarball: Uint8Array): string {
  return JSON.stringify({ format: DIGEST_FORMAT, hash, sha256: createHash('sha256').update(tarball).digest('hex'), bytes: tarball.length });
}

/** Why a digest entry does not vouch for `tarball` under `hash`, or null when it does. */
export function digestProblem(hash: string, digest: Uint8Array, tarball: Uint8Array): string | null {
  let d: { format?: unknown; hash?: unknown; sha256?: unknown };
  try {
    d = JSON.parse(Buffer.from(digest).toString('utf8')) as typeof d;
  } catch {
    return `its digest entry ${digestKey(hash)} is not JSON`;
  }
  if (d?.format !== DIGEST_FORMAT) return `its digest entry ${digestKey(hash)} has an unknown format`;
  if (d.hash !== hash) return `its digest entry is another task's (${String(d.hash)})`;
  if (d.sha256 !== createHash('sha256').update(tarball).digest('hex')) return 'the tarball is not the one written under this hash (its sha256 differs from its digest entry)';
  return null;
}

const text = (b: Uint8Array, at: number, len: number) => {
  const s = Buffer.from(b.subarray(at, at + len));
  const end = s.indexOf(0);
  return s.subarray(0, end === -1 ? s.length : end).toString('utf8');
};

/** A tar header's numeric field: octal text, or GNU base-256 (high bit set). */
function numeric(b: Uint8Array, at: number, len: number): number {
  if ((b[at] as number) & 0x80) {
    let v = (b[at] as number) & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + (b[at + i] as number);
    return v;
  }
  const t = text(b, at, len).trim();
  return t === '' ? 0 : parseInt(t, 8);
}

/** The `path` record of a pax extended header, if any. */
function paxPath(data: Uint8Array): string | null {
  const s = Buffer.from(data).toString('utf8');
  let path: string | null = null;
  for (let at = 0; at < s.length; ) {
    const space = s.indexOf(' ', at);
    const len = parseInt(s.slice(at, space), 10);
    if (!(len > 0)) break;
    const record = s.slice(space + 1, at + len - 1);
    if (record.startsWith('path=')) path = record.slice(5);
    at += len;
  }
  return path;
}

const UNSAFE = /(^|[\\/])\.\.([\\/]|$)/;

/**
 * Why a task tarball (Nx's format: gzip'd tar of the outputs, plus
 * `terminalOutput` and a 4-byte `code`) must not be restored, or null when it
 * can be. Reads names, types and sizes only: no tar library is among this
 * project's dependencies, and this much of the format is small.
 */
export function tarballProblem(gz: Uint8Array, maxBytes = MAX_ENTRY_BYTES): string | null {
  let tar: Buffer;
  try {
    tar = gunzipSync(gz, { maxOutputLength: maxBytes });
  } catch (err) {
    return `not a complete gzip stream (${(err as Error).message})`;
  }
  let at = 0;
  let longName: string | null = null;
  let pax: string | null = null;
  let code = false;
  let terminalOutput = false;
  while (at + 512 <= tar.length) {
    const h = tar.subarray(at, at + 512);
    if (h.every((x) => x === 0)) {
      if (!code) return 'it has no exit code entry';
      if (!terminalOutput) return 'it has no terminal output entry';
      return null;
    }
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] as number);
    if (numeric(h, 148, 8) !== sum) return `the tar header at byte ${at} is damaged (checksum)`;
    const size = numeric(h, 124, 12);
    const type = h[156] === 0 ? '0' : String.fromCharCode(h[156] as number);
    const posix = text(h, 257, 6) === 'ustar' && text(h, 263, 2) === '00';
    const prefix = posix ? text(h, 345, 155) : '';
    const start = at + 512;
    if (start + size > tar.length) return 'truncated: an entry is cut off';
    const data = tar.subarray(start, start + size);
    at = start + Math.ceil(size / 512) * 512;
    if (type === 'L') {
      longName = text(data, 0, data.length);
      continue;
    }
    if (type === 'x') {
      pax = paxPath(data);
      continue;
    }
    if (type === 'g' || type === 'K') continue;
    const name = pax ?? longName ?? (prefix ? `${prefix}/${text(h, 0, 100)}` : text(h, 0, 100));
    pax = longName = null;
    if (name.startsWith('/') || UNSAFE.test(name)) return `it holds an unsafe path (${JSON.stringify(name)})`;
    if (type !== '0' && type !== '7' && type !== '5') return `it holds a ${type === '2' ? 'symbolic ' : type === '1' ? 'hard ' : ''}link or special file (${JSON.stringify(name)})`;
    if (name === 'code') code = size === 4;
    if (name === 'terminalOutput') terminalOutput = true;
  }
  return 'truncated: the archive has no end';
}

// ---------------------------------------------------------------------------

export interface ProxyOptions {
  /** The real server's base URL, without a trailing slash. */
  upstream: string;
  /** The server as it may be shown (no credentials). */
  shownAs: string;
  /** No answer or no progress for this long on a read (T; writes: see above). */
  timeoutMs: number;
  /** One line per problem (stderr). */
  warn: (msg: string) => void;
}

export interface SharedCacheProxy {
  /** http://127.0.0.1:<port>: what nx and the store are pointed at. */
  readonly url: string;
  /** Why the server is not used any more in this invocation (null: it still is). */
  serverOff(): string | null;
  /** The hash of the task entry that failed its check (null: none did). */
  badEntry(): string | null;
  close(): Promise<void>;
}

type Upstream = { status: number; body: Buffer } | { error: string };
/** What is forwarded of the client's request: its Authorization and User-Agent headers. */
interface Client { auth: string | undefined; agent: string | undefined }

export async function startSharedCacheProxy(opts: ProxyOptions): Promise<SharedCacheProxy> {
  let serverOff: string | null = null;
  let badEntry: string | null = null;
  const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

  /** One request to the real server, bounded: no progress for `idleMs` (or `idleMs` x 4 in all) aborts it. */
  async function upstream(method: 'GET' | 'PUT', key: string, client: Client, idleMs: number, body?: Buffer): Promise<Upstream> {
    const ac = new AbortController();
    let idle = setTimeout(() => ac.abort(), idleMs);
    const touch = () => {
      clearTimeout(idle);
      idle = setTimeout(() => ac.abort(), idleMs);
    };
    const cap = setTimeout(() => ac.abort(), idleMs * 4);
    try {
      const headers: Record<string, string> = { accept: 'application/octet-stream', 'user-agent': key.startsWith(DIGEST_PREFIX) ? GUARD_USER_AGENT : (client.agent ?? '') };
      if (client.auth) headers['authorization'] = client.auth;
      if (body) headers['content-type'] = 'application/octet-stream';
      const res = await fetch(`${opts.upstream}/v1/cache/${encodeURIComponent(key)}`, { method, headers, signal: ac.signal, ...(body ? { body } : {}) });
      touch();
      const chunks: Buffer[] = [];
      let n = 0;
      if (res.body) {
        for await (const c of res.body) {
          n += (c as Uint8Array).length;
          if (n > MAX_ENTRY_BYTES) {
            ac.abort();
            return { error: `an entry larger than ${MAX_ENTRY_BYTES} bytes` };
          }
          chunks.push(Buffer.from(c as Uint8Array));
          touch();
        }
      }
      return { status: res.status, body: Buffer.concat(chunks) };
    } catch (err) {
      if (ac.signal.aborted) return { error: `no answer within ${seconds(idleMs)}` };
      const e = err as { message?: string; cause?: { code?: string; message?: string } };
      return { error: `unreachable (${e.cause?.code ?? e.cause?.message ?? e.message ?? String(err)})` };
    } finally {
      clearTimeout(idle);
      clearTimeout(cap);
    }
  }

  function turnOff(reason: string, method: string, key: string): void {
    if (serverOff) return;
    serverOff = reason;
    opts.warn(
      `warning: shared cache ${opts.shownAs}: ${reason} (${method} ${key}). Going on with the local caches only for the rest of this run: ` +
        'the results are the same, but nothing more is read from or shared with the team this time.',
    );
  }

  /** A status from the real server that means it is not usable (null: a normal answer). */
  function failure(r: Upstream, method: 'GET' | 'PUT'): string | null {
    if ('error' in r) return r.error;
    if (r.status === 401 || (r.status === 403 && method === 'GET')) return `the server refuses the token (HTTP ${r.status} on a ${method === 'GET' ? 'read' : 'write'})`;
    if (r.status >= 500 || (r.status >= 300 && r.status < 400)) return `HTTP ${r.status} on a ${method === 'GET' ? 'read' : 'write'}`;
    return null;
  }

  function reject(hash: string, problem: string): void {
    if (badEntry) return;
    badEntry = hash;
    opts.warn(
      `warning: shared cache ${opts.shownAs}: the Nx cache entry ${hash} is unusable: ${problem}. Nx builds that task itself, and does not read ` +
        `task outputs from the server for the rest of this run (the results are the same; answers are still shared). The server cannot ` +
        `overwrite it and Nx's cache API has no DELETE: ask the server's admin to delete the entries ${hash} and ${digestKey(hash)} from its storage.`,
    );
  }

  async function taskGet(hash: string, auth: Client): Promise<[number, Buffer?]> {
    if (badEntry) return [404];
    const [tarball, digest] = await Promise.all([upstream('GET', hash, auth, opts.timeoutMs), upstream('GET', digestKey(hash), auth, opts.timeoutMs)]);
    const failed = failure(tarball, 'GET') ?? failure(digest, 'GET');
    if (failed) {
      turnOff(failed, 'GET', hash);
      return [404];
    }
    const t = tarball as { status: number; body: Buffer };
    const d = digest as { status: number; body: Buffer };
    if (t.status !== 200) return [404];
    const problem = tarballProblem(t.body) ?? (d.status === 200 ? digestProblem(hash, d.body, t.body) : null);
    if (problem) {
      reject(hash, problem);
      return [404];
    }
    return [200, t.body];
  }

  async function taskPut(hash: string, auth: Client, body: Buffer): Promise<number> {
    const r = await upstream('PUT', hash, auth, opts.timeoutMs * 3, body);
    const failed = failure(r, 'PUT');
    if (failed) {
      turnOff(failed, 'PUT', hash);
      return 403; // Nx takes it as "not stored" and goes on
    }
    const status = (r as { status: number }).status;
    if (status >= 200 && status < 300) {
      const w = await upstream('PUT', digestKey(hash), auth, opts.timeoutMs * 2, Buffer.from(encodeDigest(hash, body)));
      const f = failure(w, 'PUT');
      if (f) turnOff(f, 'PUT', digestKey(hash));
    }
    return status;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const m = /^\/v1\/cache\/([A-Za-z0-9_-]{1,128})$/.exec(req.url ?? '');
    const method = req.method ?? '';
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks);
    const send = (status: number, payload?: Buffer, extra: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/octet-stream', ...extra });
      res.end(payload);
    };
    if (!m || (method !== 'GET' && method !== 'PUT')) return send(404);
    const key = m[1] as string;
    const auth: Client = { auth: req.headers['authorization'], agent: req.headers['user-agent'] };
    const ours = key.startsWith(KEY_PREFIX);
    if (serverOff) return ours ? send(503, undefined, { [OFF_HEADER]: '1' }) : send(method === 'GET' ? 404 : 403);
    if (!ours) {
      if (key.startsWith(DIGEST_PREFIX)) return send(method === 'GET' ? 404 : 403);
      if (method === 'GET') {
        const [status, payload] = await taskGet(key, auth);
        return send(status, payload);
      }
      return send(await taskPut(key, auth, body));
    }
    // The store's own entries: passed through, bounded below the store's own bounds so that
    // the guard, not each stage, says when the server stops answering.
    const r = await upstream(method, key, auth, method === 'GET' ? Math.max(100, Math.floor(opts.timeoutMs * 0.8)) : opts.timeoutMs * 2, method === 'PUT' ? body : undefined);
    const failed = 'error' in r || r.status >= 500 ? failure(r, method) : null;
    if (failed) {
      turnOff(failed, method, key);
      return send(503, undefined, { [OFF_HEADER]: '1' });
    }
    const ok = r as { status: number; body: Buffer };
    return send(ok.status, ok.body);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(req.url?.includes(`/${KEY_PREFIX}`) ? 503 : 404);
      res.end();
    });
  });
  await new Promise<void>((ready, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => ready());
  });
  server.unref();
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    serverOff: () => serverOff,
    badEntry: () => badEntry,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        server.closeAllConnections();
      }),
  };
}
