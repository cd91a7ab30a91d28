// The stages of the chain, said once: which exist and in what order, the
// stage whose output each reads and the files of it it reads, what each does
// (one wording), whether it calls a model, the file that stands for its
// output, and its settings module (stages/<stage>/settings.ts: its section of
// pipeline.yaml, defaults, key slice and the files it names). Also the
// commands around the chain (plan, lock-taxonomy, export-summaries).
// Derived from it: pipeline.yaml's schema and the resolved analysis
// (config.ts), each stage's key description (stage-inputs.ts), the plugin's
// targets (dependsOn, descriptions), the plan's chain walk. Checked against
// it by test/registry.test.ts: executors/executors.json and each
// executors/<name>/schema.json.
//
// It imports the stages' settings modules and nothing else of theirs.
import { categorizeSettings } from './categorize/settings.ts';
import { clusterSettings } from './cluster/settings.ts';
import { reportSettings } from './report/settings.ts';
import type { StageSettings } from './stage-settings.ts';
import { summarizeSettings } from './summarize/settings.ts';
import { taskListSettings } from './task-list/settings.ts';

export { lockPath } from './categorize/lock-path.ts';

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
  /** Its settings: section of pipeline.yaml, defaults, key slice, the files and folders they name. */
  readonly settings: StageSettings<any, any>;
  /**
   * Every upstream file it reads (files an index names, such as the
   * summaries, are covered by that index's digests). Its key hashes exactly
   * these; reading any other upstream file fails the stage.
   */
  readonly reads: readonly UpstreamRead[];
}

export const STAGE_INFO = {
  'task-list': {
    dependsOn: null,
    description: 'Select the successful elicitation runs (one reference-format task list per agent, and the run ledger). Cached on a fingerprint of every file and folder the selection reads.',
    llm: false,
    settings: taskListSettings,
    reads: [],
  },
  summarize: {
    dependsOn: 'task-list',
    description: 'Summarize each run: how the perturbation changed the instruction and why it led to harm. The summaries are packed into at most 256 files, whatever the number of runs.',
    llm: true,
    settings: summarizeSettings,
    reads: [['task-list', 'runs.json']],
  },
  categorize: {
    dependsOn: 'summarize',
    description: 'Group the summaries into benign-input vulnerability categories with trigger phrases.',
    llm: true,
    settings: categorizeSettings,
    reads: [['task-list', 'runs.json'], ['summarize', 'index.json'], ['summarize', 'evaluations.json']],
  },
  cluster: {
    dependsOn: 'categorize',
    description: 'Merge the categories into higher-level clusters.',
    llm: true,
    settings: clusterSettings,
    reads: [['categorize', 'categorization.json']],
  },
  report: {
    dependsOn: 'cluster',
    description: 'Write the report (Markdown, HTML and its data): statistics, ranked clusters and coverage.',
    llm: false,
    settings: reportSettings,
    // categorize/heldout.json: the held-out agreement figure (categorize/heldout-render.ts turns it into the report's fragments).
    reads: [['task-list', 'runs.json'], ['summarize', 'index.json'], ['summarize', 'evaluations.json'], ['categorize', 'categorization.json'], ['categorize', 'heldout.json'], ['cluster', 'clusters.json']],
  },
} as const satisfies Record<StageName, StageInfo>;

/** The stages that may call a model, in chain order. */
export type LlmStageName = { [S in StageName]: (typeof STAGE_INFO)[S]['llm'] extends true ? S : never }[StageName];

/** The stages with a section of their own in pipeline.yaml (`stages.<stage>`): all but task-list. */
export type SectionStageName = { [S in StageName]: (typeof STAGE_INFO)[S]['settings']['section'] extends null ? never : S }[StageName];

export const isStage = (name: string): name is StageName => (STAGES as readonly string[]).includes(name);
export const isLlmStage = (name: string): name is LlmStageName => isStage(name) && STAGE_INFO[name].llm;

export const LLM_STAGES: readonly LlmStageName[] = STAGES.filter(isLlmStage);

/** Every stage upstream of `stage`, nearest last. */
export function upstreamStages(stage: StageName): StageName[] {
  const out: StageName[] = [];
  for (let s = STAGE_INFO[stage].dependsOn; s; s = STAGE_INFO[s].dependsOn) out.unshift(s);
  return out;
}



/** Commands around the chain: targets that are never cached, and whose output (if any) no target reads. */
export const COMMANDS = ['plan', 'lock-taxonomy', 'export-summaries'] as const;
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
  'export-summaries': {
    dependsOn: 'summarize',
    // The folder is EXPORT_DIR (stages/summarize/export.ts; test/registry.test.ts checks it).
    description: "Write the reference's per-run summary tree (out/<name>/summaries-export/<domain>/<task>/<pid>/<refinement model>/<agent>/elicitation_run_summary.json) from summarize's packed summaries, for the reference scripts. Never cached; no target reads it.",
  },
} as const satisfies Record<CommandName, CommandInfo>;
