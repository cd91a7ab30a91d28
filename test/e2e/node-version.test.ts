// nx started with a Node too old for the TypeScript plugin (as an IDE or a
// global nx would start it) says which Node is needed and to use npx, instead
// of failing deep inside Nx. Runs where the machine's own node is older than
// 22.18 (system Node 20 on the CI image); elsewhere there is nothing to show.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hermeticEnv, REPO, tempWorkspace } from './workspace.ts';
import type { TempWorkspace } from './workspace.ts';

/** The first `node` on the system PATH (not the repository's node_modules/.bin) and its version. */
function systemNode(): { bin: string; version: string } | null {
  const res = spawnSync('/bin/sh', ['-c', 'command -v node && node -p process.versions.node'], { encoding: 'utf8', env: { PATH: '/usr/local/bin:/usr/bin:/bin' } });
  const [bin, version] = res.stdout.trim().split('\n');
  return res.status === 0 && bin && version ? { bin, version } : null;
}
const sys = systemNode();
const tooOld = sys !== null && (() => {
  const [major, minor] = sys.version.split('.').map(Number) as [number, number];
  return major < 22 || (major === 22 && minor < 18);
})();

describe.skipIf(!tooOld)('nx under a Node older than 22.18', () => {
  let ws: TempWorkspace | undefined;
  afterAll(() => ws?.dispose());

  it('stops with the version needed and the npx command', () => {
    ws = tempWorkspace({ prefix: 'meta-analysis-node-' });
    const env = { ...hermeticEnv(join(ws.root, '.nx')), PATH: '/usr/local/bin:/usr/bin:/bin' };
    const res = spawnSync(sys!.bin, [join(REPO, 'node_modules/nx/dist/bin/nx.js'), 'run', 'analysis:report'], { cwd: ws.root, env, encoding: 'utf8', timeout: 120_000 });
    const out = `${res.stdout}\n${res.stderr}`;
    expect(res.status).not.toBe(0);
    expect(out).toContain(`needs Node >= 22.18 (found ${sys!.version})`);
    expect(out).toContain('npx nx run analysis:report');
    expect(out).not.toContain('readConfigFile is not a function');
  });
});
