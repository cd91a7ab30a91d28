// What a summarize build keeps of the previous one. At 100,000 runs a build
// after one edited run read 200,000 run files, looked up 100,000 stored
// answers and wrote every shard again, to make 99,999 summaries it already had.
//
// A run's summary, its index entry and its evaluation are functions of the
// stage's inputs other than the ledger (settings, prompt, code, packages,
// endpoint, Node: the input record, stages/input-record.ts) and of the run's
// own ledger entry: its id and the bytes of its two files, which the ledger's
// `input_digest` covers. So when the previous output's inputs.json equals the
// record this build was keyed with in everything but the ledger, a run whose
// id and input digest are the ones the previous output recorded for a done
// summary (reuse.json) gets the same line, the same index entry and the same
// evaluation it would get by being read again: they are taken from there.
// Its answer is taken from the previous answers.jsonl (the same record a store
// hit gives), so the counters, answers.jsonl and index.json's totals are the
// ones of a full build. A shard all of whose runs are kept, with no other run
// of the ledger in it, is copied whole.
//
// What is kept is checked first: each shard by the sha256 reuse.json records
// for its bytes. Anything missing, unreadable or different (no inputs.json
// outside Nx, a damaged file, another prompt, a failed run, a run whose
// answer is not carried) is computed as in a full build; nothing is kept
// under --no-store or META_ANALYSIS_REFRESH.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { formatInputRecord, INPUT_RECORD_FILE } from '../input-record.ts';
import type { InputRecord } from '../input-record.ts';
import { LEDGER_FILE } from '../task-list/ledger.ts';
import { readJsonFileSync, writeFileAtomicSync, writePiecesAtomicSync } from '../util/fs.ts';
import { jsonPieces } from '../util/json-pieces.ts';
import { EVALUATIONS_FILE, evaluationsFile } from './run-data.ts';
import type { EvaluationsFile, RunEvaluation } from './run-data.ts';
import { SUMMARY_INDEX_FILE, summaryIndexFile } from './format.ts';
import type { SummaryIndexEntry } from './format.ts';
import { byCodePoint } from './summaries.ts';

/** summarize/reuse.json: what the next build may keep. Read by summarize only (no later stage's key covers it). */
export const REUSE_FILE = 'reuse.json';

const reuseFile = z
  .object({
    /** Each summarized run's input digest (the ledger's `input_digest` its summary was made from), by run id. */
    runs: z.record(z.string(), z.string()),
    /** sha256 of each shard's bytes, by shard (index.json's `file`). */
    shards: z.record(z.string(), z.string()),
  })
  .strict();

export type ReuseFile = z.infer<typeof reuseFile>;

/** reuse.json's text pieces: runs and shards in code-point order. */
export function writeReuseFile(dir: string, runs: ReadonlyMap<string, string>, shards: ReadonlyMap<string, string>): void {
  const sorted = (m: ReadonlyMap<string, string>) => Object.fromEntries([...m.keys()].sort(byCodePoint).map((k) => [k, m.get(k) as string]));
  writePiecesAtomicSync(join(dir, REUSE_FILE), jsonPieces({ runs: sorted(runs), shards: sorted(shards) }));
}


/** The upstream file summarize's record names the ledger by (what may differ). */
const LEDGER_KEY = `task-list/${LEDGER_FILE}`;

/** A record's text without the ledger's digest: equal texts, equal inputs but the ledger. */
function withoutLedger(r: InputRecord): string {
  const upstream = { ...r.upstream };
  delete upstream[LEDGER_KEY];
  return formatInputRecord({ ...r, upstream });
}

/** The previous output, when this build may keep some of it (previousOutput). */
export interface PreviousOutput {
  /** The run's previous index entry, when its summary was done and made from `inputDigest`; else null. */
  entry(runId: string, inputDigest: string): SummaryIndexEntry | null;
  /** The run's previous evaluation (present for every run of a kept entry). */
  evaluation(runId: string): RunEvaluation | undefined;
  /** The runs of a shard, in the order of its lines (by run id). */
  shardRuns(shard: string): readonly string[];
  /** The shard's bytes, when they are the ones reuse.json records and hold a line per run; else null. */
  shardBytes(shard: string): Buffer | null;
  /** Writes a shard's bytes (from shardBytes) into the output being built in `dir`; returns their digest. */
  writeShard(shard: string, bytes: Buffer, dir: string): string;
}

