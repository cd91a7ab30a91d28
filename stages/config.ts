// pipeline.yaml: the schema, composed of the stages' own sections (each
// stage's settings module, listed by the registry), the loader whose errors
// name the file, the key path and what was expected, and the resolved
// analysis every stage runs with.
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { isAlias, isMap, isPair, isScalar, isSeq, parseDocument } from 'yaml';
import type { Document, Node as YamlNode } from 'yaml';
import { z } from 'zod';
import { ConfigError, formatPath } from './config-error.ts';
import { LLM_FIELD_NAMES, LlmDefaults, nonEmpty } from './llm/settings.ts';
import type { LlmOverride } from './llm/settings.ts';
import type { LlmSettings } from './llm/types.ts';
import { LLM_STAGES, STAGE_INFO, STAGES } from './registry.ts';
import type { LlmStageName, SectionStageName, StageName } from './registry.ts';
import type { AnalysisCommon, NamedPath, StageSettings } from './stage-settings.ts';

export { ConfigError, formatPath };
// The stages are declared in registry.ts; re-exported for the modules that read them here.
export { LLM_STAGES, STAGES } from './registry.ts';
export type { LlmStageName, StageName } from './registry.ts';
export { CATEGORIZE_STRATEGIES } from './categorize/settings.ts';
export type { CategorizeStrategy } from './categorize/settings.ts';

/** Stages with a section of their own in pipeline.yaml (`stages.<stage>`), in chain order. */
const SECTION_STAGES = STAGES.filter((s): s is SectionStageName => STAGE_INFO[s].settings.section !== null);

type SectionOf<S extends SectionStageName> = NonNullable<(typeof STAGE_INFO)[S]['settings']['section']>;
type StagesSectionShape = { [S in SectionStageName]: z.ZodOptional<SectionOf<S>> };
const StagesSection = z.strictObject(
  Object.fromEntries(SECTION_STAGES.map((s) => [s, (STAGE_INFO[s].settings.section as z.ZodType).optional()])) as StagesSectionShape,
);

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

/** The settings a stage runs with, as its module resolves them. */
export type OwnSettings<S extends SectionStageName> = (typeof STAGE_INFO)[S]['settings'] extends StageSettings<infer _Section, infer Own> ? Own : never;

/** An analysis with every default filled: what every stage reads, and each stage's own settings. */
export type ResolvedAnalysis = AnalysisCommon & { [S in SectionStageName]: OwnSettings<S> } & {
  /** The invocation's cap (not part of any key: it cannot change an answer). */
  budget: { max_cost_usd: number | null };
};

