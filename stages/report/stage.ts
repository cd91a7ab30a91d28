// Step 5 as a stage: report.md, report.html and report-data.json from the
// upstream outputs. Run by the stage runner (executors/lib/runner.ts).
import { join } from 'node:path';
import { CATEGORIZATION_FILE, categorizationDocument } from '../categorize/format.ts';
import { CLUSTERS_FILE, clustersDocument } from '../cluster/format.ts';
import { LEDGER_FILE, ledgerFile } from '../task-list/ledger.ts';
import { EVALUATIONS_FILE, evaluationsFile } from '../summarize/run-data.ts';
import { sha256 } from '../llm/store.ts';
import type { StageDefinition, StageResult, StageTools } from '../stage-context.ts';
import { SUMMARY_INDEX_FILE, summaryIndexFile } from '../summarize/format.ts';
import { readSummaries } from '../summarize/summaries.ts';
import { readAnalysisLock } from '../categorize/taxonomy-lock.ts';
import { writeFileAtomicSync, writeJson, writeTextAtomicSync } from '../util/fs.ts';
import { collectGarbage } from '../util/memory.ts';
import { stableIds } from '../util/ids.ts';
import type { CategorizationOut, ClustersOut, ReportLedger, SummariesOut } from './assemble.ts';
import { agentSlices, htmlInput, lockBaseline, markdownInput, qualityInput, reportProvenance, reportSnapshot, runCategories, runCoverage, runLink, stageCalls } from './assemble.ts';
import { renderChangesMarkdown, summarizeChanges } from './changes.ts';
import type { ReportBaseline } from './changes.ts';
import { writeHtmlReport } from './html.ts';
import { renderMarkdownReport } from './markdown.ts';
import { referenceReportStatistics } from './reference-stats.ts';
import { runDetails, TextPacker } from './run-details.ts';
import type { RunTexts } from './run-details.ts';
import type { HtmlRun } from './html.ts';
import { computeQuality } from './quality/compute.ts';
import { renderQualityMarkdown } from './quality/markdown.ts';
import { HELDOUT_FILE, heldoutDocument } from '../categorize/heldout.ts';
import type { HeldoutDocument } from '../categorize/heldout.ts';

interface Input {
  ledger: ReportLedger;
  sums: SummariesOut;
  /** What the drill-down shows of each run in the ledger, by run id: its texts (summarize's shards, checked against its index) and evaluation. */
  runs: Record<string, HtmlRun>;
  cat: CategorizationOut;
  clu: ClustersOut;
  /** categorize's held-out re-assignment, shown in the quality section. */
  heldout: HeldoutDocument;
  /** "What changed" is compared with the analysis' committed taxonomy lock (an input of this target), never with a previous report. */
  baseline: ReportBaseline | null;
}

// The ledger, the summarize index, the summaries and the evaluations are cut
// down to what the report uses as soon as each is read and checked, in
// functions of their own so that the whole parse is garbage on return: at
// 100,000 runs they hold hundreds of MB the report never shows (digests,
// token counts, metadata).
export const reportStage: StageDefinition<object, Input> = {
  stage: 'report',
  read: (t) => {
    const { sums, texts } = readSummarized(t);
    // Each collection drops what the reads before it threw away (util/memory.ts).
    collectGarbage();
    const ledger = readLedger(t);
    const runs = readRuns(t, ledger, texts);
    collectGarbage();
    const input = {
      ledger,
      sums,
      runs,
      cat: t.upstream('categorize', CATEGORIZATION_FILE, categorizationDocument),
      clu: t.upstream('cluster', CLUSTERS_FILE, clustersDocument),
      heldout: t.upstream('categorize', HELDOUT_FILE, heldoutDocument),
      baseline: baselineOf(t),
    };
    collectGarbage();
    return input;
  },
  run: reportRun,
};

/** summarize's index (each run's id, status and reason) and each summarized run's texts, packed outside the heap (run-details.ts). */
function readSummarized(t: StageTools<object>): { sums: SummariesOut; texts: Map<string, RunTexts> } {
  const index = t.upstream('summarize', SUMMARY_INDEX_FILE, summaryIndexFile);
  const texts = new Map<string, RunTexts>();
  const packer = new TextPacker();
  for (const [runId, summary] of readSummaries(t.ctx.outputOf('summarize'), index.runs, t.ctx.analysis.name)) texts.set(runId, packer.pack(summary));
  return { sums: { ...index, runs: index.runs.map((r) => ({ run_id: r.run_id, status: r.status, reason: r.reason })) }, texts };
}

/** task-list's ledger: the agents, the problems met in the tree, and each run's identity and paths. */
function readLedger(t: StageTools<object>): ReportLedger {
  const ledger = t.upstream('task-list', LEDGER_FILE, ledgerFile);
  return {
    agents: ledger.agents,
    problems: ledger.problems,
    runs: ledger.runs.map((r) => ({
      run_id: r.run_id,
      agent: r.agent,
      domain: r.domain,
      task_id: r.task_id,
      perturbed_id: r.perturbed_id,
      refinement_model: r.refinement_model,
      refinement_summary_path: r.refinement_summary_path,
      perturbed_query_path: r.perturbed_query_path,
    })),
  };
}

/** Each ledger run's details for the drill-down, with summarize's evaluations. */
function readRuns(t: StageTools<object>, ledger: ReportLedger, texts: ReadonlyMap<string, RunTexts>): Record<string, HtmlRun> {
  const link = linkConfig(t);
  return runDetails(ledger.runs, texts, t.upstream('summarize', EVALUATIONS_FILE, evaluationsFile), (folder) => runLink(link, folder));
}

/** Where the report's run folder links start from: the configuration, never where the workspace lives. */
function linkConfig(t: StageTools<object>) {
  const a = t.ctx.analysis;
  return { dataRoot: a.data.root, outDir: t.options.outDir ?? 'out', analysis: a.name };
}

function baselineOf(t: StageTools<object>): ReportBaseline | null {
  const found = readAnalysisLock(t.ctx.workspaceRoot, t.ctx.analysis.name);
  return found ? lockBaseline(found.lock, found.file) : null;
}

async function reportRun(input: Input, t: StageTools<object>): Promise<StageResult> {
  const { ledger, sums, runs, cat, clu, baseline } = input;
  const a = t.ctx.analysis;
  const idOf = (name: string) => stableIds('clu', [name], sha256)[0] as string;
  const calls = stageCalls(sums, cat, clu);
  const provenance = reportProvenance(a.name, ledger, sums, cat, clu, filtersOf(t), calls);
  const coverage = runCoverage(ledger, sums, cat, clu);
  const byAgent = ledger.agents.length > 1 ? agentSlices(ledger, cat) : undefined;
  const snapshot = reportSnapshot(ledger, cat, clu, idOf);
  const changes = summarizeChanges(baseline, snapshot, runCategories(cat));

  const quality = computeQuality(qualityInput(ledger, sums, cat, clu, runs, idOf, input.heldout));

  let markdown = renderMarkdownReport(
    markdownInput(cat, clu, a.report.max_examples, provenance, coverage, byAgent, {
      categorization: 'categorize/categorization.json',
      clusters: 'cluster/clusters.json',
    }),
  );
  markdown = `${markdown.trimEnd()}\n\n${renderQualityMarkdown(quality).join('\n').trimEnd()}\n`;
  if (changes) markdown = `${markdown.trimEnd()}\n\n${renderChangesMarkdown(changes)}`;

  // What the sections above threw away goes before the page, the stage's longest write.
  collectGarbage();
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
  const shown = `${linkConfig(t).outDir}/${a.name}/report`;
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
