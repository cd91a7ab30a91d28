// categorize's settings: the LLM fields, batch sizes, the strategy and its
// sample and batch sizes, the prompts, the resume file. It also reads the
// taxonomy lock (not named in pipeline.yaml: optional, at lockPath).
import { z } from 'zod';
import { batchedSlice, llmDefaults, llmFields, llmSlice, nonEmpty, resolveLlm } from '../llm/settings.ts';
import { pick } from '../stage-settings.ts';
import type { StageSettings } from '../stage-settings.ts';
import type { LlmSettings } from '../llm/types.ts';
import { lockPath } from './lock-path.ts';

/** How categorize builds the taxonomy with a model (stages/categorize/assign.ts). */
export const CATEGORIZE_STRATEGIES = ['sequential', 'induce_assign'] as const;
export type CategorizeStrategy = (typeof CATEGORIZE_STRATEGIES)[number];

export const CATEGORIZE_PROMPTS = {
  create: 'prompts/categorize-create.md',
  update: 'prompts/categorize-update.md',
  assign: 'prompts/categorize-assign.md',
} as const;
export const CATEGORIZE_BUILTIN: LlmSettings = llmDefaults(32768);

const section = z.strictObject({
  ...llmFields,
  initial_batch_size: z.int().positive().optional().describe('Runs in the first batch, which creates the taxonomy.'),
  iterative_batch_size: z.int().positive().optional().describe('Runs per later batch, assigned to the taxonomy or creating categories.'),
  strategy: z.enum(CATEGORIZE_STRATEGIES).optional()
    .describe('sequential (default; the reference): every run in create/update batches, each waiting for the last. induce_assign: the taxonomy is built that way on a stratified sample of induce_sample_size runs, every other run is assigned to it in parallel (assign_batch_size runs per request), and only the runs no category fits go through the sequential updater.'),
  induce_sample_size: z.int().positive().optional()
    .describe('induce_assign: runs the taxonomy is built from, sequentially (a deterministic sample, stratified by domain, agent and refinement model). Default 200.'),
  assign_batch_size: z.int().positive().optional()
    .describe('induce_assign: runs per assignment request; the requests are independent and sent in parallel. Default 20.'),
  prompts: z.strictObject({
    create: nonEmpty.optional(),
    update: nonEmpty.optional(),
    assign: nonEmpty.optional().describe('induce_assign: the assignment prompt ({CATEGORIES}, {RUNS}).'),
  }).optional(),
  resume_categorization_path: nonEmpty.nullable().optional()
    .describe('Start from this existing categorization (reference format) and add every run as update batches.'),
  heldout: z.strictObject({
    enabled: z.boolean().optional().describe('Re-assign a sample of the categorized runs against the final taxonomy, without their label, and write the agreement to heldout.json. Default true.'),
    fraction: z.number().gt(0).max(1).optional().describe('Share of the categorized runs in the sample (rounded up). Default 0.1.'),
    max_runs: z.int().positive().optional().describe('At most this many runs in the sample. Default 200.'),
    seed: nonEmpty.optional().describe('Orders the runs within each category before the sample is taken: another seed, another sample. Default "heldout".'),
  }).optional()
    .describe('The held-out agreement check (stages/categorize/heldout.ts): a stratified sample of the categorized runs is re-assigned with the assign prompt (LLM providers, assign_batch_size runs per call, through the response store) or the nearest-category rule (offline analyzer).'),
});

export type CategorizeSettings = LlmSettings & {
  initial_batch_size: number;
  iterative_batch_size: number;
  strategy: CategorizeStrategy;
  induce_sample_size: number;
  assign_batch_size: number;
  prompts: { create: string; update: string; assign: string };
  resume_categorization_path: string | null;
  heldout: HeldoutSettings;
};

/** The held-out agreement check's settings (what `heldout` in pipeline.yaml resolves to). */
export interface HeldoutSettings {
  enabled: boolean;
  /** Share of the categorized runs in the sample, rounded up. */
  fraction: number;
  /** Cap on the sample. */
  max_runs: number;
  /** Orders each category's runs before the sample is taken. */
  seed: string;
}

export const HELDOUT_DEFAULTS: HeldoutSettings = { enabled: true, fraction: 0.1, max_runs: 200, seed: 'heldout' };

/** Whether the assign prompt is read: by the induce_assign strategy, and by the held-out check of a model. */
export function usesAssignPrompt(s: Pick<CategorizeSettings, 'strategy' | 'provider' | 'heldout'>): boolean {
  return s.strategy === 'induce_assign' || (s.heldout.enabled && s.provider !== 'offline');
}

