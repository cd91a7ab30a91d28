// The team's entry point: nx with the shared cache when its server is
// healthy, and with the local caches only (one warning) when it is not.
//
//   npm run nx:shared -- run analysis:report        (any nx arguments)
//   npm run nx:shared -- run-many -t plan
//   npm run cache:check                             (the health check alone)
//
// Why: with NX_SELF_HOSTED_REMOTE_CACHE_SERVER set, Nx 24 fails the whole run
// when the server is unreachable ("Failed to send request"), answers 5xx or
// refuses the token (401), and it fails a task whose upload is answered 5xx.
// NX_SKIP_REMOTE_CACHE=true makes it run with its local cache only, and the
// shared response store honours the same variable. So, before nx starts, one
// read and one write of a probe key in our namespace (llm-health-check), each
// bounded by META_ANALYSIS_REMOTE_TIMEOUT_MS (default 5 s):
//   - read 200/404 and write 200/409/403 (403: a read-only token, supported):
//     nx runs with the shared cache;
//   - anything else (unreachable, slow, 5xx, 401): nx runs with
//     NX_SKIP_REMOTE_CACHE=true, after one warning. Results are the same;
//     nothing is shared this time.
// A server that passes the check can still misbehave during the run (stop
// answering, fail, serve a corrupt, truncated, unsafe or swapped tarball):
// nx and the stages' response store talk to it through a loopback guard
// (shared-cache-proxy.ts) that bounds every request and checks every task
// tarball before nx extracts it, and turns the server off for the rest of the
// run after one warning that names the entry. If nx still fails after that,
// or fails while the server went down, the command is run once more with the
// local caches (it reuses everything already built or answered, so it pays
// nothing twice).
// No variable set: nx runs as it is. The token is sent in the Authorization
// header and never printed.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { displayUrl, KEY_PREFIX, SERVER_ENV, SHOWN_SERVER_ENV, timeoutFromEnv, TOKEN_ENV, USER_AGENT } from '../stages/llm/remote-store.ts';
import { startSharedCacheProxy } from './shared-cache-proxy.ts';

export const PROBE_KEY = `${KEY_PREFIX}health-check`;
const PROBE_BODY = JSON.stringify({ format: 'elicitation-meta-analysis/health-check/1' });

export type Health =
  | { state: 'none'; note: string }
  | { state: 'ok'; server: string; access: 'read-write' | 'read-only' | 'unknown'; note: string | null }
  | { state: 'down'; server: string; reason: string };

function describe(err: unknown): string {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'timed out';
  return `unreachable (${e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err)})`;
}

