// The entry point's guard in front of the shared cache (scripts/shared-cache-proxy.ts):
// what it accepts of a task tarball (Nx's format, and forged ones), and, against a
// loopback server implementing Nx's remote cache specification, that it bounds every
// request, turns a misbehaving server off after one warning, answers nx so that it
// never fails, and passes the store's entries through.
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { digestKey, digestProblem, encodeDigest, startSharedCacheProxy, tarballProblem } from '../scripts/shared-cache-proxy.ts';
import type { SharedCacheProxy } from '../scripts/shared-cache-proxy.ts';
import { OFF_HEADER } from '../stages/llm/remote-store.ts';
import { startNxCacheServer } from './helpers/nx-cache-server.ts';
import type { NxCacheServer } from './helpers/nx-cache-server.ts';
import { nxTarball, tar } from './helpers/tarball.ts';

const RW = 'rw-token-proxy-7c1d';
const RO = 'ro-token-proxy-2e9a';
const long = `out/analysis/summarize/summaries/${'x'.repeat(120)}.json`;
const good = () => nxTarball([{ name: 'out/analysis/report/', type: '5' }, { name: 'out/analysis/report/report.md', data: '# Report\n' }, { name: long, data: '{}' }]);

describe('task tarballs', () => {
  it('accepts what Nx writes (folders, long names, terminal output, exit code)', () => {
    expect(tarballProblem(good())).toBeNull();
  });
  it('refuses damaged, truncated, unsafe or incomplete ones, with the reason', () => {
    const g = good();
    expect(tarballProblem(g.subarray(0, g.length >> 1))).toMatch(/^not a complete gzip stream/);
    const corrupt = Buffer.from(g);
    corrupt.fill(0x5a, 20, 60);
    expect(tarballProblem(corrupt)).toMatch(/^not a complete gzip stream/);
    expect(tarballProblem(gzipSync(tar([{ name: 'a', data: 'x'.repeat(2000) }]).subarray(0, 1024)))).toBe('truncated: an entry is cut off');
    expect(tarballProblem(gzipSync(tar([{ name: 'a', data: 'x' }]).subarray(0, 1024)))).toBe('truncated: the archive has no end');
    expect(tarballProblem(nxTarball([{ name: '../../escape.txt', data: 'PWNED' }]))).toBe('it holds an unsafe path ("../../escape.txt")');
    expect(tarballProblem(nxTarball([{ name: `out/${'a/'.repeat(60)}../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../../x`, data: 'PWNED' }]))).toMatch(/unsafe path/);
    expect(tarballProblem(nxTarball([{ name: '/etc/passwd', data: 'x' }]))).toMatch(/unsafe path/);
    expect(tarballProblem(nxTarball([{ name: 'out/evil', type: '2', link: '/tmp' }]))).toMatch(/symbolic link/);
    expect(tarballProblem(nxTarball([{ name: 'out/a', data: 'x' }], { code: null }))).toBe('it has no exit code entry');
    expect(tarballProblem(nxTarball([{ name: 'out/a', data: 'x' }], { terminalOutput: null }))).toBe('it has no terminal output entry');
  });
  it('a digest entry vouches for one tarball under one hash', () => {
    const a = good();
    const b = nxTarball([{ name: 'out/other', data: 'y' }]);
    expect(digestProblem('123', Buffer.from(encodeDigest('123', a)), a)).toBeNull();
    expect(digestProblem('123', Buffer.from(encodeDigest('123', a)), b)).toMatch(/not the one written under this hash/);
    expect(digestProblem('123', Buffer.from(encodeDigest('456', b)), b)).toMatch(/another task's \(456\)/);
    expect(digestProblem('123', Buffer.from('x'), a)).toMatch(/not JSON/);
  });
});

describe('the guard, against a server implementing the specification', () => {
  let server: NxCacheServer;
  let guard: SharedCacheProxy | null = null;
  let warnings: string[] = [];
  beforeAll(async () => {
    server = await startNxCacheServer({ readWriteTokens: [RW], readOnlyTokens: [RO], maxLifetimeMs: 60_000 });
  });
  afterAll(() => server.close());
  afterEach(async () => {
    server.misbehave({ kind: 'none' });
    server.clearRequests();
    server.entries.clear();
    await guard?.close();
    guard = null;
  });
  async function open(timeoutMs = 1_000): Promise<SharedCacheProxy> {
    warnings = [];
    guard = await startSharedCacheProxy({ upstream: server.url, shownAs: server.url, timeoutMs, warn: (m) => warnings.push(m) });
    return guard;
  }
  const call = async (g: SharedCacheProxy, method: 'GET' | 'PUT', key: string, token = RW, body?: Buffer) => {
    const res = await fetch(`${g.url}/v1/cache/${key}`, { method, headers: { authorization: `Bearer ${token}` }, ...(body ? { body } : {}) });
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()), off: res.headers.has(OFF_HEADER) };
  };

  it('a write stores the tarball and its digest entry; a read returns the verified tarball; a read-only token writes nothing', async () => {
    const g = await open();
    const t = good();
    expect((await call(g, 'PUT', '1001', RW, t)).status).toBe(200);
    expect(server.entries.get('1001')?.equals(t)).toBe(true);
    expect(digestProblem('1001', server.entries.get(digestKey('1001')) as Buffer, t)).toBeNull();
    const read = await call(g, 'GET', '1001');
    expect(read.status).toBe(200);
    expect(read.body.equals(t)).toBe(true);
    expect((await call(g, 'GET', '1002')).status).toBe(404);
    expect((await call(g, 'PUT', '1003', RO, t)).status).toBe(403);
    expect(server.entries.has('1003')).toBe(false);
    expect(server.entries.has(digestKey('1003'))).toBe(false);
    expect((await call(g, 'PUT', '1001', RW, t)).status).toBe(409);
    expect(warnings).toEqual([]);
    expect(server.requests.every((q) => q.role === 'read-write' || q.role === 'read-only')).toBe(true);
  });

  for (const how of ['corrupt', 'truncate', 'swap'] as const) {
    it(`a ${how === 'swap' ? 'swapped' : how === 'truncate' ? 'truncated' : 'corrupt'} tarball is a miss for nx, with one warning naming the hash; task entries are not read again this run`, async () => {
      const g = await open();
      expect((await call(g, 'PUT', '2001', RW, good())).status).toBe(200);
      expect((await call(g, 'PUT', '2002', RW, nxTarball([{ name: 'out/analysis/summarize/index.json', data: '[]' }]))).status).toBe(200);
      server.misbehave({ kind: 'tarballs', how });
      expect((await call(g, 'GET', '2002')).status).toBe(404);
      expect((await call(g, 'GET', '2001')).status).toBe(404);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/the Nx cache entry 2002 is unusable: .*ask the server's admin to delete the entries 2002 and nxsha256-2002/);
      expect(g.badEntry()).toBe('2002');
      expect(g.serverOff()).toBeNull();
      // Answers are still shared.
      expect((await call(g, 'GET', 'llm-abc')).status).toBe(404);
    });
  }

  it('an entry with ../ paths written by someone with a write token is refused, naming the hash', async () => {
    const g = await open();
    server.entries.set('3001', nxTarball([{ name: '../../../escape.txt', data: 'PWNED' }]));
    expect((await call(g, 'GET', '3001')).status).toBe(404);
    expect(warnings).toEqual([expect.stringMatching(/Nx cache entry 3001 is unusable: it holds an unsafe path \("\.\.\/\.\.\/\.\.\/escape\.txt"\)/)]);
  });

  it('a server that stops answering: the read is answered (404) within the bound, once; then nothing waits', async () => {
    const g = await open(500);
    server.misbehave({ kind: 'hangAfter', requests: 0 });
    const t0 = performance.now();
    expect((await call(g, 'GET', '4001')).status).toBe(404);
    expect(performance.now() - t0).toBeLessThan(1_500);
    expect(warnings).toEqual([expect.stringMatching(/no answer within 0\.5 s \(GET 4001\)\. Going on with the local caches only/)]);
    const t1 = performance.now();
    expect((await call(g, 'PUT', '4002', RW, good())).status).toBe(403);
    expect(await call(g, 'GET', 'llm-abc')).toMatchObject({ status: 503, off: true });
    expect(performance.now() - t1).toBeLessThan(200);
    expect(warnings).toHaveLength(1);
    expect(g.serverOff()).toMatch(/no answer within 0\.5 s/);
  });

  it('a server that stops answering a write: nx is answered (403, which it takes as "not stored") within 3 x the bound', async () => {
    const g = await open(300);
    server.misbehave({ kind: 'hangAfter', requests: 0 });
    const t0 = performance.now();
    expect((await call(g, 'PUT', '4101', RW, good())).status).toBe(403);
    expect(performance.now() - t0).toBeLessThan(1_500);
    expect(warnings).toEqual([expect.stringMatching(/no answer within 0\.9 s \(PUT 4101\)/)]);
    expect((await call(g, 'GET', '4102')).status).toBe(404);
    expect(warnings).toHaveLength(1);
  });

  it('a server failing (500) during the run: one warning, nx gets a miss, the store is told it is off', async () => {
    const g = await open();
    server.misbehave({ kind: 'error500' });
    expect((await call(g, 'GET', 'llm-abc'))).toMatchObject({ status: 503, off: true });
    expect((await call(g, 'GET', '5001')).status).toBe(404);
    expect(warnings).toEqual([expect.stringMatching(/HTTP 500 on a read \(GET llm-abc\)/)]);
  });
});