export const categorizeSettings: StageSettings<typeof section, CategorizeSettings> = {
  section,
  resolve: (layers) => {
    const prompt = (k: keyof typeof CATEGORIZE_PROMPTS) => layers.own?.prompts?.[k] ?? layers.top?.prompts?.[k] ?? CATEGORIZE_PROMPTS[k];
    return {
      ...resolveLlm('categorize', CATEGORIZE_BUILTIN, layers),
      initial_batch_size: pick(layers, 'initial_batch_size') ?? 10,
      iterative_batch_size: pick(layers, 'iterative_batch_size') ?? 5,
      strategy: pick(layers, 'strategy') ?? 'sequential',
      induce_sample_size: pick(layers, 'induce_sample_size') ?? 200,
      assign_batch_size: pick(layers, 'assign_batch_size') ?? 20,
      prompts: { create: prompt('create'), update: prompt('update'), assign: prompt('assign') },
      resume_categorization_path: pick(layers, 'resume_categorization_path') ?? null,
      heldout: {
        enabled: layers.own?.heldout?.enabled ?? layers.top?.heldout?.enabled ?? HELDOUT_DEFAULTS.enabled,
        fraction: layers.own?.heldout?.fraction ?? layers.top?.heldout?.fraction ?? HELDOUT_DEFAULTS.fraction,
        max_runs: layers.own?.heldout?.max_runs ?? layers.top?.heldout?.max_runs ?? HELDOUT_DEFAULTS.max_runs,
        seed: layers.own?.heldout?.seed ?? layers.top?.heldout?.seed ?? HELDOUT_DEFAULTS.seed,
      },
    };
  },
  slice: (s, a) => ({
    ...llmSlice(s),
    // Written into the output's metadata.
    agents: a.agents,
    perturbation_model: a.data.perturbation_model,
    initial_batch_size: s.initial_batch_size,
    iterative_batch_size: s.iterative_batch_size,
    prompts: { create: s.prompts.create, update: s.prompts.update },
    resume_categorization_path: s.resume_categorization_path,
    // The sequential strategy reads none of these: they are in the slice (and in built_with) only when they are used,
    // so the keys of sequential categorizations are those they had before the strategy existed.
    ...(s.strategy === 'sequential'
      ? {}
      : {
          strategy: s.strategy,
          induce_sample_size: s.induce_sample_size,
          assign_batch_size: s.assign_batch_size,
          prompts: s.prompts,
          // Only the parallel assignment can go through a provider batch.
          ...batchedSlice(s),
        }),
    // heldout.json depends on these; categorization.json does not (output.ts leaves them out of built_with).
    heldout: heldoutSlice(s),
  }),
  // The assign prompt only when something uses it: a sequential workspace with the check off (or offline) need not have it.
  promptFiles: (s) => [s.prompts.create, s.prompts.update, ...(usesAssignPrompt(s) ? [s.prompts.assign] : [])],
  otherFiles: (s, a) => [lockPath(a.name), ...(s.resume_categorization_path ? [s.resume_categorization_path] : [])],
  paths: (s) => [
    { key: 'stages.categorize.prompts.create', path: s.prompts.create, kind: 'file', what: 'a prompt template' },
    { key: 'stages.categorize.prompts.update', path: s.prompts.update, kind: 'file', what: 'a prompt template' },
    ...(usesAssignPrompt(s) ? [{ key: 'stages.categorize.prompts.assign', path: s.prompts.assign, kind: 'file' as const, what: 'a prompt template' }] : []),
    ...(s.resume_categorization_path ? [{ key: 'stages.categorize.resume_categorization_path', path: s.resume_categorization_path, kind: 'file' as const, what: 'a categorization JSON file' }] : []),
  ],
};

/** The key slice of the held-out check: off, or what its sample and (with a model) its requests depend on. */
function heldoutSlice(s: CategorizeSettings): Record<string, unknown> | false {
  if (!s.heldout.enabled) return false;
  return {
    fraction: s.heldout.fraction,
    max_runs: s.heldout.max_runs,
    seed: s.heldout.seed,
    // With a model: the assign requests (the LLM fields are in the slice already).
    ...(s.provider === 'offline' ? {} : { assign_batch_size: s.assign_batch_size, assign_prompt: s.prompts.assign }),
  };
}

/** The slice without the held-out check: what built the taxonomy (categorization.json's built_with). */
export function withoutHeldout(slice: Record<string, unknown>): Record<string, unknown> {
  const { heldout: _heldout, ...rest } = slice;
  return rest;
}
