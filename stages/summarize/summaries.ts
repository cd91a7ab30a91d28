// The summaries in summarize's output, packed: one JSON Lines shard per first
// two hex digits of sha256(run id), `summaries/<xx>.jsonl` (at most 256 files
// whatever the number of runs), each line one run's summary file as compact
// JSON, lines by run id in code-point order. Nx 24 stores and restores a
// cached output file by file, so a file per run made every no-op build touch
// as many files as there are runs.
//
// index.json keeps, for each run, the shard (`file`) and the sha256 of the
// summary as the reference writes it on its own (`summaryText`: indented,
// newline-terminated): later stages' keys hash only index.json, and the
// reader checks every line against it. The reference's per-run tree is
// written by the export-summaries target (summarize/export.ts), never on the
// way to the report.
//
// The one writer (shardWriter) and the one reader (readSummaries).
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { UpstreamFormatError } from '../file-format.ts';
import { writePiecesAtomicSync } from '../util/fs.ts';
import type { SummaryFile, SummaryIndexEntry } from './format.ts';

/** The folder of the shards in summarize's output. */
export const SUMMARIES_DIR = 'summaries';

/** The reference's name of a run's summary file (the export writes one per run). */
export const SUMMARY_FILE_NAME = 'elicitation_run_summary.json';

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The shard that holds a run's summary, relative to summarize's output: `summaries/<xx>.jsonl`. */
export function shardOf(runId: string): string {
  return `${SUMMARIES_DIR}/${sha256(runId).slice(0, 2)}.jsonl`;
}

/** A summary file's text as the reference writes it on its own; index.json's `sha256` is its digest. */
export function summaryText(file: SummaryFile): string {
  return `${JSON.stringify(file, null, 2)}\n`;
}

/** The digest index.json records for a summary: sha256 of `summaryText`. */
export function summaryDigest(file: SummaryFile): string {
  return sha256(summaryText(file));
}

/** The order of a shard's lines (by run id) and of the shards: UTF-16 code units, as `<` compares strings. reuse.ts reads lines back by it. */
export const byCodePoint = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);

/** What summarize keeps of the shards while its runs finish (shardWriter). */
export interface ShardWriter {
  /** Adds a run's summary to its shard; returns the shard (index.json's `file`). */
  add(file: SummaryFile): string;
  /** Adds a run's line as an earlier output wrote it (the summary's compact JSON, no newline): kept, not made again. */
  addLine(runId: string, line: string): void;
  /**
   * Writes every shard, lines by run id, and removes the spill files; returns
   * the shards written, in code-point order, with the sha256 of each one's
   * bytes. Two summaries for one run are an error.
   */
  finish(): Map<string, string>;
}

/** Where lines wait for their shard, inside the output being built (removed by `finish`; the whole folder by a failed build). */
const SPILL_DIR = '.summaries-unsorted';

/** A shard's lines while runs finish: its run ids in the order their lines were added, the lines not yet spilled, whether its spill file exists. */
interface ShardLines {
  ids: string[];
  pending: string[];
  pendingChars: number;
  spilled: boolean;
}

/** Past this many characters of a shard's lines in memory, they are appended to its spill file. */
const SPILL_AT = 64 * 1024;

/**
 * The one writer of the shards, into the output folder `outDir` being built:
 * deterministic bytes whatever the order the runs finish in. The summaries are
 * not kept: each line is appended (a shard's lines buffered up to SPILL_AT) to
 * its shard's spill file in run-finish order, and `finish` sorts one shard at
 * a time (held in memory until the end, the lines were about 200 MiB at
 * 100,000 runs, besides the summaries). Lines are JSON.stringify's (no raw
 * newline, no lone surrogate), so they come back from the spill file unchanged.
 */
