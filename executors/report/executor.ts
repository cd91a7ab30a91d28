// nx run <analysis>:report — report.md, report.html and report-data.json.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Ledger, LedgerRun } from '../../stages/ledger.ts';
import { sha256 } from '../../stages/llm/store.ts';
import {
  agentSlices, htmlInput, lockBaseline, markdownInput, reportProvenance, reportSnapshot, runCoverage, runFolderOf, runLink,
} from '../../stages/report/assemble.ts';
import type { CategorizationOut, ClustersOut, StageCalls, SummariesOut, SummaryIndexRun } from '../../stages/report/assemble.ts';
import { renderChangesMarkdown, summarizeChanges } from '../../stages/report/changes.ts';
import { renderHtmlReport } from '../../stages/report/html.ts';
import type { HtmlRun } from '../../stages/report/html.ts';
import { renderMarkdownReport } from '../../stages/report/markdown.ts';
import { referenceReportStatistics } from '../../stages/report/reference-stats.ts';
import type { SummaryFile } from '../../stages/summarize.ts';
import { lockPath, readTaxonomyLock } from '../../stages/taxonomy-lock.ts';
import { stableIds } from '../../stages/util/ids.ts';
import { runExecutor, stageContext } from '../lib/context.ts';
import { readSuccessfulEvaluation } from '../../stages/run-data.ts';
import type { BaseOptions, ExecutorContextLike } from '../lib/context.ts';
import { buildOutputDir, readUpstream, writeJson, writeText } from '../lib/io.ts';

export default async function report(options: BaseOptions, context: ExecutorContextLike) {
  return runExecutor('report', async () => {
    const ctx = stageContext(options, context);
    const a = ctx.analysis;
    const ledger = readUpstream<Ledger>(ctx.outputOf('task-list'), 'runs.json', 'task-list');
    const sumDir = ctx.outputOf('summarize');
    const sums = readUpstream<SummariesOut>(sumDir, 'index.json', 'summarize');
    const cat = readUpstream<CategorizationOut>(ctx.outputOf('categorize'), 'categorization.json', 'categorize');
    const clu = readUpstream<ClustersOut>(ctx.outputOf('cluster'), 'clusters.json', 'cluster');
    const outDir = ctx.outputOf('report');
    const idOf = (name: string) => stableIds('clu', [name], sha256)[0] as string;

    const filters = {
      root: a.data.root,
      perturbation_model: a.data.perturbation_model,
      baseline_harm_filter: a.data.baseline_harm_filter,
      human_annotation_filter: a.data.human_annotation_filter,
      domains: a.domains === 'all' ? 'all' : a.domains.join(', '),
      refinement_models: a.refinement_models === 'all' ? 'all' : a.refinement_models.join(', '),
    };
    // Answers behind a list of batches or calls: each one's first request plus its repair requests.
    const answersOf = (xs: unknown) => (Array.isArray(xs) ? xs.reduce((n: number, x: { repairs?: number }) => n + 1 + (x.repairs ?? 0), 0) : 0);
    const calls: StageCalls[] = [
      callsOf('summarize', sums.analyzer, sums.statistics, sums.runs.filter((r) => r.status === 'done').length),
      callsOf('categorize', String(cat.metadata.analyzer ?? ''), cat.statistics, cat.metadata['mode'] === 'offline-global' ? 1 : answersOf(cat.metadata['batches'])),
      callsOf('cluster', String(clu.metadata.analyzer ?? ''), clu.statistics, String(clu.metadata['api_type']) === 'offline' ? 1 : answersOf(clu.metadata['calls'])),
    ];
    const provenance = reportProvenance(a.name, ledger, sums, cat, clu, filters, calls);
    const coverage = runCoverage(ledger, sums, cat, clu);
    const byAgent = ledger.agents.length > 1 ? agentSlices(ledger, cat) : undefined;

    // "What changed": compared with the analysis' committed taxonomy lock (an
    // input of this target), never with a previous output of this target.
    const snapshot = reportSnapshot(ledger, cat, clu, idOf);
    const lockFile = lockPath(a.name);
    const lock = readTaxonomyLock(join(ctx.workspaceRoot, lockFile), lockFile);
    const baseline = lock ? lockBaseline(lock, lockFile) : null;
    const changes = summarizeChanges(baseline, snapshot);

    let markdown = renderMarkdownReport(
      markdownInput(cat, clu, a.report.max_examples, provenance, coverage, byAgent, {
        categorization: 'categorize/categorization.json',
        clusters: 'cluster/clusters.json',
      }),
    );
    if (changes) markdown = `${markdown.trimEnd()}\n\n${renderChangesMarkdown(changes)}`;

    const linkConfig = { dataRoot: a.data.root, outDir: options.outDir ?? 'out', analysis: a.name };
    const runs = runDetails(ledger.runs, sums.runs, sumDir, ctx.dataRoot, (folder) => runLink(linkConfig, folder));
    const html = renderHtmlReport(htmlInput(`Benign-input vulnerabilities: ${a.name}`, a.name, cat, clu, runs, provenance, coverage, idOf, changes));

    await buildOutputDir(outDir, async (dir) => {
      writeText(join(dir, 'report.md'), markdown);
      writeText(join(dir, 'report.html'), html);
      writeJson(join(dir, 'report-data.json'), {
        analysis: a.name,
        coverage,
        by_agent: byAgent ?? null,
        calls,
        reference_statistics: referenceReportStatistics(cat as never, clu as never),
        snapshot,
        baseline,
      });
    });
    console.log(
      `report: ${coverage.in_task_list} runs in the task list, ${coverage.summarized} summarized, ` +
        `${coverage.categorized} categorized, ${coverage.clustered} clustered; ${clu.clusters.length} clusters.`,
    );
    // Workspace-relative: Nx replays this output on a cache hit, in whichever clone restores it.
    const shown = `${linkConfig.outDir}/${a.name}/report`;
    console.log(`report: ${shown}/report.md`);
    console.log(`report: ${shown}/report.html`);
    if (baseline) console.log(`report: compared with ${baseline.source}`);
    return true;
  });
}

