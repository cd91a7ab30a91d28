// The plugin's share of every nx command: `nx show projects` on the sample
// with the workspace as it is, against the same workspace with no plugin
// (bare Nx), and with Nx's default plugin isolation turned back on (each
// plugin in a worker process of its own; the committed .local.env turns it off).
//
//   npx node bench/startup.ts [--repeats 7]
//
// The minimum of R runs of each, wall clock and CPU (user + sys, which the
// other load of a shared machine disturbs less); no daemon, so nothing
// carries over between commands. Prints a Markdown table.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { makeWorkspace, runNx } from './lib.ts';
import type { Measurement } from './lib.ts';

const { values } = parseArgs({ options: { repeats: { type: 'string', default: '7' } } });
const repeats = Number(values.repeats);

const root = mkdtempSync(join(tmpdir(), 'bench-startup-'));
const ws = join(root, 'ws');
const timeFile = join(root, 'time.txt');
makeWorkspace(ws, true);
const env = { NX_CACHE_DIRECTORY: join(ws, '.nx', 'cache'), NX_WORKSPACE_DATA_DIRECTORY: join(ws, '.nx', 'workspace-data') };

async function best(label: string, extra: Record<string, string> = {}): Promise<{ label: string; wallS: number; cpuS: number }> {
  await runNx(ws, ['show', 'projects'], timeFile, 120, { ...env, ...extra }); // warm the file-system cache and Nx's workspace data
  const ms: Measurement[] = [];
  for (let r = 0; r < repeats; r++) ms.push(await runNx(ws, ['show', 'projects'], timeFile, 120, { ...env, ...extra }));
  for (const m of ms) if (!m.ok) throw new Error(`${label}: nx show projects failed:\n${m.output}`);
  return { label, wallS: Math.min(...ms.map((m) => m.wallS)), cpuS: Math.min(...ms.map((m) => m.cpuS ?? Infinity)) };
}

try {
  const rows = [await best('this workspace'), await best('with plugin isolation (Nx default)', { NX_ISOLATE_PLUGINS: 'true' })];
  const nxJson = join(ws, 'nx.json');
  const original = readFileSync(nxJson, 'utf8');
  writeFileSync(nxJson, JSON.stringify({ ...JSON.parse(original), plugins: [] }));
  const bare = await best('bare Nx (no plugin)');
  writeFileSync(nxJson, original);
  const lines = [
    `| \`nx show projects\`, sample, min of ${repeats} | wall s | CPU s | over bare Nx (wall / CPU) |`,
    '|---|---|---|---|',
    ...[...rows, bare].map((r) => `| ${r.label} | ${r.wallS.toFixed(2)} | ${r.cpuS.toFixed(2)} | ${r === bare ? '' : `+${(r.wallS - bare.wallS).toFixed(2)} / +${(r.cpuS - bare.cpuS).toFixed(2)}`} |`),
  ];
  console.log(lines.join('\n'));
} finally {
  rmSync(root, { recursive: true, force: true });
}
