// nx run <analysis>:cluster — merge categories into higher-level clusters.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzerLabel, OFFLINE_NOTICE } from '../../stages/analyzer.ts';
import type { OutputCategory } from '../../stages/categorize.ts';
import { clusterCategories, estimateClusterCalls } from '../../stages/cluster-llm.ts';
import type { ClusterCall } from '../../stages/cluster-llm.ts';
import type { Category, Cluster } from '../../stages/formats.ts';
import { sha256 } from '../../stages/llm/store.ts';
import type { Usage } from '../../stages/llm/types.ts';
import { offlineCluster } from '../../stages/offline/cluster.ts';
import { stableIds } from '../../stages/util/ids.ts';
import { formatDollars } from '../../stages/util/pyformat.ts';
import { createStageAnswerer, formatUsd } from '../lib/answerer.ts';
import type { LlmRunOptions } from '../lib/answerer.ts';
import { runExecutor, stageContext, writeRunLog } from '../lib/context.ts';
import type { BaseOptions, ExecutorContextLike } from '../lib/context.ts';
import { buildOutputDir, readUpstream, writeJson } from '../lib/io.ts';

export type ClusterOptions = BaseOptions & LlmRunOptions;

interface Outcome {
  clusters: Cluster[];
  unclustered: { category_name: string; reason: string }[];
  usage: Usage;
  costUsd: number | null;
  calls: Omit<ClusterCall, 'cached'>[];
}

export default async function cluster(options: ClusterOptions, context: ExecutorContextLike) {
  return runExecutor('cluster', async () => {
    const ctx = stageContext(options, context);
    const a = ctx.analysis;
    const settings = a.cluster;
    const cat = readUpstream<{ categorization: { categories: OutputCategory[] } }>(ctx.outputOf('categorize'), 'categorization.json', 'categorize');
    const categories: Category[] = cat.categorization.categories.map((c) => ({
      category_name: c.category_name,
      definition: c.definition,
      examples: c.examples.map((e) => ({ id: e.id, trigger_phrase: e.trigger_phrase, justification: e.justification })),
    }));
    const prompt = readFileSync(ctx.resolvePath(settings.prompt), 'utf8');
    const answerer = await createStageAnswerer(ctx, settings, options, 'cluster');
    const label = analyzerLabel(settings);
    console.log(`cluster: ${categories.length} categories with ${label}`);
    if (settings.provider === 'offline') console.log(`  ${OFFLINE_NOTICE}`);

    let outcome: Outcome;
    if (settings.provider === 'offline') {
      const answer = answerer.offline('cluster', { categories }, () => offlineCluster(categories));
      outcome = { clusters: answer.value.clusters, unclustered: [], usage: answer.usage, costUsd: answer.costUsd, calls: [] };
    } else {
      // Progress: calls so far against the expected count, with what was reused, bought and spent.
      const expected = estimateClusterCalls(categories, prompt, settings.max_prompt_chars);
      let done = 0;
      const result = await clusterCategories(categories, {
        template: prompt,
        complete: answerer.complete.bind(answerer),
        maxPromptChars: settings.max_prompt_chars,
        onCall: (c) => {
          done += 1;
          console.log(
            `  cluster: call ${done} of about ${expected}: round ${c.round} chunk ${c.chunk + 1} (${c.names.length} categories), ` +
              `${c.cached ? 'from the store' : 'answered'}${c.repairs ? `, ${c.repairs} repair(s)` : ''}; ${answerer.progressLine(0)}`,
          );
        },
      });
      outcome = {
        clusters: result.clusters,
        unclustered: result.unclustered,
        usage: result.usage,
        costUsd: result.costUsd,
        calls: result.calls.map(({ cached: _cached, ...rest }) => rest),
      };
    }
    const ids = stableIds('clu', outcome.clusters.map((c) => c.cluster_name), sha256);
    const clusters = outcome.clusters.map((c, i) => ({ ...c, cluster_id: ids[i] as string }));
    const named = new Set(clusters.flatMap((c) => c.member_categories.map((m) => m.category_name)));
    const unclustered = [
      ...outcome.unclustered,
      ...categories.filter((c) => !named.has(c.category_name) && !outcome.unclustered.some((u) => u.category_name === c.category_name))
        .map((c) => ({ category_name: c.category_name, reason: 'in no cluster' })),
    ];

    await buildOutputDir(ctx.outputOf('cluster'), async (dir) => {
      writeJson(join(dir, 'clusters.json'), {
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
          analyzer: label,
          ...(settings.provider === 'offline' ? { notice: OFFLINE_NOTICE } : {}),
          prompt: { file: settings.prompt, sha256: sha256(prompt) },
          calls: outcome.calls,
        },
        unclustered_categories: unclustered,
      });
      answerer.writeAnswers(dir);
    });
    const t = answerer.totals();
    const log = writeRunLog(ctx, 'cluster', {
      analysis: a.name, analyzer: label, computed: t.computed, reused: t.reused, carried: t.carried, refresh: answerer.refresh,
      paid_cost_usd: t.paidCostUsd, unclustered,
    });
    console.log(
      `cluster: ${categories.length} categories in ${clusters.length} clusters` +
        `${unclustered.length ? `, ${unclustered.length} flagged (listed in the output)` : ''}; ` +
        `${t.reused} answers reused, ${t.computed} computed; spent ${formatUsd(t.paidCostUsd)}. Log: ${log}`,
    );
    return true;
  });
}