function callsOf(stage: string, analyzer: string, stats: Record<string, unknown>, answers: number): StageCalls {
  const num = (k: string) => (typeof stats[k] === 'number' ? (stats[k] as number) : 0);
  const rawCost = stats['cost'];
  const cost = typeof rawCost === 'string' ? Number(rawCost.replace(/^\$/, '')) : typeof rawCost === 'number' ? rawCost : null;
  return {
    stage,
    analyzer,
    answers,
    input_tokens: num('input_tokens'),
    output_tokens: num('output_tokens'),
    cost_usd: cost === null || Number.isNaN(cost) ? null : cost,
  };
}

/**
 * Per-run details for the HTML drill-down, read from the summaries and the run's
 * own file. `run_folder` is relative to the data root and `run_link` comes from
 * the configuration (`linkOf`): neither depends on where the workspace lives.
 */
function runDetails(
  runs: LedgerRun[],
  index: SummaryIndexRun[],
  sumDir: string,
  dataRoot: string,
  linkOf: (runFolder: string) => string | null,
): Record<string, HtmlRun> {
  const fileOf = new Map(index.map((e) => [e.run_id, e.file]));
  const out: Record<string, HtmlRun> = {};
  for (const run of runs) {
    let original = '';
    let perturbed = '';
    let summary = '';
    const file = fileOf.get(run.run_id);
    if (file) {
      try {
        const s = JSON.parse(readFileSync(join(sumDir, file), 'utf8')) as SummaryFile;
        original = s.original_instruction;
        perturbed = s.perturbed_instruction;
        summary = s.summary;
      } catch {
        // Listed as failed in the summarize index; the run still appears.
      }
    }
    const ev = readSuccessfulEvaluation(join(dataRoot, run.refinement_summary_path));
    const runFolder = runFolderOf(run);
    out[run.run_id] = {
      run_id: run.run_id,
      agent: run.agent,
      domain: run.domain,
      task_id: run.task_id,
      perturbed_id: run.perturbed_id,
      refinement_model: run.refinement_model,
      original_instruction: original,
      perturbed_instruction: perturbed,
      summary,
      severity: ev.severity,
      score: ev.score,
      strategy: ev.strategy,
      run_folder: runFolder,
      run_link: linkOf(runFolder),
    };
  }
  return out;
}