export function shardWriter(outDir: string): ShardWriter {
  const spillDir = join(outDir, SPILL_DIR);
  const shards = new Map<string, ShardLines>();
  const spillFile = (shard: string) => join(spillDir, basename(shard));
  const addLine = (runId: string, line: string): string => {
    const shard = shardOf(runId);
    let s = shards.get(shard);
    if (!s) shards.set(shard, (s = { ids: [], pending: [], pendingChars: 0, spilled: false }));
    s.ids.push(runId);
    s.pending.push(`${line}\n`);
    s.pendingChars += line.length + 1;
    if (s.pendingChars >= SPILL_AT) {
      if (!s.spilled) mkdirSync(spillDir, { recursive: true });
      appendFileSync(spillFile(shard), s.pending.join(''));
      s.spilled = true;
      s.pending = [];
      s.pendingChars = 0;
    }
    return shard;
  };
  return {
    add: (file) => addLine(file.run_id, JSON.stringify(file)),
    addLine,
    finish() {
      const written = new Map<string, string>();
      for (const shard of [...shards.keys()].sort(byCodePoint)) {
        const s = shards.get(shard) as ShardLines;
        const lines = `${s.spilled ? readFileSync(spillFile(shard), 'utf8') : ''}${s.pending.join('')}`.split('\n').slice(0, -1);
        if (lines.length !== s.ids.length) throw new Error(`summarize: ${spillFile(shard)} holds ${lines.length} lines for ${s.ids.length} runs`);
        const order = s.ids.map((_, i) => i).sort((x, y) => byCodePoint(s.ids[x]!, s.ids[y]!));
        for (let i = 1; i < order.length; i++) {
          if (s.ids[order[i]!] === s.ids[order[i - 1]!]) throw new Error(`summarize: two summaries for the run ${s.ids[order[i]!]}`);
        }
        // Line by line into the file's buffer: never the shard's text again as one string.
        const digest = createHash('sha256');
        writePiecesAtomicSync(join(outDir, shard), hashed(linesIn(lines, order), digest));
        written.set(shard, digest.digest('hex'));
        shards.delete(shard);
      }
      rmSync(spillDir, { recursive: true, force: true });
      return written;
    },
  };
}

/** The pieces, each also added to `digest` (as UTF-8, the bytes the writer writes: the lines hold no lone surrogate). */
function* hashed(pieces: Iterable<string>, digest: ReturnType<typeof createHash>): Generator<string> {
  for (const piece of pieces) {
    digest.update(piece);
    yield piece;
  }
}

function* linesIn(lines: readonly string[], order: readonly number[]): Generator<string> {
  for (const i of order) {
    yield lines[i] as string;
    yield '\n';
  }
}

/**
 * The summary of every run index.json marks done, by run id: each shard read
 * once, every line checked (JSON, an object with a run id, one line per run,
 * the run in the shard index.json names, its summary's digest equal to
 * index.json's). A damaged shard is an UpstreamFormatError naming the shard,
 * the line and what was expected.
 */
export function readSummaries(sumDir: string, index: readonly SummaryIndexEntry[], analysis = '<analysis>'): Map<string, SummaryFile> {
  const expected = new Map<string, Map<string, SummaryIndexEntry>>();
  for (const e of index) {
    if (e.status !== 'done' || e.file === null) continue;
    let runs = expected.get(e.file);
    if (!runs) expected.set(e.file, (runs = new Map()));
    runs.set(e.run_id, e);
  }
  const out = new Map<string, SummaryFile>();
  for (const [shard, runs] of expected) {
    const path = join(sumDir, shard);
    const fail = (issues: string[]) => new UpstreamFormatError(path, 'summarize', analysis, issues);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      throw fail([`cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); index.json names it for ${runs.size} run(s), e.g. ${[...runs.keys()][0]}`]);
    }
    const issues: string[] = [];
    const seen = new Set<string>();
    const lines = text.split('\n');
    if (lines.at(-1) !== '') issues.push(`line ${lines.length}: the file does not end with a newline (cut short?)`);
    lines.slice(0, -1).forEach((line, i) => {
      const at = `line ${i + 1}`;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch (err) {
        issues.push(`${at}: not JSON (${(err as Error).message})`);
        return;
      }
      const runId = typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as { run_id?: unknown }).run_id : undefined;
      if (typeof runId !== 'string') {
        issues.push(`${at}: expected a summary object with a string run_id`);
        return;
      }
      const entry = runs.get(runId);
      if (!entry) issues.push(`${at}: the run ${runId} is not one index.json places in this shard`);
      else if (seen.has(runId)) issues.push(`${at}: a second line for the run ${runId}`);
      else if (summaryDigest(value as SummaryFile) !== entry.sha256) issues.push(`${at}: the summary of ${runId} does not have the sha256 index.json records (${entry.sha256})`);
      else out.set(runId, value as SummaryFile);
      seen.add(runId);
    });
    for (const runId of runs.keys()) if (!seen.has(runId)) issues.push(`the run ${runId} is missing: index.json places its summary in this shard`);
    if (issues.length > 0) throw fail([...issues.slice(0, 10), ...(issues.length > 10 ? [`... and ${issues.length - 10} more problems`] : [])]);
  }
  return out;
}
