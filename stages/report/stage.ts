// Step 5 as a stage: report.md, report.html and report-data.json from the
// upstream outputs. Run by the stage runner (executors/lib/runner.ts).
import { join } from 'node:path';
import { CATEGORIZATION_FILE, categorizationDocument } from '../categorize/format.ts';
import { CLUSTERS_FILE, clustersDocument } from '../cluster/format.ts';
import { LEDGER_FILE, ledgerFile } from '../task-list/ledger.ts';
import type { Ledger } from '../task-list/ledger.ts';
import { EVALUATIONS_FILE, evaluationsFile } from '../summarize/run-data.ts';
import type { EvaluationsFile } from '../summarize/run-data.ts';
import { sha256 } from '../llm/store.ts';
import type { StageDefinition, StageResult, StageTools } from '../stage-context.ts';
import { SUMMARY_INDEX_FILE, summaryIndexFile } from '../summarize/format.ts';
import type { SummaryFile } from '../summarize/format.ts';
import { readSummaries } from '../summarize/summaries.ts';
import { readAnalysisLock } from '../categorize/taxonomy-lock.ts';
import { writeFileAtomicSync, writeJson, writeTextAtomicSync } from '../util/fs.ts';
import { stableIds } from '../util/ids.ts';
import type { CategorizationOut, ClustersOut, SummariesOut } from './assemble.ts';
import { agentSlices, htmlInput, lockBaseline, markdownInput, qualityInput, reportProvenance, reportSnapshot, runCategories, runCoverage, runLink, stageCalls } from './assemble.ts';
import { renderChangesMarkdown, summarizeChanges } from './changes.ts';
import type { ReportBaseline } from './changes.ts';
import { writeHtmlReport } from './html.ts';
import { renderMarkdownReport } from './markdown.ts';
import { referenceReportStatistics } from './reference-stats.ts';
import { runDetails } from './run-details.ts';
import { computeQuality } from './quality/compute.ts';
import { renderQualityMarkdown } from './quality/markdown.ts';
import { HELDOUT_FILE, heldoutDocument } from '../categorize/heldout.ts';
import type { HeldoutDocument } from '../categorize/heldout.ts';

interface Input {
  ledger: Ledger;
  sums: SummariesOut;
  /** Each summarized run's summary, by run id (summarize's shards, checked against its index). */
  summaries: Map<string, SummaryFile>;
  cat: CategorizationOut;
  clu: ClustersOut;
  evaluations: EvaluationsFile;
  /** categorize's held-out re-assignment, shown in the quality section. */
  heldout: HeldoutDocument;
  /** "What changed" is compared with the analysis' committed taxonomy lock (an input of this target), never with a previous report. */
  baseline: ReportBaseline | null;
}

export const reportStage: StageDefinition<object, Input> = {
  stage: 'report',
  read: (t) => {
    const sums = t.upstream('summarize', SUMMARY_INDEX_FILE, summaryIndexFile);
    return {
      ledger: t.upstream('task-list', LEDGER_FILE, ledgerFile),
      sums,
      summaries: readSummaries(t.ctx.outputOf('summarize'), sums.runs, t.ctx.analysis.name),
      cat: t.upstream('categorize', CATEGORIZATION_FILE, categorizationDocument),
      clu: t.upstream('cluster', CLUSTERS_FILE, clustersDocument),
      evaluations: t.upstream('summarize', EVALUATIONS_FILE, evaluationsFile),
      heldout: t.upstream('categorize', HELDOUT_FILE, heldoutDocument),
      baseline: baselineOf(t),
    };
  },
  run: reportRun,
};

function baselineOf(t: StageTools<object>): ReportBaseline | null {
  const found = readAnalysisLock(t.ctx.workspaceRoot, t.ctx.analysis.name);
  return found ? lockBaseline(found.lock, found.file) : null;
}

async function reportRun(input: Input, t: StageTools<object>): Promise<StageResult> {
  const { ledger, sums, cat, clu, evaluations, baseline } = input;
  const a = t.ctx.analysis;
  const idOf = (name: string) => stableIds('clu', [name], sha256)[0] as string;
  const calls = stageCalls(sums, cat, clu);
  const provenance = reportProvenance(a.name, ledger, sums, cat, clu, filtersOf(t), calls);
  const coverage = runCoverage(ledger, sums, cat, clu);
  const byAgent = ledger.agents.length > 1 ? agentSlices(ledger, cat) : undefined;
  const snapshot = reportSnapshot(ledger, cat, clu, idOf);
  const changes = summarizeChanges(baseline, snapshot, runCategories(cat));

  const linkConfig = { dataRoot: a.data.root, outDir: t.options.outDir ?? 'out', analysis: a.name };
  const runs = runDetails(ledger.runs, input.summaries, evaluations, (folder) => runLink(linkConfig, folder));
  const quality = computeQuality(qualityInput(ledger, sums, cat, clu, runs, idOf, input.heldout));

  let markdown = renderMarkdownReport(
    markdownInput(cat, clu, a.report.max_examples, provenance, coverage, byAgent, {
      categorization: 'categorize/categorization.json',
      clusters: 'cluster/clusters.json',
    }),
  );
  markdown = `${markdown.trimEnd()}\n\n${renderQualityMarkdown(quality).join('\n').trimEnd()}\n`;
  if (changes) markdown = `${markdown.trimEnd()}\n\n${renderChangesMarkdown(changes)}`;

  const html = { ...htmlInput(`Benign-input vulnerabilities: ${a.name}`, a.name, cat, clu, runs, provenance, coverage, idOf, changes), quality };

  await t.output(async (dir) => {
    writeFileAtomicSync(join(dir, 'report.md'), markdown);
    // Written as it is rendered: at 100,000 runs the page is hundreds of MB.
    writeTextAtomicSync(join(dir, 'report.html'), (write) => writeHtmlReport(html, write));
    writeJson(join(dir, 'report-data.json'), {
      analysis: a.name,
      coverage,
      by_agent: byAgent ?? null,
      calls,
      reference_statistics: referenceReportStatistics(cat as never, clu as never),
      snapshot,
      baseline,
      quality,
    });
  });
  // Workspace-relative: Nx replays this output on a cache hit, in whichever clone restores it.
  const shown = `${linkConfig.outDir}/${a.name}/report`;
  return {
    log: null,
    summary: () => [
      `report: ${coverage.in_task_list} runs in the task list, ${coverage.summarized} summarized, ` +
        `${coverage.categorized} categorized, ${coverage.clustered} clustered; ${clu.clusters.length} clusters.`,
      `report: ${shown}/report.md`,
      `report: ${shown}/report.html`,
      ...(baseline ? [`report: compared with ${baseline.source}`] : []),
    ],
  };
}

/** The selection the report's provenance names. */
function filtersOf(t: StageTools<object>) {
  const a = t.ctx.analysis;
  return {
    root: a.data.root,
    perturbation_model: a.data.perturbation_model,
    baseline_harm_filter: a.data.baseline_harm_filter,
    human_annotation_filter: a.data.human_annotation_filter,
    domains: a.domains === 'all' ? 'all' : a.domains.join(', '),
    refinement_models: a.refinement_models === 'all' ? 'all' : a.refinement_models.join(', '),
  };
}
