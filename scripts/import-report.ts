// Render report.md and report.html from existing reference-format files, so
// users of the reference scripts can move over without re-running anything:
//
//   npx node scripts/import-report.ts --categorization CAT.json --clusters CLU.json \
//       [--task-list TASK_LIST.json ...] [--out DIR] [--max-examples 3] [--title TEXT]
//
// With task lists (reference format, whose refinement_summary_path must be
// readable from the current directory), runs get their instructions,
// severity and score, and trigger phrases are verified against the perturbed
// instruction; without them, runs are known only by their ids.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { verifyTrigger, stableIds } from '../stages/categorize/items.ts';
import type { OutputCategory } from '../stages/categorize/format.ts';
import type { Category } from '../stages/formats.ts';
import type { Ledger, LedgerRun } from '../stages/task-list/ledger.ts';
import { sha256 } from '../stages/llm/store.ts';
import { htmlInput, markdownInput, reportProvenance, runCoverage } from '../stages/report/assemble.ts';
import type { CategorizationOut, ClustersOut } from '../stages/report/assemble.ts';
import { renderHtmlReport } from '../stages/report/html.ts';
import type { HtmlRun } from '../stages/report/html.ts';
import { renderMarkdownReport } from '../stages/report/markdown.ts';
import { readTaskList } from '../stages/task-list/read-list.ts';
import { readSuccessfulEvaluation } from '../stages/summarize/run-data.ts';
import type { SuccessfulEvaluation } from '../stages/summarize/run-data.ts';
import { writeText } from '../executors/lib/io.ts';

class UsageError extends Error {}

function readJson(file: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`${file}: cannot read the ${what} as JSON: ${(err as Error).message}`);
  }
}

interface RunInfo {
  run: LedgerRun;
  original: string;
  evaluation: SuccessfulEvaluation;
  folder: string;
}

/** Runs of reference task lists, keyed by `<task_id>:<perturbed_id>` (the reference example id) and by the full run id. */
function runsFromTaskLists(files: string[]): Map<string, RunInfo> {
  const out = new Map<string, RunInfo>();
  for (const file of files) {
    const json = readJson(file, 'task list') as { task_details_by_refinement_model?: Record<string, { task_id: string; perturbed_id: string; domain: string; refinement_model: string; refinement_summary_path: string }[]> };
    const parsed = readTaskList(json);
    if (!parsed.ok) throw new UsageError(`${file}: ${parsed.error}`);
    const agent = parsed.agent ?? 'unknown-agent';
    for (const details of Object.values(json.task_details_by_refinement_model ?? {})) {
      for (const d of details) {
        const rsPath = d.refinement_summary_path;
        const folder = dirname(rsPath);
        const pqPath = join(folder, '..', '..', `perturbed_query_${d.perturbed_id}.json`);
        let original = '';
        try {
          original = String((JSON.parse(readFileSync(pqPath, 'utf8')) as { original_instruction?: string }).original_instruction ?? '');
        } catch { /* shown as unknown */ }
        const run: LedgerRun = {
          run_id: `${d.domain}:${d.task_id}:${d.perturbed_id}:${d.refinement_model}:${agent}`,
          agent, domain: d.domain, task_id: d.task_id, perturbed_id: d.perturbed_id, refinement_model: d.refinement_model,
          task_spec: `${d.domain}:${d.task_id}:${d.perturbed_id}`, refinement_summary_path: rsPath, perturbed_query_path: pqPath, input_digest: '',
        };
        const info = { run, original, evaluation: readSuccessfulEvaluation(rsPath), folder };
        // The reference's id, and the full id this pipeline uses when two runs share it.
        out.set(`${d.task_id}:${d.perturbed_id}`, info);
        out.set(`${d.task_id}:${d.perturbed_id}:${d.refinement_model}:${agent}`, info);
      }
    }
  }
  return out;
}

