// pipeline.yaml: the schema, the defaults (those of the reference pipeline,
// except the provider, which is `offline` so a first run needs no key) and the
// loader whose errors name the file, the key path and what was expected.
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { endpointUrl } from './llm/endpoint-url.ts';
import { BATCH_PROVIDERS, batchSupported, PROVIDER_NAMES } from './llm/types.ts';
import type { LlmSettings, ProviderName } from './llm/types.ts';
import { STAGE_INFO } from './registry.ts';
import type { LlmStageName, StageName } from './registry.ts';

// The stages are declared in registry.ts; re-exported for the modules that read them here.
export { LLM_STAGES, STAGES } from './registry.ts';
export type { LlmStageName, StageName } from './registry.ts';

const nonEmpty = z.string().min(1);

/** How categorize builds the taxonomy with a model (stages/categorize/assign.ts). */
export const CATEGORIZE_STRATEGIES = ['sequential', 'induce_assign'] as const;
export type CategorizeStrategy = (typeof CATEGORIZE_STRATEGIES)[number];

/** LLM settings any stage may set; every field optional, filled from `defaults` then built-ins. */
const llmFields = {
  provider: z.enum(PROVIDER_NAMES as [ProviderName, ...ProviderName[]]).optional()
    .describe('Who answers: offline (deterministic lexical analyzer, no network), openai, azure, anthropic, anthropic_bedrock, openai_compatible.'),
  model: nonEmpty.optional().describe('Model id (for azure: the deployment name).'),
  temperature: z.number().min(0).max(2).optional(),
  max_tokens: z.int().positive().optional().describe('Upper bound on answer tokens.'),
  concurrency: z.int().positive().max(256).optional().describe('Calls in flight at once for this stage.'),
  base_url: z.string().url().nullable().optional().describe('Endpoint for openai_compatible servers (vLLM, Ollama, LM Studio) or a proxy.'),
  api_key_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).nullable().optional()
    .describe('Name of the environment variable holding the key, when not the provider default.'),
  timeout_s: z.number().positive().optional().describe('Seconds before one HTTP attempt is abandoned.'),
  max_retries: z.int().min(0).max(20).optional().describe('Retries of a call after 408/409/429/5xx or a timeout.'),
  max_cost_usd: z.number().positive().nullable().optional().describe('Stop the stage before it would spend more than this.'),
  batch: z.boolean().optional()
    .describe('Send the stage\'s independent requests (summaries; categorize\'s parallel assignment) through the provider\'s batch API: about half price, results within the provider\'s 24-hour window. openai and anthropic only; cluster\'s calls depend on each other and stay normal calls.'),
  batch_poll_seconds: z.number().positive().optional().describe('Batch mode: seconds between two status checks of a running batch (default 30).'),
  batch_wait_minutes: z.number().min(0).optional()
    .describe('Batch mode: minutes to wait for a running batch before the stage ends as pending, not cached (default 30; the next run polls the same batch).'),
};

const LlmDefaults = z.strictObject(llmFields);

const SummarizeStage = z.strictObject({
  ...llmFields,
  prompt: nonEmpty.optional().describe('Prompt template (Markdown, {PLACEHOLDER} style), relative to the workspace.'),
});

const CategorizeStage = z.strictObject({
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
});

const ClusterStage = z.strictObject({
  ...llmFields,
  prompt: nonEmpty.optional(),
  max_prompt_chars: z.int().positive().optional()
    .describe('Above this prompt size the categories are clustered in chunks, then the chunk clusters are merged.'),
});

const ReportStage = z.strictObject({
  max_examples: z.int().min(0).optional().describe('Trigger phrases shown per category.'),
});

const StagesSection = z.strictObject({
  summarize: SummarizeStage.optional(),
  categorize: CategorizeStage.optional(),
  cluster: ClusterStage.optional(),
  report: ReportStage.optional(),
});

const AnalysisName = z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'lower-case letters, digits, "-" and "_", starting with a letter or digit');

