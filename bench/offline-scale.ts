// How the offline categorizer scales, and whether its categories stay as good
// at scale: N categorize items made in memory from the 117 benchmark records
// (examples/autoelicit-bench/records.json), varied the way bench/synthetic-tree.ts
// varies the copies of a tree (varyContext, varyPerturbation), then
// offlineCategorize on them, timed, with the peak heap and the adjusted Rand
// index of the categories against the hand labels of bench/mechanism-labels.json,
// each copy carrying its source record's label.
//
//   npx node bench/offline-scale.ts [--sizes 117,1000,10000] [--seed bench] [--json FILE]
//
// Each size runs in a child process of its own (a clean heap, and its peak
// RSS read from /proc at the end). The Markdown table goes to stdout.

import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { CategorizeItem } from '../stages/formats.ts';
import { offlineCategorize } from '../stages/offline/categorize.ts';
import { adjustedRandIndex } from '../stages/offline/metrics.ts';
import type { BenchRecord } from './offline-quality.ts';
import { varyContext, varyPerturbation } from './synthetic-tree.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

export interface ScaledItems {
  items: CategorizeItem[];
  /** Hand label of each item's source record ('' when unlabelled). */
  labels: Map<string, string>;
}

/** N items: copy k of record r (k = floor(i / 117)); copy 0 is the record as it is. */
export function scaledItems(n: number, seed = 'bench'): ScaledItems {
  const records = JSON.parse(readFileSync(join(ROOT, 'examples/autoelicit-bench/records.json'), 'utf8')) as BenchRecord[];
  const hand = JSON.parse(readFileSync(join(ROOT, 'bench/mechanism-labels.json'), 'utf8')) as Record<string, string>;
  const items: CategorizeItem[] = [];
  const labels = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const r = records[i % records.length] as BenchRecord;
    const copy = Math.floor(i / records.length);
    const key = `${r.task_id}:${r.perturbed_id}:${r.refinement_model}:${r.execution_agent}`;
    const taskKey = `${seed}:${copy}:${r.task_id}`;
    const vary = copy > 0;
    const original = r.original_instruction ?? '';
    const id = copy === 0 ? key : `${key}#${copy}`;
    items.push({
      id,
      original_instruction: vary ? varyContext(original, taskKey, copy) : original,
      perturbed_instruction: vary ? varyPerturbation(varyContext(r.perturbed_instruction, taskKey, copy), `${taskKey}:${key}`) : r.perturbed_instruction,
      summary: '',
      harmful_actions: r.harmful_actions_observed ?? [],
      elicitation_strategy: r.elicitation_strategy,
      severity: r.severity,
    });
    labels.set(id, hand[key] ?? '');
  }
  return { items, labels };
}

export interface ScaleResult {
  runs: number;
  seconds: number;
  categories: number;
  /** ARI against the hand labels over the labelled items. */
  ari: number;
  peakRssMiB: number;
}

function peakRssMiB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) / 1024 : process.memoryUsage().rss / 2 ** 20;
}

/** One size, in this process. */
export function measure(n: number, seed: string): ScaleResult {
  const { items, labels } = scaledItems(n, seed);
  const t0 = performance.now();
  const { categories } = offlineCategorize(items);
  const seconds = (performance.now() - t0) / 1000;
  const categoryOf = new Map<string, string>();
  for (const c of categories) for (const ex of c.examples) categoryOf.set(ex.id, c.category_name);
  const ids = items.map((it) => it.id).filter((id) => (labels.get(id) ?? '') !== '');
  const ari = adjustedRandIndex(
    ids.map((id) => categoryOf.get(id) ?? ''),
    ids.map((id) => labels.get(id) ?? ''),
  );
  return { runs: n, seconds, categories: categories.length, ari, peakRssMiB: peakRssMiB() };
}

function main(): void {
  const { values } = parseArgs({ options: { sizes: { type: 'string' }, seed: { type: 'string' }, json: { type: 'string' }, one: { type: 'string' } } });
  const seed = values.seed ?? 'bench';
  if (values.one) {
    process.stdout.write(`${JSON.stringify(measure(Number(values.one), seed))}\n`);
    return;
  }
  const sizes = (values.sizes ?? '117,1000,10000').split(',').map(Number);
  const results: ScaleResult[] = [];
  for (const n of sizes) {
    process.stderr.write(`[offline-scale] ${n} runs...\n`);
    const r = spawnSync(process.execPath, ['--max-old-space-size=4096', fileURLToPath(import.meta.url), '--one', String(n), '--seed', seed], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`offline-scale ${n}: ${r.stderr}`);
    results.push(JSON.parse(r.stdout.trim().split('\n').pop() as string) as ScaleResult);
  }
  const lines = ['| runs | categorize s | categories | ARI vs hand labels | peak RSS MiB |', '|---:|---:|---:|---:|---:|'];
  for (const r of results) lines.push(`| ${r.runs} | ${r.seconds.toFixed(2)} | ${r.categories} | ${r.ari.toFixed(3)} | ${r.peakRssMiB.toFixed(0)} |`);
  process.stdout.write(`${lines.join('\n')}\n`);
  if (values.json) writeFileSync(values.json, `${JSON.stringify(results, null, 2)}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main();