/** One read and one write of the probe key, as Nx would do them. */
export async function checkSharedCache(env: NodeJS.ProcessEnv = process.env): Promise<Health> {
  const raw = (env[SERVER_ENV] ?? '').trim().replace(/\/+$/, '');
  if (raw === '') return { state: 'none', note: `${SERVER_ENV} is not set: local caches only` };
  if (env['NX_SKIP_REMOTE_CACHE'] === 'true' || env['NX_DISABLE_REMOTE_CACHE'] === 'true') {
    return { state: 'none', note: 'NX_SKIP_REMOTE_CACHE=true: local caches only' };
  }
  const server = displayUrl(raw);
  const timeoutMs = timeoutFromEnv(env);
  const token = env[TOKEN_ENV] ?? '';
  const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...(token ? { authorization: `Bearer ${token}` } : {}) };
  const url = `${raw}/v1/cache/${PROBE_KEY}`;
  const seconds = `${(timeoutMs / 1000).toFixed(1)} s`;
  // An error may quote the URL it was given: show it as displayed, and never the token.
  const scrub = (m: string) => (token ? m.split(token).join('***') : m).split(raw).join(server);
  const down = (reason: string): Health => ({ state: 'down', server, reason: scrub(reason) });

  let status: number;
  try {
    const res = await fetch(url, { headers: { ...headers, accept: 'application/octet-stream' }, signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    status = res.status;
  } catch (err) {
    const why = describe(err);
    return down(why === 'timed out' ? `no answer to a read within ${seconds}` : why);
  }
  if (status === 401 || status === 403) return { state: 'down', server, reason: `the server refuses the token (HTTP ${status} on a read)` };
  if (status !== 200 && status !== 404) return { state: 'down', server, reason: `HTTP ${status} on a read` };

  try {
    const body = Buffer.from(PROBE_BODY);
    const res = await fetch(url, {
      method: 'PUT',
      headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(body.length) },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.arrayBuffer();
    status = res.status;
  } catch (err) {
    const why = describe(err);
    return down(why === 'timed out' ? `no answer to a write within ${seconds}` : why);
  }
  if (status === 200) return { state: 'ok', server, access: 'read-write', note: null };
  if (status === 409) return { state: 'ok', server, access: 'unknown', note: null };
  if (status === 403) return { state: 'ok', server, access: 'read-only', note: 'read-only token: nothing is written to the shared cache' };
  if (status >= 200 && status < 300) {
    return {
      state: 'ok',
      server,
      access: 'read-write',
      note: `the server answers a write with HTTP ${status}; Nx 24 expects 200 and retries each upload (it works, but every artifact is uploaded twice)`,
    };
  }
  if (status === 401) return { state: 'down', server, reason: 'the server refuses the token (HTTP 401 on a write)' };
  return { state: 'down', server, reason: `HTTP ${status} on a write` };
}

function nxBin(): string {
  const here = resolve(import.meta.dirname, '..');
  const require = createRequire(join(here, 'package.json'));
  const pkgFile = require.resolve('nx/package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { bin: Record<string, string> };
  return join(dirname(pkgFile), pkg.bin['nx'] as string);
}

function runNx(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [nxBin(), ...args], { stdio: 'inherit', env });
    // Ctrl-C reaches nx through the terminal's process group; SIGTERM/SIGHUP sent to this process are passed on.
    const ignore = () => {};
    const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
    const onTerm = forward('SIGTERM');
    const onHup = forward('SIGHUP');
    process.on('SIGINT', ignore);
    process.on('SIGTERM', onTerm);
    process.on('SIGHUP', onHup);
    child.on('close', (code, signal) => {
      process.off('SIGINT', ignore);
      process.off('SIGTERM', onTerm);
      process.off('SIGHUP', onHup);
      done(code ?? (signal ? 128 + (signal === 'SIGINT' ? 2 : 15) : 1));
    });
  });
}

const localOnly = (env: NodeJS.ProcessEnv): NodeJS.ProcessEnv => ({ ...env, NX_SKIP_REMOTE_CACHE: 'true' });

function warnDown(h: Extract<Health, { state: 'down' }>, when: string): void {
  console.error(
    `warning: shared cache ${h.server}: ${h.reason}${when}. Running with the local caches only (NX_SKIP_REMOTE_CACHE=true): ` +
      'the results are the same, but nothing is read from or shared with the team this time.',
  );
}

export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  if (argv[0] === '--check') {
    const h = await checkSharedCache(env);
    if (h.state === 'none') console.log(`shared cache: ${h.note}`);
    else if (h.state === 'ok') console.log(`shared cache ${h.server}: healthy (${h.access === 'unknown' ? 'reads work; the probe entry exists' : h.access})${h.note ? `; ${h.note}` : ''}`);
    else console.error(`shared cache ${h.server}: not usable: ${h.reason}`);
    return h.state === 'down' ? 1 : 0;
  }
  if (argv.length === 0) {
    console.error('usage: npm run nx:shared -- <nx arguments>   (for example: run-many -t report)');
    return 2;
  }
  const h = await checkSharedCache(env);
  if (h.state === 'none') return runNx(argv, env);
  if (h.state === 'down') {
    warnDown(h, '');
    return runNx(argv, localOnly(env));
  }
  console.log(`shared cache ${h.server}: ${h.access === 'read-only' ? 'read-only' : 'in use'}${h.note ? ` (${h.note})` : ''}`);
  const guard = await startSharedCacheProxy({
    upstream: (env[SERVER_ENV] ?? '').trim().replace(/\/+$/, ''),
    shownAs: h.server,
    timeoutMs: timeoutFromEnv(env),
    warn: (m) => console.error(m),
  });
  let code: number;
  try {
    code = await runNx(argv, { ...env, [SERVER_ENV]: guard.url, [SHOWN_SERVER_ENV]: h.server });
  } finally {
    await guard.close();
  }
  if (code === 0) return 0;
  if (guard.serverOff() !== null || guard.badEntry() !== null) {
    console.error(`nx failed after the shared cache ${h.server} was turned off; running it once more with the local caches only (NX_SKIP_REMOTE_CACHE=true).`);
    return runNx(argv, localOnly(env));
  }
  const again = await checkSharedCache(env);
  if (again.state !== 'down') return code;
  warnDown(again, ' (it failed during the run)');
  return runNx(argv, localOnly(env));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
