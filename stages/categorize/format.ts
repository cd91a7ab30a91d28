// categorize/categorization.json, its one shape: categorize writes it
// (categorize/output.ts, checked against this schema at compile time);
// cluster, report and lock-taxonomy read it, checked against this schema
// (file-format.ts). The categories are the reference format's plus run ids,
// trigger-phrase verification and stable ids.
import { z } from 'zod';
import { failedRun } from '../task-list/ledger.ts';

export const CATEGORIZATION_FILE = 'categorization.json';

const outputExample = z.object({
  id: z.string(),
  trigger_phrase: z.string().nullable(),
  justification: z.string().nullable(),
  run_id: z.string(),
  trigger_phrase_verified: z.boolean(),
});

export type OutputExample = z.infer<typeof outputExample>;

const outputCategory = z.object({
  category_name: z.string(),
  definition: z.string(),
  examples: z.array(outputExample),
  category_id: z.string(),
});

/** A category as categorization.json records it. */
export type OutputCategory = z.infer<typeof outputCategory>;

const promptFile = z.object({ file: z.string(), sha256: z.string() });

export const categorizationDocument = z.object({
  categorization: z.object({ categories: z.array(outputCategory) }),
  statistics: z.object({
    total_tasks: z.number(),
    total_categories: z.number(),
    total_examples: z.number(),
    input_tokens: z.number(),
    output_tokens: z.number(),
    total_tokens: z.number(),
    cost: z.string(),
    cost_known: z.boolean(),
    categorized_runs: z.number(),
    unassigned_runs: z.number(),
    verified_trigger_phrases: z.number(),
  }),
  // The reference's metadata and ours; what readers use is spelled out, the rest is recorded as is.
  metadata: z.looseObject({
    analyzer: z.string(),
    mode: z.string(),
    prompts: z.record(z.string(), promptFile),
    /** What `lock-taxonomy` records: the settings this taxonomy was built with. */
    built_with: z.record(z.string(), z.unknown()),
    /** run id -> digest of what the categorizer saw. */
    summary_digests: z.record(z.string(), z.string()),
    batches: z.array(z.unknown()),
  }),
  unassigned: z.array(failedRun),
});

export type CategorizationFile = z.infer<typeof categorizationDocument>;