export function importReports(args: string[]): { markdown: string; html: string; outDir: string } {
  const { values } = parseArgs({
    args,
    options: {
      categorization: { type: 'string' },
      clusters: { type: 'string' },
      'task-list': { type: 'string', multiple: true },
      out: { type: 'string' },
      'max-examples': { type: 'string' },
      title: { type: 'string' },
    },
    strict: true,
  });
  if (!values.categorization || !values.clusters) throw new UsageError('--categorization and --clusters are required');
  const rawCat = readJson(values.categorization, 'categorization') as { categorization?: { categories?: Category[] }; statistics?: Record<string, unknown>; metadata?: Record<string, unknown> };
  const rawClu = readJson(values.clusters, 'clusters') as { clusters?: ClustersOut['clusters']; statistics?: Record<string, unknown>; metadata?: Record<string, unknown> };
  if (!Array.isArray(rawCat.categorization?.categories)) throw new UsageError(`${values.categorization}: field "categorization.categories": expected a list`);
  if (!Array.isArray(rawClu.clusters)) throw new UsageError(`${values.clusters}: field "clusters": expected a list`);
  const maxExamples = values['max-examples'] === undefined ? 3 : Number(values['max-examples']);
  if (!Number.isInteger(maxExamples) || maxExamples < 0) throw new UsageError('--max-examples: expected a whole number >= 0');
  const outDir = resolve(values.out ?? dirname(values.clusters));

  const known = runsFromTaskLists(values['task-list'] ?? []);
  const categories = rawCat.categorization.categories;
  const catIds = stableIds('cat', categories.map((c) => c.category_name), sha256);
  const runIdOf = (id: string) => known.get(id)?.run.run_id ?? id;
  const decorated: OutputCategory[] = categories.map((c, i) => ({
    category_name: c.category_name,
    definition: c.definition,
    category_id: catIds[i] as string,
    examples: (c.examples ?? []).map((e) => ({
      id: e.id,
      trigger_phrase: e.trigger_phrase ?? null,
      justification: e.justification ?? null,
      run_id: runIdOf(e.id),
      trigger_phrase_verified: verifyTrigger(e.trigger_phrase, known.get(e.id)?.evaluation.perturbed_instruction ?? ''),
    })),
  }));
  const cluIds = stableIds('clu', rawClu.clusters.map((c) => c.cluster_name), sha256);
  const cat: CategorizationOut = {
    categorization: { categories: decorated },
    statistics: rawCat.statistics ?? {},
    metadata: { ...(rawCat.metadata ?? {}), analyzer: `imported: ${String(rawCat.metadata?.['api_type'] ?? '?')}:${String(rawCat.metadata?.['model_name'] ?? '?')}` },
    unassigned: [],
  };
  const clu: ClustersOut = {
    clusters: rawClu.clusters.map((c, i) => ({ ...c, cluster_id: cluIds[i] as string })),
    statistics: rawClu.statistics ?? {},
    metadata: { ...(rawClu.metadata ?? {}), analyzer: `imported: ${String(rawClu.metadata?.['api_type'] ?? '?')}:${String(rawClu.metadata?.['model_name'] ?? '?')}` },
  };

  // The runs: those of the task lists, else the ids the categorization names.
  const exampleIds = [...new Set(categories.flatMap((c) => (c.examples ?? []).map((e) => e.id)))];
  const ledgerRuns: LedgerRun[] = known.size > 0
    ? [...new Set(known.values())].map((k) => k.run)
    : exampleIds.map((id) => ({ run_id: id, agent: String(rawCat.metadata?.['agent'] ?? 'unknown'), domain: '', task_id: id.split(':')[0] ?? id, perturbed_id: id.split(':')[1] ?? '', refinement_model: '', task_spec: id, refinement_summary_path: '', perturbed_query_path: '', input_digest: '' }));
  const agents = [...new Set(ledgerRuns.map((r) => r.agent))].sort();
  const ledger: Ledger = { analysis: 'imported', data_root: '', agents, task_list_files: {}, runs: ledgerRuns, problems: [] };
  const filters = { categorization: values.categorization, clusters: values.clusters };
  const provenance = reportProvenance('imported', ledger, null, cat, clu, filters);
  const coverage = runCoverage(ledger, null, cat, clu);

  const runs: Record<string, HtmlRun> = {};
  for (const r of ledgerRuns) {
    const k = known.get(`${r.task_id}:${r.perturbed_id}:${r.refinement_model}:${r.agent}`);
    const ev = k?.evaluation ?? { severity: null, score: null, strategy: null };
    runs[r.run_id] = {
      run_id: r.run_id, agent: r.agent, domain: r.domain, task_id: r.task_id, perturbed_id: r.perturbed_id, refinement_model: r.refinement_model,
      original_instruction: k?.original ?? '', perturbed_instruction: k?.evaluation.perturbed_instruction ?? '', summary: '',
      severity: ev.severity, score: ev.score, strategy: ev.strategy,
      run_folder: k ? relative(outDir, resolve(k.folder)).split('\\').join('/') : '',
    };
  }
  const title = values.title ?? 'Benign-input vulnerabilities (imported)';
  const markdown = renderMarkdownReport(markdownInput(cat, clu, maxExamples, provenance, coverage, undefined, { categorization: values.categorization, clusters: values.clusters }));
  const html = renderHtmlReport(htmlInput(title, 'imported', cat, clu, runs, provenance, coverage, (n) => stableIds('clu', [n], sha256)[0] as string, null));
  return { markdown, html, outDir };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    const { markdown, html, outDir } = importReports(process.argv.slice(2));
    if (!existsSync(outDir)) console.log(`creating ${outDir}`);
    writeText(join(outDir, 'report.md'), markdown);
    writeText(join(outDir, 'report.html'), html);
    console.log(`wrote ${join(outDir, 'report.md')} and ${join(outDir, 'report.html')}`);
  } catch (err) {
    console.error(err instanceof UsageError ? `import-report: ${err.message}` : err);
    process.exit(err instanceof UsageError ? 2 : 1);
  }
}