const Analysis = z.strictObject({
  name: AnalysisName.describe('Nx project name: targets run as `nx run <name>:report`.'),
  description: z.string().optional(),
  agents: z.array(nonEmpty).min(1).describe('Execution agents (folder names without the agent_ prefix).'),
  domains: z.union([z.literal('all'), z.array(nonEmpty).min(1)]).optional()
    .describe('"all" (every domain folder) or a list of domain folder names.'),
  refinement_models: z.union([z.literal('all'), z.array(nonEmpty).min(1)]).optional()
    .describe('"all" (discovered from folder names) or a list of refinement model folder names.'),
  allow_empty_selection: z.boolean().optional()
    .describe('Accept a selection of zero runs (task-list then succeeds with an empty ledger). Default false: zero runs stop task-list with an error, as they usually mean a misspelt agent or domain, a filter that excludes everything or an empty tree.'),
  stages: StagesSection.optional().describe('Per-analysis overrides of the top-level stage settings.'),
});

export const PipelineSchema = z.strictObject({
  $schema: z.string().optional(),
  data: z.strictObject({
    root: nonEmpty.describe('The elicitation output tree (perturbed_queries), relative to the workspace or absolute.'),
    perturbation_model: nonEmpty.optional(),
    filters: z.strictObject({
      baseline_harm: nonEmpty.nullable().optional().describe('Baseline-harm filter JSON: tasks it lists are excluded.'),
      human_annotation: nonEmpty.nullable().optional().describe('Human annotation decisions JSON: "False Positive" runs are excluded.'),
    }).optional(),
  }),
  defaults: LlmDefaults.optional().describe('LLM settings shared by every stage unless the stage sets its own.'),
  budget: z.strictObject({
    max_cost_usd: z.number().positive().nullable().optional()
      .describe('Cap on what one nx invocation (nx run or run-many) spends across all its stages and analyses, in USD.'),
  }).optional().describe('Spending caps across stages (a stage\'s own max_cost_usd still applies to it).'),
  stages: StagesSection.optional(),
  analyses: z.array(Analysis).min(1),
}).superRefine((cfg, ctx) => {
  const seen = new Set<string>();
  cfg.analyses.forEach((a, i) => {
    if (seen.has(a.name)) ctx.addIssue({ code: 'custom', path: ['analyses', i, 'name'], message: `duplicate analysis name "${a.name}"` });
    seen.add(a.name);
  });
});

export type PipelineFile = z.infer<typeof PipelineSchema>;

/** Built-in defaults: the reference pipeline's, with the offline provider. */
export const BUILTIN_LLM: Record<LlmStageName, LlmSettings> = {
  summarize: llmDefaults(32768),
  categorize: llmDefaults(32768),
  cluster: llmDefaults(64000),
};

function llmDefaults(maxTokens: number): LlmSettings {
  return {
    provider: 'offline',
    model: 'gpt-5-2025-08-07',
    temperature: 1.0,
    max_tokens: maxTokens,
    concurrency: 10,
    base_url: null,
    api_key_env: null,
    timeout_s: 600,
    max_retries: 4,
    max_cost_usd: null,
    batch: false,
    batch_poll_seconds: 30,
    batch_wait_minutes: 30,
  };
}

export const DEFAULT_PROMPTS = {
  summarize: 'prompts/summarize.md',
  categorize_create: 'prompts/categorize-create.md',
  categorize_update: 'prompts/categorize-update.md',
  categorize_assign: 'prompts/categorize-assign.md',
  cluster: 'prompts/cluster.md',
} as const;

export interface ResolvedAnalysis {
  name: string;
  description: string | null;
  agents: string[];
  domains: 'all' | string[];
  refinement_models: 'all' | string[];
  /** Zero selected runs are accepted (default: an error). */
  allow_empty_selection: boolean;
  data: {
    /** As written in pipeline.yaml (kept in outputs: never made absolute there). */
    root: string;
    perturbation_model: string;
    baseline_harm_filter: string | null;
    human_annotation_filter: string | null;
  };
  summarize: LlmSettings & { prompt: string };
  categorize: LlmSettings & {
    initial_batch_size: number;
    iterative_batch_size: number;
    strategy: CategorizeStrategy;
    induce_sample_size: number;
    assign_batch_size: number;
    prompts: { create: string; update: string; assign: string };
    resume_categorization_path: string | null;
  };
  cluster: LlmSettings & { prompt: string; max_prompt_chars: number };
  report: { max_examples: number };
  /** The invocation's cap (not part of any key: it cannot change an answer). */
  budget: { max_cost_usd: number | null };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly file: string;
  readonly issues: string[];
  constructor(file: string, issues: string[]) {
    super(`${file}: invalid configuration\n${issues.map((i) => `  - ${i}`).join('\n')}`);
    this.file = file;
    this.issues = issues;
  }
}

