// The stages of the chain, said once: which exist and in what order, the
// stage whose output each reads, what each does (one wording), whether it
// calls a model, the file that stands for its output, and the prompt files
// it reads. Also the two commands around the chain (plan, lock-taxonomy).
// Derived from it: the plugin's targets (dependsOn, descriptions, the upstream
// index glob), the input record, the plan's chain walk, STAGES and
// LLM_STAGES in config.ts. Checked against it by test/registry.test.ts:
// executors/executors.json and each executors/<name>/schema.json.
//
// A stage's settings slice (what its Nx key covers) is `stageSettings` in
// config.ts, a switch over StageName, so the compiler asks for a case when a
// stage is added here.
//
// What a stage's key covers (stages/stage-inputs.ts) comes from here too: the
// files pipeline.yaml names for it (`namedFiles`) and the files of upstream
// outputs it reads (`reads`; the runner refuses a read that is not declared).
//
// A leaf: it imports no stage's code, only the type of a resolved analysis.
import type { ResolvedAnalysis } from './config.ts';

/** Workspace-relative path of an analysis' taxonomy lock (inside its Nx project root; written by lock-taxonomy). */
export function lockPath(analysis: string): string {
  return `analyses/${analysis}/taxonomy.lock.json`;
}

/** One file of an upstream output that a stage reads: `[stage, file name at the top of its output]`. */
export type UpstreamRead = readonly [StageName, string];

/** The chain, in order. */
export const STAGES = ['task-list', 'summarize', 'categorize', 'cluster', 'report'] as const;
export type StageName = (typeof STAGES)[number];

export interface StageInfo {
  /** The stage whose output it reads (the chain's edge), null for the first. */
  readonly dependsOn: StageName | null;
  /** What it does: the target's metadata, executors.json and its schema.json. */
  readonly description: string;
  /** Whether it may call a model: its settings are LLM settings and its provider's endpoint is an input. */
  readonly llm: boolean;
  /**
   * The one small file of its output that stands for all of it: what later
   * targets hash of it (UPSTREAM_INDEX_FILES in the plugin) and what the
   * input record digests.
   */
  readonly indexFile: string;
  /** Prompt files it reads, as pipeline.yaml names them (workspace-relative as configured). */
  readonly promptFiles: (a: ResolvedAnalysis) => string[];
  /** Other files it reads that pipeline.yaml names or implies (filters, the resume file, the lock): hashed by content like the prompts. */
  readonly otherFiles: (a: ResolvedAnalysis) => string[];
  /**
   * Every upstream file it reads (files an index names, such as the
   * summaries, are covered by that index's digests). Its key hashes exactly
   * these; reading any other upstream file fails the stage.
   */
  readonly reads: readonly UpstreamRead[];
}

const none = (): string[] => [];

export const STAGE_INFO = {
  'task-list': {
    dependsOn: null,
    description: 'Select the successful elicitation runs (one reference-format task list per agent, and the run ledger). Cached on a fingerprint of every file and folder the selection reads.',
    llm: false,
    // The ledger: per run, the digest of the data files later stages read.
    indexFile: 'runs.json',
    promptFiles: none,
    otherFiles: (a) => [a.data.baseline_harm_filter, a.data.human_annotation_filter].filter((f): f is string => f !== null),
    reads: [],
  },
  summarize: {
    dependsOn: 'task-list',
    description: 'Summarize each run: how the perturbation changed the instruction and why it led to harm. One file per run.',
    llm: true,
    // Per run, the sha256 of its summary file.
    indexFile: 'index.json',
    promptFiles: (a) => [a.summarize.prompt],
    otherFiles: none,
    reads: [['task-list', 'runs.json']],
  },
  categorize: {
    dependsOn: 'summarize',
    description: 'Group the summaries into benign-input vulnerability categories with trigger phrases.',
    llm: true,
    // All of what cluster and report read of categorize.
    indexFile: 'categorization.json',
    // The assign prompt only when the strategy uses it: a sequential workspace need not have it.
    promptFiles: (a) => [a.categorize.prompts.create, a.categorize.prompts.update, ...(a.categorize.strategy === 'induce_assign' ? [a.categorize.prompts.assign] : [])],
    otherFiles: (a) => [lockPath(a.name), ...(a.categorize.resume_categorization_path ? [a.categorize.resume_categorization_path] : [])],
    reads: [['task-list', 'runs.json'], ['summarize', 'index.json'], ['summarize', 'evaluations.json']],
  },
  cluster: {
    dependsOn: 'categorize',
    description: 'Merge the categories into higher-level clusters.',
    llm: true,
    // All of what report reads of cluster.
    indexFile: 'clusters.json',
    promptFiles: (a) => [a.cluster.prompt],
    otherFiles: none,
    reads: [['categorize', 'categorization.json']],
  },
  report: {
    dependsOn: 'cluster',
    description: 'Write the report (Markdown, HTML and its data): statistics, ranked clusters and coverage.',
    llm: false,
    // Read by no later target.
    indexFile: 'report.md',
    promptFiles: none,
    // The report's "what changed" compares with the lock.
    otherFiles: (a) => [lockPath(a.name)],
    reads: [['task-list', 'runs.json'], ['summarize', 'index.json'], ['summarize', 'evaluations.json'], ['categorize', 'categorization.json'], ['cluster', 'clusters.json']],
  },
} as const satisfies Record<StageName, StageInfo>;

/** The stages that may call a model, in chain order. */
export type LlmStageName = { [S in StageName]: (typeof STAGE_INFO)[S]['llm'] extends true ? S : never }[StageName];

export const isStage = (name: string): name is StageName => (STAGES as readonly string[]).includes(name);
export const isLlmStage = (name: string): name is LlmStageName => isStage(name) && STAGE_INFO[name].llm;

export const LLM_STAGES: readonly LlmStageName[] = STAGES.filter(isLlmStage);

/** Every stage upstream of `stage`, nearest last. */
export function upstreamStages(stage: StageName): StageName[] {
  const out: StageName[] = [];
  for (let s = STAGE_INFO[stage].dependsOn; s; s = STAGE_INFO[s].dependsOn) out.unshift(s);
  return out;
}

/** In every stage's output: the record its key was computed from (stages/input-record.ts), read by the plan only. */
export const INPUT_RECORD_FILE = 'inputs.json';

/** Files pipeline.yaml names (or implies) that a stage reads: its prompts, then the others, in order, each once. */
export function namedFiles(a: ResolvedAnalysis, stage: StageName): string[] {
  return [...new Set([...STAGE_INFO[stage].promptFiles(a), ...STAGE_INFO[stage].otherFiles(a)])];
}

/** Commands around the chain: targets that are never cached and write no build output. */
export const COMMANDS = ['plan', 'lock-taxonomy'] as const;
export type CommandName = (typeof COMMANDS)[number];

export interface CommandInfo {
  /** The stage it runs after, null when it runs none. */
  readonly dependsOn: StageName | null;
  readonly description: string;
}

export const COMMAND_INFO = {
  plan: {
    dependsOn: null,
    description: 'Which targets would run and why, and what the chain would pay for: answers already stored, calls to buy, estimated tokens and dollars. Never cached; calls no provider; runs no stage.',
  },
  'lock-taxonomy': {
    dependsOn: 'categorize',
    // The path is lockPath('<name>') (stages/categorize/taxonomy-lock.ts; test/registry.test.ts checks it).
    description: 'Record the current categorization as the committed taxonomy lock (analyses/<name>/taxonomy.lock.json) that later categorizations build on.',
  },
} as const satisfies Record<CommandName, CommandInfo>;