/** Built-in LLM settings of each answered stage (from its settings module). */
export const BUILTIN_LLM: Record<LlmStageName, LlmSettings> = Object.fromEntries(
  LLM_STAGES.map((s) => [s, STAGE_INFO[s].settings.resolve({ defaults: undefined, top: undefined, own: undefined }) as LlmSettings]),
) as Record<LlmStageName, LlmSettings>;

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => `"${k}"`).join(', ');
    return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${keys} (check the spelling; see pipeline.schema.json)`;
  }
  return `${where}: ${issue.message}`;
}

/** How many values all the aliases of one YAML file may stand for together. */
export const MAX_ALIAS_VALUES = 10_000;

/**
 * The first alias problem of a YAML document, with the key path of the alias,
 * or null. An alias stands for a copy of its anchor's value, aliases inside
 * that value included, so a few lines can stand for billions of values (the
 * "billion laughs"); the yaml library rejects that but says neither where nor
 * why. Walks in document order, as the library resolves: an alias refers to
 * the last anchor of its name before it; the alias that brings the running
 * total of expanded values past MAX_ALIAS_VALUES is the one named.
 */
function checkAliases(doc: Document): string | null {
  const anchors = new Map<string, YamlNode>();
  const targetOf = new Map<YamlNode, YamlNode>();
  const sizes = new Map<YamlNode, number>();
  const open = new Set<YamlNode>();
  let expanded = 0;
  // Values a node stands for once its aliases are expanded (aliases inside an
  // anchored value were resolved while walking it, before any alias to it).
  const sizeOf = (node: unknown): number => {
    if (isAlias(node)) return sizeOf(targetOf.get(node));
    if (!isMap(node) && !isSeq(node)) return isScalar(node) ? 1 : 0;
    const known = sizes.get(node);
    if (known !== undefined) return known;
    let n = 1;
    for (const item of node.items) n += isPair(item) ? sizeOf(item.key) + sizeOf(item.value) : sizeOf(item);
    sizes.set(node, n);
    return n;
  };
  const walk = (node: unknown, path: PropertyKey[]): string | null => {
    if (isAlias(node)) {
      const where = formatPath(path);
      const target = anchors.get(node.source);
      if (target === undefined) return `${where}: the alias *${node.source} comes before any anchor &${node.source} (an anchor must be set before its aliases)`;
      if (open.has(target)) return `${where}: the alias *${node.source} is inside the value anchored as &${node.source} (a value cannot contain itself)`;
      targetOf.set(node, target);
      expanded += sizeOf(target);
      if (expanded > MAX_ALIAS_VALUES) {
        return `${where}: too many alias expansions (YAML aliases may stand for at most ${MAX_ALIAS_VALUES} values in all; *${node.source} brings them past it); write the values out`;
      }
      return null;
    }
    if (!isMap(node) && !isSeq(node)) {
      if (isScalar(node) && node.anchor) anchors.set(node.anchor, node);
      return null;
    }
    if (node.anchor) anchors.set(node.anchor, node);
    open.add(node);
    try {
      for (const [i, item] of node.items.entries()) {
        if (!isPair(item)) {
          const problem = walk(item, [...path, i]);
          if (problem !== null) return problem;
          continue;
        }
        const key = isScalar(item.key) ? item.key.value : item.key;
        const keyProblem = walk(item.key, path);
        if (keyProblem !== null) return keyProblem;
        const problem = walk(item.value, [...path, typeof key === 'string' || typeof key === 'number' ? String(key) : i]);
        if (problem !== null) return problem;
      }
    } finally {
      open.delete(node);
    }
    return null;
  };
  return walk(doc.contents, []);
}

/** Parses and validates pipeline.yaml text. `file` is only used in messages. */
export function parsePipeline(text: string, file: string): PipelineFile {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(file, doc.errors.map((e) => `YAML syntax: ${e.message.split('\n')[0]}`));
  }
  const aliasProblem = checkAliases(doc);
  if (aliasProblem !== null) throw new ConfigError(file, [aliasProblem]);
  // checkAliases bounds what aliases expand to, so the library's own counter
  // (per anchor, 100 uses, and a bare ReferenceError) is switched off.
  const raw: unknown = doc.toJS({ maxAliasCount: -1 });
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

/** Fills every default for one analysis: each stage's module resolves its section (top level, then the analysis' overrides). */
export function resolveAnalysis(cfg: PipelineFile, name: string): ResolvedAnalysis {
  const a = cfg.analyses.find((x) => x.name === name);
  if (!a) {
    throw new ConfigError('pipeline.yaml', [`analyses: no analysis named "${name}" (have: ${cfg.analyses.map((x) => x.name).join(', ')})`]);
  }
  const common: AnalysisCommon = {
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
  };
  const own = Object.fromEntries(
    SECTION_STAGES.map((s) => {
      const settings = STAGE_INFO[s].settings as StageSettings<z.ZodType, unknown>;
      return [s, settings.resolve({ defaults: cfg.defaults, top: cfg.stages?.[s], own: a.stages?.[s] } as never)];
    }),
  ) as { [S in SectionStageName]: OwnSettings<S> };
  return { ...common, ...own, budget: { max_cost_usd: cfg.budget?.max_cost_usd ?? null } };
}

/** A stage's own settings (empty for a stage without a section) and its settings module. */
function settingsOf(a: ResolvedAnalysis, stage: StageName): { own: unknown; settings: StageSettings<z.ZodType | null, unknown> } {
  const settings = STAGE_INFO[stage].settings as StageSettings<z.ZodType | null, unknown>;
  return { own: settings.section === null ? {} : a[stage as SectionStageName], settings };
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
    for (const key of LLM_FIELD_NAMES) {
      if (layer && (layer as Record<string, unknown>)[key] !== undefined) out[key] = where;
    }
  }
  return out;
}

/**
 * The settings one stage depends on, and nothing else: what its key covers
 * (its module's `slice`). test/e2e/stage-settings.test.ts checks that a
 * setting outside it cannot change the stage's output.
 */
export function stageSettings(a: ResolvedAnalysis, stage: StageName): Record<string, unknown> {
  const { own, settings } = settingsOf(a, stage);
  return settings.slice(own, a);
}

/** Prompt files a stage reads (workspace-relative as configured). */
export function stagePromptFiles(a: ResolvedAnalysis, stage: StageName): string[] {
  const { own, settings } = settingsOf(a, stage);
  return settings.promptFiles(own, a);
}

/** Files pipeline.yaml names (or implies) that a stage reads: its prompts, then the others, in order, each once. */
export function namedFiles(a: ResolvedAnalysis, stage: StageName): string[] {
  const { own, settings } = settingsOf(a, stage);
  return [...new Set([...settings.promptFiles(own, a), ...settings.otherFiles(own, a)])];
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

/** The paths pipeline.yaml names for an analysis (as configured), with their key and what each must be: each stage's, in chain order. */
export function namedPaths(a: ResolvedAnalysis): NamedPath[] {
  return STAGES.flatMap((s) => {
    const { own, settings } = settingsOf(a, s);
    return settings.paths(own, a);
  });
}