/**
 * The previous output in `dir`, or null with the reason (null reason: there is
 * nothing to keep, as on a first build). `keyed` is the record this build's key
 * was computed from (null outside Nx: then nothing is kept).
 */
export function previousOutput(dir: string, keyed: InputRecord | null): { previous: PreviousOutput | null; reason: string | null } {
  if (keyed === null) return { previous: null, reason: null };
  const record = readJsonFileSync<InputRecord>(join(dir, INPUT_RECORD_FILE), { expect: 'object' });
  if (!record.ok) return { previous: null, reason: record.kind === 'missing' ? null : record.message };
  if (withoutLedger(record.value) !== withoutLedger(keyed)) return { previous: null, reason: null };
  const read = <T>(file: string, schema: z.ZodType<T>): T | string => {
    // Our own files, as large as the runs make them (index.json: 40 MB at 100,000 runs): no size limit.
    const res = readJsonFileSync<unknown>(join(dir, file), { expect: 'object', maxBytes: Number.POSITIVE_INFINITY });
    if (!res.ok) return res.message;
    const parsed = schema.safeParse(res.value);
    return parsed.success ? parsed.data : `${file}: ${parsed.error.issues[0]?.message ?? 'not the expected shape'}`;
  };
  const reuse = read(REUSE_FILE, reuseFile);
  if (typeof reuse === 'string') return { previous: null, reason: reuse };
  const index = read(SUMMARY_INDEX_FILE, summaryIndexFile);
  if (typeof index === 'string') return { previous: null, reason: index };
  const evaluations = read<EvaluationsFile>(EVALUATIONS_FILE, evaluationsFile);
  if (typeof evaluations === 'string') return { previous: null, reason: evaluations };

  const entries = new Map<string, SummaryIndexEntry>();
  const runsOf = new Map<string, string[]>();
  for (const e of index.runs) {
    if (e.status !== 'done' || e.file === null) continue;
    entries.set(e.run_id, e);
    let ids = runsOf.get(e.file);
    if (!ids) runsOf.set(e.file, (ids = []));
    ids.push(e.run_id);
  }
  // A shard's lines are in this order (summaries.ts); index.json's is the same, but sorting costs nothing to be sure.
  for (const ids of runsOf.values()) ids.sort(byCodePoint);
  const recorded = new Map(Object.entries(reuse.runs));
  const shardDigests = new Map(Object.entries(reuse.shards));
  const evaluationsById = new Map(Object.entries(evaluations.runs));
  const previous: PreviousOutput = {
    entry(runId, inputDigest) {
      const e = entries.get(runId);
      return e !== undefined && recorded.get(runId) === inputDigest && evaluationsById.has(runId) ? e : null;
    },
    evaluation: (runId) => evaluationsById.get(runId),
    shardRuns: (shard) => runsOf.get(shard) ?? [],
    shardBytes(shard) {
      const want = shardDigests.get(shard);
      if (want === undefined) return null;
      let bytes: Buffer;
      try {
        bytes = readFileSync(join(dir, shard));
      } catch {
        return null;
      }
      if (createHash('sha256').update(bytes).digest('hex') !== want) return null;
      let lines = 0;
      for (let i = bytes.indexOf(0x0a); i !== -1; i = bytes.indexOf(0x0a, i + 1)) lines += 1;
      return lines === (runsOf.get(shard)?.length ?? 0) && bytes[bytes.length - 1] === 0x0a ? bytes : null;
    },
    writeShard(shard, bytes, into) {
      // The bytes checked are the bytes written.
      mkdirSync(dirname(join(into, shard)), { recursive: true });
      writeFileAtomicSync(join(into, shard), bytes);
      return shardDigests.get(shard) as string;
    },
  };
  return { previous, reason: null };
}