/** Renders a key path the way a YAML user reads it: analyses[0].stages.summarize.model */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(top level)' : out;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => `"${k}"`).join(', ');
    return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${keys} (check the spelling; see pipeline.schema.json)`;
  }
  return `${where}: ${issue.message}`;
}

/** Parses and validates pipeline.yaml text. `file` is only used in messages. */
export function parsePipeline(text: string, file: string): PipelineFile {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(file, doc.errors.map((e) => `YAML syntax: ${e.message.split('\n')[0]}`));
  }
  const raw: unknown = doc.toJS();
  const parsed = PipelineSchema.safeParse(raw ?? {});
  if (!parsed.success) throw new ConfigError(file, parsed.error.issues.map(describeIssue));
  return parsed.data;
}

export function loadPipeline(workspaceRoot: string, file = 'pipeline.yaml'): PipelineFile {
  const path = isAbsolute(file) ? file : join(workspaceRoot, file);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read the file: ${(err as Error).message}`]);
  }
  return parsePipeline(text, file);
}

type LlmOverride = z.infer<typeof LlmDefaults>;

function pickLlm(...layers: (LlmOverride | undefined)[]): LlmOverride {
  const out: Record<string, unknown> = {};
  for (const layer of layers) {
    if (!layer) continue;
    for (const key of Object.keys(llmFields)) {
      const v = (layer as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = v;
    }
  }
  return out as LlmOverride;
}

function resolveLlm(stage: LlmStageName, ...layers: (LlmOverride | undefined)[]): LlmSettings {
  const merged = { ...BUILTIN_LLM[stage], ...pickLlm(...layers) } as LlmSettings;
  if (merged.batch && merged.provider !== 'offline' && !batchSupported(merged.provider)) {
    throw new ConfigError('pipeline.yaml', [
      `stages.${stage}.batch: true (set there, in an analysis' stages or in defaults) needs a provider with a batch API we support ` +
        `(${BATCH_PROVIDERS.join(', ')}); this stage uses ${merged.provider}. Remove batch for it or choose another provider.`,
    ]);
  }
  return merged;
}

/** Fills every default for one analysis: top-level stage settings, then the analysis' overrides. */
export function resolveAnalysis(cfg: PipelineFile, name: string): ResolvedAnalysis {
  const a = cfg.analyses.find((x) => x.name === name);
  if (!a) {
    throw new ConfigError('pipeline.yaml', [`analyses: no analysis named "${name}" (have: ${cfg.analyses.map((x) => x.name).join(', ')})`]);
  }
  const top = cfg.stages ?? {};
  const own = a.stages ?? {};
  const d = cfg.defaults;
  const cat = { ...top.categorize, ...own.categorize };
  return {
    name: a.name,
    description: a.description ?? null,
    agents: [...a.agents],
    domains: a.domains ?? 'all',
    refinement_models: a.refinement_models ?? 'all',
    allow_empty_selection: a.allow_empty_selection ?? false,
    data: {
      root: cfg.data.root,
      perturbation_model: cfg.data.perturbation_model ?? 'o4-mini-2025-04-16',
      baseline_harm_filter: cfg.data.filters?.baseline_harm ?? null,
      human_annotation_filter: cfg.data.filters?.human_annotation ?? null,
    },
    summarize: {
      ...resolveLlm('summarize', d, top.summarize, own.summarize),
      prompt: own.summarize?.prompt ?? top.summarize?.prompt ?? DEFAULT_PROMPTS.summarize,
    },
    categorize: {
      ...resolveLlm('categorize', d, top.categorize, own.categorize),
      initial_batch_size: cat.initial_batch_size ?? 10,
      iterative_batch_size: cat.iterative_batch_size ?? 5,
      strategy: cat.strategy ?? 'sequential',
      induce_sample_size: cat.induce_sample_size ?? 200,
      assign_batch_size: cat.assign_batch_size ?? 20,
      prompts: {
        create: own.categorize?.prompts?.create ?? top.categorize?.prompts?.create ?? DEFAULT_PROMPTS.categorize_create,
        update: own.categorize?.prompts?.update ?? top.categorize?.prompts?.update ?? DEFAULT_PROMPTS.categorize_update,
        assign: own.categorize?.prompts?.assign ?? top.categorize?.prompts?.assign ?? DEFAULT_PROMPTS.categorize_assign,
      },
      resume_categorization_path: cat.resume_categorization_path ?? null,
    },
    cluster: {
      ...resolveLlm('cluster', d, top.cluster, own.cluster),
      prompt: own.cluster?.prompt ?? top.cluster?.prompt ?? DEFAULT_PROMPTS.cluster,
      max_prompt_chars: own.cluster?.max_prompt_chars ?? top.cluster?.max_prompt_chars ?? 300_000,
    },
    report: { max_examples: own.report?.max_examples ?? top.report?.max_examples ?? 3 },
    budget: { max_cost_usd: cfg.budget?.max_cost_usd ?? null },
  };
}

/**
 * Where each LLM setting of a stage comes from, the last layer that sets it
 * winning: `built-in`, `defaults`, `stages.<stage>`, `analyses[i].stages.<stage>`.
 * The plan prints it, so a setting that does not apply is visible before a run.
 */
export function llmSettingSources(cfg: PipelineFile, name: string, stage: LlmStageName): Record<keyof LlmSettings, string> {
  const i = cfg.analyses.findIndex((x) => x.name === name);
  const layers: [string, LlmOverride | undefined][] = [
    ['defaults', cfg.defaults],
    [`stages.${stage}`, cfg.stages?.[stage]],
    [`analyses[${i}].stages.${stage}`, cfg.analyses[i]?.stages?.[stage]],
  ];
  const out = Object.fromEntries(Object.keys(BUILTIN_LLM[stage]).map((k) => [k, 'built-in'])) as Record<keyof LlmSettings, string>;
  for (const [where, layer] of layers) {
    for (const key of Object.keys(llmFields) as (keyof LlmSettings)[]) {
      if (layer && (layer as Record<string, unknown>)[key] !== undefined) out[key] = where;
    }
  }
  return out;
}

/**
 * The settings one stage depends on, and nothing else: what its Nx hash covers.
 * Everything of pipeline.yaml that the stage's executor reads and that can
 * change its output is here (test/e2e/stage-settings.test.ts checks it). Fields
 * that cannot change an answer (concurrency, timeouts, retries, budget) are
 * left out so that tuning them never invalidates a cached result.
 */
export function stageSettings(a: ResolvedAnalysis, stage: StageName): Record<string, unknown> {
  // base_url decides which server (and so which model) answers: it is part of the key (without any user:password).
  const llm = (s: LlmSettings) => ({ provider: s.provider, model: s.model, temperature: s.temperature, max_tokens: s.max_tokens, base_url: s.base_url === null ? null : endpointUrl(s.base_url) });
  // Batch mode prices answers at the batch price (the outputs' costs change); it is in the slice only where it applies, so other keys stay as they were.
  const batched = (s: LlmSettings) => (s.batch && s.provider !== 'offline' ? { batch: true } : {});
  switch (stage) {
    case 'task-list':
      return { agents: a.agents, domains: a.domains, refinement_models: a.refinement_models, data: a.data, allow_empty_selection: a.allow_empty_selection };
    case 'summarize':
      return { ...llm(a.summarize), ...batched(a.summarize), prompt: a.summarize.prompt };
    case 'categorize':
      return {
        ...llm(a.categorize),
        // Written into the output's metadata.
        agents: a.agents,
        perturbation_model: a.data.perturbation_model,
        initial_batch_size: a.categorize.initial_batch_size,
        iterative_batch_size: a.categorize.iterative_batch_size,
        prompts: { create: a.categorize.prompts.create, update: a.categorize.prompts.update },
        resume_categorization_path: a.categorize.resume_categorization_path,
        // The sequential strategy reads none of these: they are in the slice (and in built_with) only when they are used,
        // so the keys of sequential categorizations are those they had before the strategy existed.
        ...(a.categorize.strategy === 'sequential'
          ? {}
          : {
              strategy: a.categorize.strategy,
              induce_sample_size: a.categorize.induce_sample_size,
              assign_batch_size: a.categorize.assign_batch_size,
              prompts: a.categorize.prompts,
              // Only the parallel assignment can go through a provider batch.
              ...batched(a.categorize),
            }),
      };
    case 'cluster':
      return { ...llm(a.cluster), prompt: a.cluster.prompt, max_prompt_chars: a.cluster.max_prompt_chars };
    case 'report':
      // The report states the data and selection it describes.
      return { ...a.report, data: a.data, agents: a.agents, domains: a.domains, refinement_models: a.refinement_models };
  }
}

/** Prompt files a stage reads (workspace-relative as configured): the registry's. */
export function stagePromptFiles(a: ResolvedAnalysis, stage: StageName): string[] {
  return STAGE_INFO[stage].promptFiles(a);
}

/** The JSON Schema of pipeline.yaml (generated from the zod schema), as file text. */
export function pipelineJsonSchema(): string {
  const schema = z.toJSONSchema(PipelineSchema, { target: 'draft-7', io: 'input' }) as Record<string, unknown>;
  return JSON.stringify({ title: 'pipeline.yaml of the elicitation meta-analysis', ...schema }, null, 2) + '\n';
}

/**
 * Every file and folder pipeline.yaml names for an analysis, checked before
 * any stage runs (each stage checks them all, so a missing cluster prompt
 * stops the pipeline before a paid stage runs, not after). A missing or wrong
 * kind of path is a ConfigError naming the key, the path and what was
 * expected; the previous outputs stay as they were. The taxonomy lock is not
 * named in pipeline.yaml: it is optional.
 */
export function checkNamedPaths(a: ResolvedAnalysis, resolvePath: (p: string) => string, file = 'pipeline.yaml'): void {
  const issues: string[] = [];
  for (const w of namedPaths(a)) {
    let found: 'file' | 'folder' | 'other' | null;
    try {
      const st = statSync(resolvePath(w.path));
      found = st.isFile() ? 'file' : st.isDirectory() ? 'folder' : 'other';
    } catch {
      found = null;
    }
    if (found === w.kind) continue;
    const is = found === null ? 'not found' : found === 'other' ? 'not a regular file or folder' : `a ${found}`;
    issues.push(`${w.key} (analysis "${a.name}"): ${w.path}: ${is}; expected ${w.kind === 'file' ? 'a file' : 'a folder'}: ${w.what}`);
  }
  if (issues.length > 0) throw new ConfigError(file, issues);
}

/** The paths pipeline.yaml names for an analysis (as configured), with their key and what each must be. */
export function namedPaths(a: ResolvedAnalysis): { key: string; path: string; kind: 'file' | 'folder'; what: string }[] {
  const wanted: { key: string; path: string | null; kind: 'file' | 'folder'; what: string }[] = [
    { key: 'data.root', path: a.data.root, kind: 'folder', what: 'the elicitation output tree (perturbed_queries)' },
    { key: 'data.filters.baseline_harm', path: a.data.baseline_harm_filter, kind: 'file', what: 'a baseline-harm filter JSON file' },
    { key: 'data.filters.human_annotation', path: a.data.human_annotation_filter, kind: 'file', what: 'a human-annotation decisions JSON file' },
    { key: 'stages.summarize.prompt', path: a.summarize.prompt, kind: 'file', what: 'a prompt template' },
    { key: 'stages.categorize.prompts.create', path: a.categorize.prompts.create, kind: 'file', what: 'a prompt template' },
    { key: 'stages.categorize.prompts.update', path: a.categorize.prompts.update, kind: 'file', what: 'a prompt template' },
    { key: 'stages.categorize.prompts.assign', path: a.categorize.strategy === 'induce_assign' ? a.categorize.prompts.assign : null, kind: 'file', what: 'a prompt template' },
    { key: 'stages.categorize.resume_categorization_path', path: a.categorize.resume_categorization_path, kind: 'file', what: 'a categorization JSON file' },
    { key: 'stages.cluster.prompt', path: a.cluster.prompt, kind: 'file', what: 'a prompt template' },
  ];
  return wanted.filter((w): w is typeof w & { path: string } => w.path !== null);
}

