// nx run <analysis>:report — the Markdown report (and its data as JSON).
import { join } from 'node:path';
import type { OutputCategory } from '../../stages/categorize.ts';
import type { FailedRun, Ledger } from '../../stages/ledger.ts';
import { renderMarkdownReport } from '../../stages/report/markdown.ts';
import type { AgentSlice, ReportInput, StageProvenance } from '../../stages/report/markdown.ts';
import { referenceReportStatistics } from '../../stages/report/reference-stats.ts';
import type { Cluster } from '../../stages/formats.ts';
import { runExecutor, stageContext } from '../lib/context.ts';
import type { BaseOptions, ExecutorContextLike } from '../lib/context.ts';
import { buildOutputDir, readUpstream, writeJson, writeText } from '../lib/io.ts';
import type { SummaryIndexEntry } from '../summarize/executor.ts';

interface CategorizationOut {
  categorization: { categories: OutputCategory[] };
  statistics: Record<string, unknown>;
  metadata: Record<string, unknown> & { analyzer: string; prompts?: Record<string, { file: string; sha256: string }> };
  unassigned: FailedRun[];
}

interface ClustersOut {
  clusters: (Cluster & { cluster_id: string })[];
  statistics: Record<string, unknown>;
  metadata: Record<string, unknown> & { analyzer: string; prompt?: { file: string; sha256: string } };
  unclustered_categories: string[];
}

export default async function report(options: BaseOptions, context: ExecutorContextLike) {
  return runExecutor('report', async () => {
    const ctx = stageContext(options, context);
    const a = ctx.analysis;
    const ledger = readUpstream<Ledger>(ctx.outputOf('task-list'), 'runs.json', 'task-list');
    const sums = readUpstream<{ runs: SummaryIndexEntry[]; failed: FailedRun[]; analyzer: string; prompt_file: string; prompt_sha256: string; statistics: Record<string, unknown> }>(
      ctx.outputOf('summarize'), 'index.json', 'summarize');
    const cat = readUpstream<CategorizationOut>(ctx.outputOf('categorize'), 'categorization.json', 'categorize');
    const clu = readUpstream<ClustersOut>(ctx.outputOf('cluster'), 'clusters.json', 'cluster');

    const input = buildReportInput(a.name, ledger, sums, cat, clu, a.report.max_examples, {
      root: a.data.root,
      perturbation_model: a.data.perturbation_model,
      baseline_harm_filter: a.data.baseline_harm_filter,
      human_annotation_filter: a.data.human_annotation_filter,
      domains: a.domains === 'all' ? 'all' : a.domains.join(', '),
      refinement_models: a.refinement_models === 'all' ? 'all' : a.refinement_models.join(', '),
    });
    const markdown = renderMarkdownReport(input);
    const outDir = ctx.outputOf('report');
    await buildOutputDir(outDir, async (dir) => {
      writeText(join(dir, 'report.md'), markdown);
      writeJson(join(dir, 'report-data.json'), {
        analysis: a.name,
        coverage: input.coverage,
        by_agent: input.byAgent,
        reference_statistics: referenceReportStatistics(cat as never, clu as never),
      });
    });
    const cov = input.coverage;
    console.log(
      `report: ${cov?.in_task_list} runs in the task list, ${cov?.summarized} summarized, ${cov?.categorized} categorized, ` +
        `${cov?.clustered} clustered, ${clu.clusters.length} clusters.`,
    );
    console.log(`report: ${join(outDir, 'report.md')}`);
    return true;
  });
}

export function buildReportInput(
  analysis: string,
  ledger: Ledger,
  sums: { runs: SummaryIndexEntry[]; failed: FailedRun[]; analyzer: string; prompt_file: string; prompt_sha256: string },
  cat: CategorizationOut,
  clu: ClustersOut,
  maxExamples: number,
  filters: Record<string, string | null>,
): ReportInput {
  const categorizedRunIds = new Set(cat.categorization.categories.flatMap((c) => c.examples.map((e) => e.run_id)));
  const clusteredNames = new Set(clu.clusters.flatMap((c) => c.member_categories.map((m) => m.category_name)));
  const clusteredRunIds = new Set(
    cat.categorization.categories.filter((c) => clusteredNames.has(c.category_name)).flatMap((c) => c.examples.map((e) => e.run_id)),
  );
  const ledgerIds = new Set(ledger.runs.map((r) => r.run_id));
  const count = (s: Set<string>) => [...s].filter((id) => ledgerIds.has(id)).length;

  const agentOf = new Map(ledger.runs.map((r) => [r.run_id, r.agent]));
  const byAgent: Record<string, AgentSlice> = {};
  for (const agent of ledger.agents) byAgent[agent] = { runs: ledger.runs.filter((r) => r.agent === agent).length, categories: {} };
  for (const c of cat.categorization.categories) {
    for (const e of c.examples) {
      const slice = byAgent[agentOf.get(e.run_id) ?? ''];
      if (slice?.categories) slice.categories[c.category_name] = (slice.categories[c.category_name] ?? 0) + 1;
    }
  }

  const stage = (name: string, analyzer: string, meta: Record<string, unknown>, prompts: Record<string, string>): StageProvenance => ({
    stage: name,
    analyzer: analyzer.startsWith('offline') ? 'offline' : 'llm',
    provider: String(meta['api_type'] ?? (analyzer.startsWith('offline') ? 'offline' : '')),
    model: String(meta['model_name'] ?? ''),
    prompts,
    settings: { answered_by: analyzer },
  });
  const catPrompts: Record<string, string> = {};
  for (const [k, v] of Object.entries(cat.metadata.prompts ?? {})) catPrompts[v.file] = v.sha256.slice(0, 12);
  const offlineUsed = [sums.analyzer, cat.metadata.analyzer, clu.metadata.analyzer].some((x) => x.startsWith('offline'));

  return {
    categorization: cat as never,
    clusters: clu as never,
    maxExamples,
    files: { categorization: 'categorize/categorization.json', clusters: 'cluster/clusters.json' },
    provenance: {
      analysis,
      stages: [
        stage('summarize', sums.analyzer, { api_type: sums.analyzer.startsWith('offline') ? 'offline' : sums.analyzer.split(':')[0], model_name: sums.analyzer.startsWith('offline') ? 'offline-analyzer' : sums.analyzer.split(':').slice(1).join(':') }, { [sums.prompt_file]: sums.prompt_sha256.slice(0, 12) }),
        stage('categorize', cat.metadata.analyzer, cat.metadata, catPrompts),
        stage('cluster', clu.metadata.analyzer, clu.metadata, clu.metadata.prompt ? { [clu.metadata.prompt.file]: clu.metadata.prompt.sha256.slice(0, 12) } : {}),
      ],
      filters: { agents: ledger.agents, ...filters },
      notes: offlineUsed
        ? ['Stages marked "offline" were produced by the offline analyzer, a deterministic lexical algorithm, not a language model. Its prompts are recorded but not used.']
        : [],
    },
    coverage: {
      in_task_list: ledger.runs.length,
      summarized: sums.runs.filter((r) => r.status === 'done').length,
      categorized: count(categorizedRunIds),
      clustered: count(clusteredRunIds),
      failed: [...sums.failed],
      unassigned: cat.unassigned.map((u) => ({ run_id: u.run_id, stage: u.stage, reason: u.reason })),
    },
    byAgent,
  };
}
