// nx run <analysis>:report — report.md, report.html and report-data.json.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import type { Ledger, LedgerRun } from '../../stages/ledger.ts';
import {
  agentSlices, chooseBaseline, htmlInput, markdownInput, reportProvenance, reportSnapshot, runCoverage,
} from '../../stages/report/assemble.ts';
import type { CategorizationOut, ClustersOut, StageCalls, SummariesOut } from '../../stages/report/assemble.ts';
import { renderChangesMarkdown, summarizeChanges } from '../../stages/report/changes.ts';
import type { ReportSnapshot } from '../../stages/report/changes.ts';
import { renderHtmlReport } from '../../stages/report/html.ts';
import type { HtmlRun } from '../../stages/report/html.ts';
import { renderMarkdownReport } from '../../stages/report/markdown.ts';
import { referenceReportStatistics } from '../../stages/report/reference-stats.ts';
import type { SummaryFile } from '../../stages/summarize.ts';
import { runExecutor, stageContext } from '../lib/context.ts';
import { readSuccessfulEvaluation } from '../lib/run-data.ts';
import type { BaseOptions, ExecutorContextLike } from '../lib/context.ts';
import { buildOutputDir, readUpstream, writeJson, writeText } from '../lib/io.ts';
import { stableId } from '../categorize/executor.ts';
import type { SummaryIndexEntry } from '../summarize/executor.ts';

export default async function report(options: BaseOptions, context: ExecutorContextLike) {
  return runExecutor('report', async () => {
    const ctx = stageContext(options, context);
    const a = ctx.analysis;
    const ledger = readUpstream<Ledger>(ctx.outputOf('task-list'), 'runs.json', 'task-list');
    const sumDir = ctx.outputOf('summarize');
    const sums = readUpstream<SummariesOut & { runs: SummaryIndexEntry[] }>(sumDir, 'index.json', 'summarize');
    const cat = readUpstream<CategorizationOut>(ctx.outputOf('categorize'), 'categorization.json', 'categorize');
    const clu = readUpstream<ClustersOut>(ctx.outputOf('cluster'), 'clusters.json', 'cluster');
    const outDir = ctx.outputOf('report');
    const idOf = (name: string) => stableId('clu', name);

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

    // "What changed": compared with the previous report of this analysis.
    const snapshot = reportSnapshot(ledger, cat, clu, idOf);
    const previous = readPrevious(join(outDir, 'report-data.json'));
    const baseline = chooseBaseline(previous, snapshot);
    const changes = summarizeChanges(baseline, snapshot);

    let markdown = renderMarkdownReport(
      markdownInput(cat, clu, a.report.max_examples, provenance, coverage, byAgent, {
        categorization: 'categorize/categorization.json',
        clusters: 'cluster/clusters.json',
      }),
    );
    if (changes) markdown = `${markdown.trimEnd()}\n\n${renderChangesMarkdown(changes)}`;

    const runs = runDetails(ledger.runs, sums.runs, sumDir, ctx.dataRoot, outDir);
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
    console.log(`report: ${join(outDir, 'report.md')}`);
    console.log(`report: ${join(outDir, 'report.html')}`);
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

function readPrevious(file: string): { snapshot: ReportSnapshot; baseline: ReportSnapshot | null } | null {
  if (!existsSync(file)) return null;
  try {
    const data = JSON.parse(readFileSync(file, 'utf8')) as { snapshot?: ReportSnapshot; baseline?: ReportSnapshot | null };
    return data.snapshot ? { snapshot: data.snapshot, baseline: data.baseline ?? null } : null;
  } catch {
    return null;
  }
}

/** Per-run details for the HTML drill-down, read from the summaries and the run's own file. */
function runDetails(runs: LedgerRun[], index: SummaryIndexEntry[], sumDir: string, dataRoot: string, outDir: string): Record<string, HtmlRun> {
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
      run_folder: relative(outDir, join(dataRoot, dirname(run.refinement_summary_path))).split('\\').join('/'),
    };
  }
  return out;
}
