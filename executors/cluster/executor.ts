// nx run <analysis>:cluster — merge categories into higher-level clusters.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyzerLabel, OFFLINE_NOTICE } from '../../stages/analyzer.ts';
import type { OutputCategory } from '../../stages/categorize.ts';
import type { Category } from '../../stages/formats.ts';
import { sha256 } from '../../stages/llm/store.ts';
import { offlineCluster } from '../../stages/offline/cluster.ts';
import { formatDollars } from '../../stages/util/pyformat.ts';
import { createStageAnswerer } from '../lib/answerer.ts';
import type { LlmRunOptions } from '../lib/answerer.ts';
import { runExecutor, stageContext, writeRunLog } from '../lib/context.ts';
import type { BaseOptions, ExecutorContextLike } from '../lib/context.ts';
import { buildOutputDir, readUpstream, writeJson } from '../lib/io.ts';
import { stableIds } from '../../stages/categorize.ts';

export type ClusterOptions = BaseOptions & LlmRunOptions;

export default async function cluster(options: ClusterOptions, context: ExecutorContextLike) {
  return runExecutor('cluster', async () => {
    const ctx = stageContext(options, context);
    const a = ctx.analysis;
    const settings = a.cluster;
    if (settings.provider !== 'offline') {
      throw new Error(
        `provider "${settings.provider}" is not supported by the cluster stage yet; only "offline" is. ` +
          'Set stages.cluster.provider: offline in pipeline.yaml.',
      );
    }
    const cat = readUpstream<{ categorization: { categories: OutputCategory[] } }>(ctx.outputOf('categorize'), 'categorization.json', 'categorize');
    const categories: Category[] = cat.categorization.categories.map((c) => ({
      category_name: c.category_name,
      definition: c.definition,
      examples: c.examples.map((e) => ({ id: e.id, trigger_phrase: e.trigger_phrase, justification: e.justification })),
    }));
    const answerer = await createStageAnswerer(ctx, settings, options);
    if (options.dryRun) {
      console.log(`dry run: the offline provider makes no LLM calls (${categories.length} categories, no cost).`);
      return true;
    }
    const label = analyzerLabel(settings);
    console.log(`cluster: ${categories.length} categories with ${label}`);
    console.log(`  ${OFFLINE_NOTICE}`);
    const answer = answerer.offline('cluster', { categories }, () => offlineCluster(categories));
    const ids = stableIds('clu', answer.value.clusters.map((c) => c.cluster_name), sha256);
    const clusters = answer.value.clusters.map((c, i) => ({ ...c, cluster_id: ids[i] as string }));
    const named = new Set(clusters.flatMap((c) => c.member_categories.map((m) => m.category_name)));
    const unclustered = categories.map((c) => c.category_name).filter((n) => !named.has(n));
    const prompt = readFileSync(ctx.resolvePath(settings.prompt), 'utf8');

    await buildOutputDir(ctx.outputOf('cluster'), async (dir) => {
      writeJson(join(dir, 'clusters.json'), {
        clusters,
        statistics: {
          input_categories: categories.length,
          output_clusters: clusters.length,
          input_tokens: answer.usage.input_tokens,
          output_tokens: answer.usage.output_tokens,
          total_tokens: answer.usage.total_tokens,
          cost: formatDollars(answer.costUsd ?? 0),
          unclustered_categories: unclustered.length,
        },
        metadata: {
          input_path: `${ctx.analysis.name}/categorize/categorization.json`,
          api_type: settings.provider,
          model_name: 'offline-analyzer',
          max_tokens: settings.max_tokens,
          temperature: settings.temperature,
          generated_at: null,
          analyzer: label,
          notice: OFFLINE_NOTICE,
          prompt: { file: settings.prompt, sha256: sha256(prompt) },
          request_hash: answer.requestHash,
        },
        unclustered_categories: unclustered,
      });
    });
    const t = answerer.totals();
    const log = writeRunLog(ctx, 'cluster', { analysis: a.name, analyzer: label, computed: t.computed, reused: t.reused, unclustered });
    console.log(`cluster: ${categories.length} categories in ${clusters.length} clusters${unclustered.length ? `, ${unclustered.length} not in any cluster` : ''}. Log: ${log}`);
    return true;
  });
}
