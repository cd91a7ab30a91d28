// The files the summarize stage writes, as later stages read them: the
// summary file (the reference's shape plus our run id and request hash; packed
// into shards, summaries.ts) and index.json, with its zod schema (checked on
// read). Contracts only: a reader loads no summarize logic.
import { z } from 'zod';
import { failedRun } from '../task-list/ledger.ts';

/** summarize/index.json: the summarize stage's index file. */
export const SUMMARY_INDEX_FILE = 'index.json';

const summaryIndexEntry = z.object({
  run_id: z.string(),
  status: z.enum(['done', 'failed']),
  /** The shard holding the run's summary, relative to summarize's output (`summaries/<xx>.jsonl`, summaries.ts shardOf). */
  file: z.string().nullable(),
  request_hash: z.string().nullable(),
  /** sha256 of the summary file as the reference writes it on its own (summaries.ts summaryText): index.json changes whenever any summary does (the key of later targets hashes only this index), and the reader checks each shard line against it. */
  sha256: z.string().nullable(),
  reason: z.string().nullable(),
});

/** One run in summarize/index.json: its summary file, or why there is none. */
export type SummaryIndexEntry = z.infer<typeof summaryIndexEntry>;

/** index.json, its one shape: summarize writes it (summarize/stage.ts), categorize and report read it (checked). */
export const summaryIndexFile = z.object({
  analysis: z.string(),
  analyzer: z.string(),
  notice: z.string().optional(),
  prompt_file: z.string(),
  prompt_sha256: z.string(),
  statistics: z.object({
    total_runs: z.number(),
    summarized: z.number(),
    failed: z.number(),
    input_tokens: z.number(),
    output_tokens: z.number(),
    total_tokens: z.number(),
    cost: z.string().nullable(),
  }),
  runs: z.array(summaryIndexEntry),
  failed: z.array(failedRun),
});

export type SummaryIndexFile = z.infer<typeof summaryIndexFile>;

export interface SummaryFile {
  original_instruction: string;
  perturbed_instruction: string;
  summary: string;
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  cost: string;
  summary_metadata: {
    api_type: string;
    model_name: string;
    max_tokens: number;
    temperature: number;
    generated_at: null;
    analyzer: string;
  };
  run_id: string;
  request_hash: string;
  cost_known: boolean;
}

