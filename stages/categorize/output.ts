// categorization.json: the reference format (categories, statistics,
// metadata) plus the unassigned runs, run ids, trigger-phrase verification,
// and what `lock-taxonomy` records (summary digests, built_with).
import type { LlmTools } from '../stage-context.ts';
import { OFFLINE_NOTICE } from '../analyzer.ts';
import type { CategorizeInput } from './input.ts';
import type { Outcome } from './outcome.ts';
import type { LockBase } from './pass.ts';
import type { CategorizationFile, OutputCategory } from './format.ts';
import { stageSettings } from '../config.ts';
import type { FailedRun } from '../task-list/ledger.ts';
import { sha256 } from '../llm/store.ts';
import { summaryDigest } from './taxonomy-lock.ts';
import { withoutHeldout } from './settings.ts';

export function categorizationFile(
  t: LlmTools<unknown>,
  input: CategorizeInput,
  outcome: Outcome,
  categories: OutputCategory[],
  categorized: number,
  unassigned: FailedRun[],
) {
  return {
    categorization: { categories },
    statistics: statistics(input, outcome, categories, categorized, unassigned),
    metadata: metadata(t, input, outcome),
    unassigned,
  } satisfies CategorizationFile;
}

function statistics({ ledger }: CategorizeInput, outcome: Outcome, categories: OutputCategory[], categorized: number, unassigned: FailedRun[]) {
  return {
    total_tasks: ledger.runCount,
    total_categories: categories.length,
    total_examples: categories.reduce((n, c) => n + c.examples.length, 0),
    input_tokens: outcome.usage.input_tokens,
    output_tokens: outcome.usage.output_tokens,
    total_tokens: outcome.usage.total_tokens,
    cost: (outcome.costUsd ?? 0).toFixed(8),
    cost_known: outcome.costUsd !== null,
    categorized_runs: categorized,
    unassigned_runs: unassigned.length,
    verified_trigger_phrases: categories.reduce((n, c) => n + c.examples.filter((e) => e.trigger_phrase_verified).length, 0),
  };
}

function metadata(t: LlmTools<unknown>, { ledger, built, templates, base }: CategorizeInput, outcome: Outcome) {
  const a = t.ctx.analysis;
  const settings = a.categorize;
  const inducing = settings.strategy === 'induce_assign' && settings.provider !== 'offline';
  const prompts = {
    create: { file: settings.prompts.create, sha256: sha256(templates.create) },
    update: { file: settings.prompts.update, sha256: sha256(templates.update) },
    // The sequential strategy does not use it: left out, so its output is what it was.
    ...(settings.strategy === 'induce_assign' ? { assign: { file: settings.prompts.assign, sha256: sha256(templates.assign) } } : {}),
  };
  const runIdOf = (itemId: string) => built.runOf.get(itemId)?.run_id ?? itemId;
  return {
    task_list_path: Object.values(ledger.taskListFiles).join(', '),
    perturbation_model: a.data.perturbation_model,
    refinement_models_included: ledger.refinementModels,
    agent: a.agents.join(','),
    api_type: settings.provider,
    model_name: settings.provider === 'offline' ? 'offline-analyzer' : settings.model,
    max_tokens: settings.max_tokens,
    temperature: settings.temperature,
    initial_categorization_batch_size: settings.initial_batch_size,
    iterative_categorization_batch_size: settings.iterative_batch_size,
    ...(inducing
      ? {
          strategy: {
            name: settings.strategy,
            induce_sample_size: settings.induce_sample_size,
            assign_batch_size: settings.assign_batch_size,
            ...(outcome.induceAssign ?? {}),
          },
        }
      : {}),
    resume_categorization_path: settings.resume_categorization_path,
    resumed_from_categories: outcome.resumedFrom?.categories ?? null,
    resumed_from_metadata: outcome.resumedFrom?.metadata ?? null,
    generated_at: null,
    analyzer: t.label,
    ...(settings.provider === 'offline' ? { notice: OFFLINE_NOTICE } : {}),
    mode: outcome.mode,
    mode_reason: outcome.modeReason,
    agents: a.agents,
    prompts,
    taxonomy_lock: base ? lockSummary(base) : null,
    // What `lock-taxonomy` records: the settings this taxonomy was built with, and per run the digest of what the categorizer saw.
    // The held-out check reads the taxonomy after it is built and changes nothing of it: its settings are not among these.
    built_with: builtWith(withoutHeldout(stageSettings(a, 'categorize')), t.label, prompts),
    summary_digests: Object.fromEntries(built.items.map((i) => [runIdOf(i.id), summaryDigest(i)]).sort((x, y) => ((x[0] as string) < (y[0] as string) ? -1 : 1))),
    batches: outcome.batches,
    ...(outcome.stability ? { stability: outcome.stability } : {}),
  };
}

/**
 * Who built this taxonomy, as the lock records it: the LLM settings, analyzer
 * and prompts; for the offline analyzer only what it is (it uses no model, no
 * sampling settings and no prompt, so none is named).
 */
function builtWith(slice: Record<string, unknown>, label: string, prompts: Record<string, unknown>): Record<string, unknown> {
  if (slice['provider'] !== 'offline') return { ...slice, analyzer: label, prompts };
  return { provider: 'offline', model: null, analyzer: label, agents: slice['agents'], perturbation_model: slice['perturbation_model'] };
}

function lockSummary(base: LockBase) {
  return {
    file: base.file,
    categories: base.lock.categories.length,
    runs_kept: base.plan.kept.length,
    runs_added: base.plan.added,
    runs_changed: base.plan.changed,
    runs_removed: base.plan.removed,
  };
}
