// nx run <analysis>:categorize — the taxonomy of benign-input vulnerability categories.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzerLabel, OFFLINE_NOTICE } from '../../stages/analyzer.ts';
import { buildItems, checkCoverage, decorateCategories, stableIds } from '../../stages/categorize.ts';
import { promptIds } from '../../stages/ledger.ts';
import type { Ledger, LedgerRun } from '../../stages/ledger.ts';
import { sha256 } from '../../stages/llm/store.ts';
import { offlineCategorize } from '../../stages/offline/categorize.ts';
import type { SummaryFile } from '../../stages/summarize.ts';
import { createStageAnswerer, formatUsd } from '../lib/answerer.ts';
import type { LlmRunOptions } from '../lib/answerer.ts';
import { runExecutor, stageContext, writeRunLog } from '../lib/context.ts';
import { readSuccessfulEvaluation } from '../lib/run-data.ts';
import type { BaseOptions, ExecutorContextLike } from '../lib/context.ts';
import { buildOutputDir, readUpstream, writeJson } from '../lib/io.ts';
import type { SummaryIndexEntry } from '../summarize/executor.ts';

export type CategorizeOptions = BaseOptions & LlmRunOptions;

/** The stable id of one category or cluster name (see stableIds). */
export function stableId(prefix: string, name: string): string {
  return stableIds(prefix, [name], sha256)[0] as string;
}

export default async function categorize(options: CategorizeOptions, context: ExecutorContextLike) {
  return runExecutor('categorize', async () => {
    const ctx = stageContext(options, context);
    const a = ctx.analysis;
    const settings = a.categorize;
    if (settings.provider !== 'offline') {
      throw new Error(
        `provider "${settings.provider}" is not supported by the categorize stage yet; only "offline" is. ` +
          'Set stages.categorize.provider: offline in pipeline.yaml.',
      );
    }
    const ledger = readUpstream<Ledger>(ctx.outputOf('task-list'), 'runs.json', 'task-list');
    const sumDir = ctx.outputOf('summarize');
    const sumIndex = readUpstream<{ runs: SummaryIndexEntry[] }>(sumDir, 'index.json', 'summarize');
    const entryOf = new Map(sumIndex.runs.map((e) => [e.run_id, e]));
    const idOf = promptIds(ledger.runs);

    const built = buildItems(ledger.runs, idOf, (run: LedgerRun) => {
      const entry = entryOf.get(run.run_id);
      if (!entry) return { error: 'no summary: the run is missing from the summarize index' };
      if (entry.status !== 'done' || !entry.file) return { error: `no summary: ${entry.reason ?? 'summarize failed'}` };
      const file = JSON.parse(readFileSync(join(sumDir, entry.file), 'utf8')) as SummaryFile;
      const ev = readSuccessfulEvaluation(join(ctx.dataRoot, run.refinement_summary_path));
      return { file, severity: ev.severity, harmful: ev.harmful, strategy: ev.strategy ?? '' };
    });

    const answerer = await createStageAnswerer(ctx, settings, options);
    if (options.dryRun) {
      console.log(`dry run: the offline provider makes no LLM calls (${built.items.length} runs, no cost).`);
      return true;
    }
    const label = analyzerLabel(settings);
    console.log(`categorize: ${built.items.length} summarized runs with ${label}`);
    console.log(`  ${OFFLINE_NOTICE}`);
    const answer = answerer.offline('categorize', { items: built.items }, () => offlineCategorize(built.items));
    const categories = answer.value.categories;
    const coverage = checkCoverage(categories, built.items.map((i) => i.id));
    const unassigned = [
      ...built.missing,
      ...coverage.unassigned.map((id) => ({ run_id: built.runOf.get(id)?.run_id ?? id, stage: 'categorize', reason: 'not assigned to any category' })),
    ].sort((x, y) => (x.run_id < y.run_id ? -1 : 1));
    const ids = stableIds('cat', categories.map((c) => c.category_name), sha256);
    const idByName = new Map(categories.map((c, i) => [c.category_name, ids[i] as string]));
    const decorated = decorateCategories(categories, built.items, built.runOf, (c) => idByName.get(c.category_name) as string);
    const totalExamples = decorated.reduce((n, c) => n + c.examples.length, 0);
    const verified = decorated.reduce((n, c) => n + c.examples.filter((e) => e.trigger_phrase_verified).length, 0);
    const promptText = (p: string) => sha256(readFileSync(ctx.resolvePath(p), 'utf8'));

    await buildOutputDir(ctx.outputOf('categorize'), async (dir) => {
      writeJson(join(dir, 'categorization.json'), {
        categorization: { categories: decorated },
        statistics: {
          total_tasks: ledger.runs.length,
          total_categories: decorated.length,
          total_examples: totalExamples,
          input_tokens: answer.usage.input_tokens,
          output_tokens: answer.usage.output_tokens,
          total_tokens: answer.usage.total_tokens,
          cost: (answer.costUsd ?? 0).toFixed(8),
          categorized_runs: coverage.assigned.size,
          unassigned_runs: unassigned.length,
          verified_trigger_phrases: verified,
        },
        metadata: {
          task_list_path: `${ledger.task_list_files ? Object.values(ledger.task_list_files).join(', ') : ''}`,
          perturbation_model: a.data.perturbation_model,
          refinement_models_included: [...new Set(ledger.runs.map((r) => r.refinement_model))].sort(),
          agent: a.agents.join(','),
          api_type: settings.provider,
          model_name: 'offline-analyzer',
          max_tokens: settings.max_tokens,
          temperature: settings.temperature,
          initial_categorization_batch_size: settings.initial_batch_size,
          iterative_categorization_batch_size: settings.iterative_batch_size,
          resume_categorization_path: settings.resume_categorization_path,
          resumed_from_categories: null,
          resumed_from_metadata: null,
          generated_at: null,
          analyzer: label,
          notice: OFFLINE_NOTICE,
          mode: 'offline-global',
          agents: a.agents,
          prompts: {
            create: { file: settings.prompts.create, sha256: promptText(settings.prompts.create) },
            update: { file: settings.prompts.update, sha256: promptText(settings.prompts.update) },
          },
          request_hash: answer.requestHash,
        },
        unassigned,
      });
    });
    const t = answerer.totals();
    const log = writeRunLog(ctx, 'categorize', { analysis: a.name, analyzer: label, computed: t.computed, reused: t.reused, unassigned });
    console.log(
      `categorize: ${coverage.assigned.size}/${ledger.runs.length} runs in ${decorated.length} categories` +
        `${unassigned.length ? `, ${unassigned.length} unassigned (listed in the output)` : ''}; ` +
        `${t.reused ? 'answer reused from the response store' : 'computed'}; spent ${formatUsd(t.paidCostUsd)}. Log: ${log}`,
    );
    return true;
  });
}
