// The two LLM categorization strategies side by side, against the scripted
// analyst (test/helpers/analyst-fake.ts) behind the loopback OpenAI endpoint,
// through the real SDK client and a response store of its own:
//   sequential     every run in create/update batches, each waiting for the last;
//   induce_assign  those batches on a stratified sample, the other runs
//                  assigned in parallel, the misfits updated (stages/categorize/assign.ts).
//
//   npx node bench/categorize-parallel.ts [--quality] [--scale] [--runs 10000] [--delay-ms 2000]
//       [--small 100] [--concurrency 10] [--induce 40] [--json FILE] [--one-json]
//
// Quality (--quality): the 117 runs of the bundled sample (examples/autoelicit-bench/records.json,
// the records examples/perturbed_queries is built from). The analyst puts each run in the
// category of a label: the hand labels of bench/mechanism-labels.json (unlabelled runs: the
// offline analyzer's category), or the offline analyzer's categories. It answers the same
// label whatever it is shown, or (lumping) puts a share of the runs whose label is not shown
// into a shown category of the same keyword family, as a model that is shown a taxonomy
// tends to. Printed: the adjusted Rand index between the two strategies' partitions and
// against the labels, the share of "none fits" answers, rounds and categories. The sample
// is induced from `--induce` runs (default 40: with the default 200, 117 runs are all in the
// sample and both strategies are the same flow).
//
// Scale (--scale): N = --runs runs made from the records (bench/offline-scale.ts), the
// analyst answering after --delay-ms per call, the client at --concurrency calls in flight:
//   - induce_assign at N: measured (wall time, rounds, calls);
//   - sequential at N: rounds and calls counted by running it with no delay (measured), its
//     wall time computed as rounds x the time per round measured on --small runs at the delay.
// Without a flag, both. --one-json prints one JSON line (what bench/table.ts reads).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { adjustedRandIndex, assignmentsOf } from '../stages/agreement.ts';
import { categorizeWith, sequentialRounds } from '../stages/categorize/assign.ts';
import type { InduceAssignStats, SampleKey } from '../stages/categorize/assign.ts';
import type { CategorizeStrategy } from '../stages/config.ts';
import type { CategorizeItem } from '../stages/formats.ts';
import { offlineCategorize } from '../stages/offline/categorize.ts';
import { analyst, labelOf } from '../test/helpers/analyst-fake.ts';
import { startFakeProviderServer } from '../test/helpers/fake-provider-server.ts';
import { completeOverFake, fakeOpenAiSettings } from '../test/helpers/llm-over-fake.ts';
import type { BenchRecord } from './offline-quality.ts';
import { scaledItems } from './offline-scale.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const prompt = (f: string) => readFileSync(join(ROOT, 'prompts', f), 'utf8');
const TEMPLATES = { create: prompt('categorize-create.md'), update: prompt('categorize-update.md'), assign: prompt('categorize-assign.md') };
const SIZES = { initialBatchSize: 10, iterativeBatchSize: 5, assignBatchSize: 20 };
const log = (msg: string) => process.stderr.write(`[categorize-parallel ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

interface Pass {
  strategy: CategorizeStrategy;
  seconds: number;
  /** Requests the endpoint received. */
  calls: number;
  rounds: number;
  categories: number;
  assignment: Map<string, string>;
  unassigned: number;
  stats: InduceAssignStats | null;
}

/** One pass of a strategy against a fresh analyst, endpoint and store. */
async function runPass(
  strategy: CategorizeStrategy,
  items: readonly CategorizeItem[],
  o: { label: (r: { id: string; perturbed: string }) => string; lumpShare: number; delayMs: number; concurrency: number; induce: number; sampleKey: SampleKey },
): Promise<Pass> {
  const server = await startFakeProviderServer({ maxLifetimeMs: 3_600_000 });
  const fake = analyst({ label: o.label, lumpShare: o.lumpShare, delayMs: o.delayMs });
  server.handle(fake.handler);
  const dir = mkdtempSync(join(tmpdir(), 'categorize-parallel-'));
  try {
    const complete = completeOverFake(fakeOpenAiSettings(server, { concurrency: o.concurrency, timeout_s: 120 }), dir);
    const t0 = performance.now();
    const r = await categorizeWith(strategy, items, { ...SIZES, induceSampleSize: o.induce, templates: TEMPLATES, complete, sampleKey: o.sampleKey });
    const seconds = (performance.now() - t0) / 1000;
    return {
      strategy,
      seconds,
      calls: server.requests.length,
      rounds: r.stats ? r.stats.sequential_rounds : sequentialRounds(r.batches),
      categories: r.categories.length,
      assignment: assignmentsOf(r.categories),
      unassigned: r.unassigned.length,
      stats: r.stats,
    };
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------
// Quality on the sample

interface QualityRow {
  labels: string;
  lumpShare: number;
  induce: number;
  ariBetween: number;
  ariSequential: number;
  ariParallel: number;
  noneFitsShare: number;
  roundsSequential: number;
  roundsParallel: number;
  categoriesSequential: number;
  categoriesParallel: number;
  unassigned: number;
}

function sampleItems(): { items: CategorizeItem[]; records: Map<string, BenchRecord>; hand: Map<string, string>; offline: Map<string, string> } {
  const records = JSON.parse(readFileSync(join(ROOT, 'examples/autoelicit-bench/records.json'), 'utf8')) as (BenchRecord & { domain?: string })[];
  const handFile = JSON.parse(readFileSync(join(ROOT, 'bench/mechanism-labels.json'), 'utf8')) as Record<string, string>;
  const byId = new Map<string, BenchRecord & { domain?: string }>();
  const items = records.map((r) => {
    const id = `${r.task_id}:${r.perturbed_id}:${r.refinement_model}:${r.execution_agent}`;
    byId.set(id, r);
    return {
      id,
      original_instruction: r.original_instruction ?? '',
      perturbed_instruction: r.perturbed_instruction,
      summary: `The perturbation of run ${r.perturbed_id} led the agent to a harmful action.`,
      harmful_actions: r.harmful_actions_observed ?? [],
      elicitation_strategy: r.elicitation_strategy,
      severity: r.severity,
    };
  });
  const offline = assignmentsOf(offlineCategorize(items).categories);
  const hand = new Map(items.map((i) => [i.id, handFile[i.id] ?? '']));
  return { items, records: byId, hand, offline };
}

/** The ARI of a partition against labels, over the runs with a label. */
function ariAgainst(partition: Map<string, string>, labels: Map<string, string>): number {
  return adjustedRandIndex(new Map([...labels].filter(([, l]) => l !== '')), partition);
}

async function quality(induce: number): Promise<QualityRow[]> {
  const { items, records, hand, offline } = sampleItems();
  const sampleKey: SampleKey = (item) => {
    const r = records.get(item.id) as BenchRecord & { domain?: string };
    return { stratum: `${r.domain ?? ''}|${r.execution_agent}|${r.refinement_model}`, key: item.id };
  };
  const sources: [string, (r: { id: string; perturbed: string }) => string, Map<string, string>][] = [
    ['hand labels', (r) => hand.get(r.id) || `offline: ${offline.get(r.id) ?? labelOf(r.perturbed)}`, hand],
    ['offline analyzer', (r) => offline.get(r.id) ?? labelOf(r.perturbed), offline],
  ];
  const rows: QualityRow[] = [];
  for (const [name, label, truth] of sources) {
    for (const lumpShare of [0, 0.25]) {
      log(`quality: ${name}, lumping ${lumpShare}`);
      const o = { label, lumpShare, delayMs: 0, concurrency: 10, induce, sampleKey };
      const seq = await runPass('sequential', items, o);
      const par = await runPass('induce_assign', items, o);
      const st = par.stats as InduceAssignStats;
      rows.push({
        labels: name,
        lumpShare,
        induce,
        ariBetween: adjustedRandIndex(seq.assignment, par.assignment),
        ariSequential: ariAgainst(seq.assignment, truth),
        ariParallel: ariAgainst(par.assignment, truth),
        noneFitsShare: st.assigned_runs > 0 ? st.none_fits / st.assigned_runs : 0,
        roundsSequential: seq.rounds,
        roundsParallel: par.rounds,
        categoriesSequential: seq.categories,
        categoriesParallel: par.categories,
        unassigned: seq.unassigned + par.unassigned,
      });
    }
  }
  return rows;
}

// ---------------------------------------------------------------------------
// Rounds and wall time at scale

export interface ScaleRow {
  runs: number;
  delayMs: number;
  concurrency: number;
  parallel: { seconds: number; rounds: number; calls: number; noneFits: number; misfitWaves: number; unassigned: number };
  sequential: { rounds: number; calls: number; countSeconds: number; small: number; smallRounds: number; smallSeconds: number; secondsPerRound: number; computedSeconds: number };
}

async function scale(n: number, delayMs: number, small: number, concurrency: number): Promise<ScaleRow> {
  const { items, labels } = scaledItems(n);
  const label = (r: { id: string; perturbed: string }) => labels.get(r.id) || labelOf(r.perturbed);
  const sampleKey: SampleKey = (item) => {
    const [, , rm = '', agent = ''] = item.id.replace(/#\d+$/, '').split(':');
    return { stratum: `${agent}|${rm}`, key: item.id };
  };
  const o = { label, lumpShare: 0, concurrency, induce: 200, sampleKey };
  log(`scale: induce_assign on ${n} runs at ${delayMs} ms per call, concurrency ${concurrency}`);
  const par = await runPass('induce_assign', items, { ...o, delayMs });
  const st = par.stats as InduceAssignStats;
  log(`scale: sequential on ${n} runs, no delay (counting rounds)`);
  const seqCount = await runPass('sequential', items, { ...o, delayMs: 0 });
  log(`scale: sequential on ${small} runs at ${delayMs} ms per call (time per round)`);
  const seqSmall = await runPass('sequential', items.slice(0, small), { ...o, delayMs });
  const perRound = seqSmall.seconds / seqSmall.rounds;
  return {
    runs: n,
    delayMs,
    concurrency,
    parallel: { seconds: par.seconds, rounds: par.rounds, calls: par.calls, noneFits: st.none_fits, misfitWaves: st.misfit_waves, unassigned: par.unassigned },
    sequential: {
      rounds: seqCount.rounds,
      calls: seqCount.calls,
      countSeconds: seqCount.seconds,
      small,
      smallRounds: seqSmall.rounds,
      smallSeconds: seqSmall.seconds,
      secondsPerRound: perRound,
      computedSeconds: perRound * seqCount.rounds,
    },
  };
}

const f3 = (x: number) => x.toFixed(3);
const minutes = (s: number) => (s < 120 ? `${s.toFixed(1)} s` : `${(s / 60).toFixed(1)} min`);

function printQuality(rows: QualityRow[]): string[] {
  return [
    `Quality on the bundled sample (117 runs; induce_assign induced from ${rows[0]?.induce ?? '?'} runs, assign batches of ${SIZES.assignBatchSize}; create ${SIZES.initialBatchSize}, update ${SIZES.iterativeBatchSize})`,
    '',
    '| analyst labels | lumping | ARI parallel vs sequential | ARI vs labels: sequential / parallel | "none fits" share | rounds: sequential / parallel | categories: sequential / parallel | unassigned |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) =>
      `| ${r.labels} | ${r.lumpShare} | ${f3(r.ariBetween)} | ${f3(r.ariSequential)} / ${f3(r.ariParallel)} | ${(100 * r.noneFitsShare).toFixed(1)}% | ${r.roundsSequential} / ${r.roundsParallel} | ${r.categoriesSequential} / ${r.categoriesParallel} | ${r.unassigned} |`,
    ),
  ];
}

export function scaleCell(s: ScaleRow): string {
  return (
    `induce_assign: ${s.parallel.rounds} sequential rounds, ${minutes(s.parallel.seconds)} measured (${s.parallel.calls} calls, ${s.delayMs / 1000} s each, ${s.concurrency} in flight); ` +
    `sequential: ${s.sequential.rounds} rounds counted (run without delay), ≈ ${minutes(s.sequential.computedSeconds)} computed (${s.sequential.rounds} x ${s.sequential.secondsPerRound.toFixed(2)} s per round, measured on ${s.sequential.small} runs: ${s.sequential.smallRounds} rounds in ${s.sequential.smallSeconds.toFixed(1)} s)`
  );
}

async function main(): Promise<void> {
  const { values: v } = parseArgs({
    options: {
      quality: { type: 'boolean' }, scale: { type: 'boolean' }, runs: { type: 'string' }, 'delay-ms': { type: 'string' }, small: { type: 'string' },
      concurrency: { type: 'string' }, induce: { type: 'string' }, json: { type: 'string' }, 'one-json': { type: 'boolean' },
    },
  });
  const both = !v.quality && !v.scale;
  const q = v.quality || both ? await quality(Number(v.induce ?? 40)) : null;
  const s = v.scale || both ? await scale(Number(v.runs ?? 10000), Number(v['delay-ms'] ?? 2000), Number(v.small ?? 100), Number(v.concurrency ?? 10)) : null;
  if (v['one-json']) {
    process.stdout.write(`${JSON.stringify({ quality: q, scale: s })}\n`);
    return;
  }
  const lines: string[] = [];
  if (q) lines.push(...printQuality(q), '');
  if (s) lines.push(`Categorize ${s.runs.toLocaleString('en-US')} runs against the fake at ${s.delayMs / 1000} s per call`, '', `- ${scaleCell(s)}`, '');
  process.stdout.write(`${lines.join('\n')}\n`);
  if (v.json) writeFileSync(v.json, `${JSON.stringify({ quality: q, scale: s }, null, 2)}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    console.error(`categorize-parallel: ${(err as Error).stack ?? err}`);
    process.exit(1);
  });
}
