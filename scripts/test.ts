// `npm test`: the two tiers, one after the other, each timed.
//   fast  unit tests (vitest project `fast`), under a minute on 2 cores
//   e2e   real nx in temporary workspaces, traced executors, headless Chromium
// Extra arguments go to vitest. `--json-dir DIR` also writes DIR/<tier>.json
// (vitest's JSON reporter), which .ci/run adds up. Both tiers always run; the
// exit code is non-zero when either fails.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '..');
const TIERS = ['fast', 'e2e'] as const;

const args = process.argv.slice(2);
let jsonDir: string | null = null;
const i = args.indexOf('--json-dir');
if (i >= 0) {
  jsonDir = resolve(args[i + 1] ?? 'test-artifacts');
  args.splice(i, 2);
  mkdirSync(jsonDir, { recursive: true });
}

const times: string[] = [];
let failed = false;
for (const tier of TIERS) {
  const reporters = jsonDir ? ['--reporter=default', '--reporter=json', `--outputFile.json=${join(jsonDir, `${tier}.json`)}`] : [];
  const started = performance.now();
  const r = spawnSync(join(REPO, 'node_modules', '.bin', 'vitest'), ['run', '--project', tier, ...reporters, ...args], { cwd: REPO, stdio: 'inherit' });
  const seconds = (performance.now() - started) / 1000;
  const ok = r.status === 0;
  failed ||= !ok;
  times.push(`${tier} ${seconds.toFixed(1)} s${ok ? '' : ' (failed)'}`);
  console.log(`\n${tier} tier: ${seconds.toFixed(1)} s${ok ? '' : `, failed (exit ${r.status ?? r.signal})`}\n`);
}
console.log(`test tiers: ${times.join(', ')}`);
process.exitCode = failed ? 1 : 0;
