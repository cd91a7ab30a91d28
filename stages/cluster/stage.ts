// Step 4 as a stage: merge categories into higher-level clusters (offline
// agglomerative clustering, or the LLM: stages/cluster/llm.ts), give each a
// stable id and flag the categories left in no cluster. Run by the stage
// runner (executors/lib/runner.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LlmStageDefinition, LlmTools, StageResult } from '../stage-context.ts';
import { OFFLINE_NOTICE } from '../analyzer.ts';
import { CATEGORIZATION_FILE, categorizationDocument } from '../categorize/format.ts';
import type { ClustersFile, OutputCluster } from './format.ts';
import type { OutputCategory } from '../categorize/format.ts';
import { clusterCategories, estimateClusterCalls } from './llm.ts';
import type { ClusterCall } from './llm.ts';
import type { Category, Cluster } from '../formats.ts';
import { plural } from '../util/words.ts';
import { formatUsd } from '../llm/pricing.ts';
import { sha256 } from '../llm/store.ts';
import type { Usage } from '../llm/types.ts';
import { offlineCluster } from '../offline/cluster.ts';
import { writeJson } from '../util/fs.ts';
import { stableIds } from '../util/ids.ts';
import { formatDollars } from '../util/pyformat.ts';

interface Input {
  categories: Category[];
  prompt: string;
}

interface Outcome {
  clusters: Cluster[];
  unclustered: { category_name: string; reason: string }[];
  usage: Usage;
  costUsd: number | null;
  calls: Omit<ClusterCall, 'cached'>[];
}

export const clusterStage: LlmStageDefinition<object, Input> = {
  stage: 'cluster',
  read: (t) => ({
    categories: categoriesOf(t.upstream('categorize', CATEGORIZATION_FILE, categorizationDocument).categorization.categories),
    prompt: readFileSync(t.ctx.resolvePath(t.ctx.analysis.cluster.prompt), 'utf8'),
  }),
  subject: ({ categories }) => plural(categories.length, 'category', 'categories'),
  run: clusterRun,
};

/** The categories as the clusterer sees them: name, definition, examples (no ids or verification). */
function categoriesOf(output: OutputCategory[]): Category[] {
  return output.map((c) => ({
    category_name: c.category_name,
    definition: c.definition,
    examples: c.examples.map((e) => ({ id: e.id, trigger_phrase: e.trigger_phrase, justification: e.justification })),
  }));
}

async function clusterRun({ categories, prompt }: Input, t: LlmTools<object>): Promise<StageResult> {
  const outcome = t.ctx.analysis.cluster.provider === 'offline' ? offlineOutcome(categories, t) : await llmOutcome(categories, prompt, t);
  const ids = stableIds('clu', outcome.clusters.map((c) => c.cluster_name), sha256);
  const clusters = outcome.clusters.map((c, i) => ({ ...c, cluster_id: ids[i] as string }));
  const unclustered = unclusteredOf(categories, clusters, outcome.unclustered);
  await t.output(async (dir) => writeJson(join(dir, 'clusters.json'), clustersFile(t, categories, prompt, outcome, clusters, unclustered)));
  return {
    log: { unclustered },
    summary: (logFile) => {
      const s = t.answerer.totals();
      return [
        `cluster: ${plural(categories.length, 'category', 'categories')} in ${plural(clusters.length, 'cluster', 'clusters')}` +
          `${unclustered.length ? `, ${unclustered.length} flagged (listed in the output)` : ''}; ` +
          `${plural(s.reused, 'answer', 'answers')} reused, ${s.computed} computed; spent ${formatUsd(s.paidCostUsd)} to build this output. Log: ${logFile}`,
      ];
    },
  };
}

function offlineOutcome(categories: Category[], t: LlmTools<object>): Outcome {
  const answer = t.answerer.offline('cluster', { categories }, () => offlineCluster(categories));
  return { clusters: answer.value.clusters, unclustered: [], usage: answer.usage, costUsd: answer.costUsd, calls: [] };
}

async function llmOutcome(categories: Category[], prompt: string, t: LlmTools<object>): Promise<Outcome> {
  const settings = t.ctx.analysis.cluster;
  // Progress: calls so far against the expected count, with what was reused, bought and spent.
  const expected = estimateClusterCalls(categories, prompt, settings.max_prompt_chars);
  let done = 0;
  const result = await clusterCategories(categories, {
    template: prompt,
    complete: t.answerer.complete.bind(t.answerer),
    maxPromptChars: settings.max_prompt_chars,
    onCall: (c) => {
      done += 1;
      console.log(
        `  cluster: call ${done} of about ${expected}: round ${c.round} chunk ${c.chunk + 1} (${c.names.length} categories), ` +
          `${c.cached ? 'from the store' : 'answered'}${c.repairs ? `, ${plural(c.repairs, 'repair', 'repairs')}` : ''}; ${t.answerer.progressLine(0)}`,
      );
    },
  });
  return {
    clusters: result.clusters,
    unclustered: result.unclustered,
    usage: result.usage,
    costUsd: result.costUsd,
    calls: result.calls.map(({ cached: _cached, ...rest }) => rest),
  };
}

/** The clusterer's own flags, then every category no cluster names. */
function unclusteredOf(categories: Category[], clusters: Cluster[], flagged: Outcome['unclustered']): Outcome['unclustered'] {
  const named = new Set(clusters.flatMap((c) => c.member_categories.map((m) => m.category_name)));
  return [
    ...flagged,
    ...categories.filter((c) => !named.has(c.category_name) && !flagged.some((u) => u.category_name === c.category_name))
      .map((c) => ({ category_name: c.category_name, reason: 'in no cluster' })),
  ];
}

/** clusters.json: the reference format plus the categories in no cluster. */
function clustersFile(t: LlmTools<object>, categories: Category[], prompt: string, outcome: Outcome, clusters: OutputCluster[], unclustered: Outcome['unclustered']) {
  const a = t.ctx.analysis;
  const settings = a.cluster;
  return {
    clusters,
    statistics: {
      input_categories: categories.length,
      output_clusters: clusters.length,
      input_tokens: outcome.usage.input_tokens,
      output_tokens: outcome.usage.output_tokens,
      total_tokens: outcome.usage.total_tokens,
      cost: formatDollars(outcome.costUsd ?? 0),
      cost_known: outcome.costUsd !== null,
      unclustered_categories: unclustered.length,
    },
    metadata: {
      input_path: `${a.name}/categorize/categorization.json`,
      api_type: settings.provider,
      model_name: settings.provider === 'offline' ? 'offline-analyzer' : settings.model,
      max_tokens: settings.max_tokens,
      temperature: settings.temperature,
      generated_at: null,
      analyzer: t.label,
      ...(settings.provider === 'offline' ? { notice: OFFLINE_NOTICE } : {}),
      prompt: { file: settings.prompt, sha256: sha256(prompt) },
      calls: outcome.calls,
    },
    unclustered_categories: unclustered,
  } satisfies ClustersFile;
}
