// Step 1 as a stage: select the successful runs, one reference-format task
// list per agent, plus the ledger (runs.json) that later stages account
// against. With a selection override (--agent, --domain, ...) the analysis'
// own output is never written (see task-list/settings.ts for how overrides
// meet the cache): the selection is printed, or copied to --output. Run by
// the stage runner (executors/lib/runner.ts).
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { StageDefinition, StageResult, StageTools } from '../stage-context.ts';
import { ConfigError } from '../config.ts';
import type { Ledger } from './ledger.ts';
import { INPUT_RECORD_FILE } from '../input-record.ts';
import { filterFileError } from './filters.ts';
import { crawlBase, selectAnalysis } from './analysis.ts';
import { InputsChangedError, keyedCrawlFile, recordDigest } from '../input-record.ts';
import { readKeyedCrawl } from './keyed-crawl.ts';
import type { AnalysisSelection, AnalysisSelectionOptions } from './analysis.ts';
import { selectionOptions, selectionSettings, uncoveredOverrides } from './settings.ts';
import type { SelectionOverrides } from './settings.ts';
import { writeFileAtomicSync, writeTextAtomicSync } from '../util/fs.ts';
import { pyJsonDumps, pyJsonDumpTo } from '../util/pyjson.ts';
import { fileHoldsText } from './output-text.ts';
import { jsonPieces } from '../util/json-pieces.ts';
import type { FileText } from './output-text.ts';
import { plural } from '../util/words.ts';
import { dataRootHint } from './data-root.ts';

type Tools = StageTools<SelectionOverrides>;

interface Input {
  /** The selection overrides given (not --output). */
  overrides: string[];
  selection: AnalysisSelectionOptions;
  selected: AnalysisSelection;
}

export const taskListStage: StageDefinition<SelectionOverrides, Input> = {
  stage: 'task-list',
  // The reference-style one-off (an override or --output): it writes only its copy, or prints the selection.
  writesNothing: (o) => isOneOff(o),
  read: selectRuns,
  run: writeSelection,
};

/** Task list file name inside the output folder: one per agent. */
export function taskListFileName(agent: string): string {
  return `task_list_${agent}.json`;
}

/** A reference-style query (a selection override or --output): the analysis' own outputs are neither written nor required. */
export function isOneOff(o: SelectionOverrides): boolean {
  return selectionOverrideFlags(o).length > 0 || o.output !== undefined;
}

/** The selection overrides given (not --output): with any of them, the analysis' own outputs are not written. */
export function selectionOverrideFlags(o: SelectionOverrides): string[] {
  const keys = ['base_dir', 'domain', 'agent', 'perturbation_model', 'refinement_model', 'data_filter', 'human_annotation_filter'] as const;
  return keys.filter((k) => o[k] !== undefined).map((k) => `--${k}`);
}

async function selectRuns(t: Tools): Promise<Input> {
  const { ctx, options } = t;
  const a = ctx.analysis;
  const settings = selectionSettings(a);
  const uncovered = uncoveredOverrides(settings, options);
  if (uncovered.length > 0 && underNxCache()) {
    throw new Error(
      `${uncovered.join('; ')}. The task-list target is cached, and its key covers what pipeline.yaml selects: ` +
        'add --skip-nx-cache to run it without Nx\'s cache, or declare this selection as an analysis in pipeline.yaml.',
    );
  }
  const overrides = selectionOverrideFlags(options);
  const selection = selectionOptions(settings, options, ctx.resolvePath);
  if (options.output && selection.agents.length !== 1) throw new Error('--output needs exactly one agent: add --agent <name>');
  // Configuration mistakes stop the target before anything is selected or written.
  checkFilterFiles(selection, ctx.resolvePath, options);

  // Under Nx, the crawl the key fingerprinted (task-list/keyed-crawl.ts), when it left one for this record.
  const keyedCrawl = overrides.length === 0 && t.keyed?.data !== undefined ? await readKeyedCrawl(keyedCrawlFile(ctx.workspaceRoot, { analysis: a.name, stage: 'task-list' }), recordDigest(t.keyed), crawlBase(selection)) : null;
  let selected = await selectAnalysis(selection, undefined, keyedCrawl ?? undefined);
  // A recorded crawl that does not give the key's fingerprint is not used: the tree is crawled again.
  if (keyedCrawl !== null && selected.fingerprint !== t.keyed?.data) selected = await selectAnalysis(selection);
  // What was hashed is what was read: the data this selection read is the data its key fingerprinted.
  if (overrides.length === 0 && t.keyed?.data !== undefined && t.keyed.data !== selected.fingerprint) {
    throw new InputsChangedError(
      `the data under ${selection.baseDir} changed after Nx hashed it (runs added, removed or edited meanwhile). Nothing was written or cached; run it again.`,
    );
  }
  for (const p of selected.problems) console.error(`task-list: ${p.file}${p.field ? ` (${p.field})` : ''}: ${p.message}`);
  if (selected.runs.length === 0 && isOneOff(options)) {
    // As the reference script: an empty list, said once (the analysis build itself refuses an empty selection).
    console.warn(`task-list: the query selects no successful run (agents ${selection.agents.join(', ')}; domains ${selection.domains.join(', ')}); ${options.output ? 'writing the empty task list' : 'printing the empty task list'}, as the reference script does.`);
  } else if (selected.runs.length === 0 && !a.allow_empty_selection) {
    throw new ConfigError('pipeline.yaml', [
      `analyses "${a.name}": the selection has zero runs (agents ${selection.agents.join(', ')}; domains ${selection.domains.join(', ')}; ` +
        `data root ${selection.baseDir}${overrides.length > 0 ? `; overridden by ${overrides.join(', ')}` : ''}; ${plural(selected.problems.length, 'problem', 'problems')} listed above). ` +
        'Expected at least one successful run: check the agent and domain names, the filters and the data root, ' +
        'or set allow_empty_selection: true on the analysis to accept an empty selection. The previous outputs were left as they were.',
    ]);
  }
  return { overrides, selection, selected };
}

async function writeSelection({ overrides, selection, selected }: Input, t: Tools): Promise<StageResult> {
  const { ctx, options } = t;
  const a = ctx.analysis;
  if (!isOneOff(options)) {
    const files = analysisOutputFiles(a.name, selection.baseDir, selection.agents, selected);
    await t.output(async (dir) => {
      for (const [name, text] of files) writeTextAtomicSync(join(dir, name), text);
    });
  } else if (underNxCache()) {
    // Nx stores the outputs folder under this run's key (not under --skip-nx-cache): it must hold the
    // analysis' own, current selection, which a cache hit may then restore harmlessly.
    await requireCurrentAnalysisOutput(ctx.outputOf('task-list'), a.name, selectionOptions(selectionSettings(a), {}, ctx.resolvePath));
  }
  if (options.output) writeCopy(selected, ctx.resolvePath(options.output));
  else if (overrides.length > 0) for (const l of selected.lists) console.log(pyJsonDumps(l.json));

  const perAgent = selection.agents.map((ag) => `${ag}: ${selected.runs.filter((r) => r.agent === ag).length}`).join(', ');
  const where = isOneOff(options) ? ` A one-off query: ${ctx.outputOf('task-list')} left as it was.` : '';
  return {
    log: { analysis: a.name, runs: selected.runs.length, problems: selected.problems, ...(overrides.length > 0 ? { overrides } : {}) },
    summary: (log) => [
      `task-list: ${selected.runs.length} successful runs (${perAgent}); ${plural(selected.problems.length, 'problem', 'problems')}.${where}${log ? ` Log: ${log}` : ''}`,
      ...(isOneOff(options) ? [] : [dataRootHint(ctx.workspaceRoot, selection.baseDir)].filter((l): l is string => l !== null)),
    ],
  };
}

/** A user-requested copy, as the reference writes it: with a real timestamp. */
function writeCopy(selected: AnalysisSelection, target: string): void {
  const copy = selected.lists[0] as { agent: string; json: Record<string, unknown> };
  const meta = copy.json['metadata'] as Record<string, unknown>;
  const stamped = { ...copy.json, metadata: { ...meta, generated_at: localIsoNow() } };
  writeFileAtomicSync(target, pyJsonDumps(stamped) + '\n');
  console.log(`task-list: wrote a copy to ${target}`);
}

/**
 * The files of the analysis' task-list output: one reference task list per
 * agent and the ledger, each as text made as it is written (task-list/output-text.ts).
 */
function analysisOutputFiles(analysis: string, baseDir: string, agents: readonly string[], sel: AnalysisSelection): Map<string, FileText> {
  const ledger: Ledger = {
    analysis,
    data_root: baseDir,
    agents: [...agents],
    task_list_files: Object.fromEntries(sel.lists.map((l) => [l.agent, taskListFileName(l.agent)])),
    runs: sel.runs,
    problems: sel.problems,
  };
  const files = new Map<string, FileText>();
  for (const l of sel.lists) {
    files.set(taskListFileName(l.agent), (write) => {
      pyJsonDumpTo(l.json, 4, write);
      write('\n');
    });
  }
  files.set('runs.json', (write) => {
    for (const piece of jsonPieces(ledger)) write(piece);
  });
  return files;
}

const holds = (path: string, text: FileText | undefined): boolean => text !== undefined && fileHoldsText(path, text);

/** Throws unless `dir` holds exactly what the analysis' own selection writes now. */
async function requireCurrentAnalysisOutput(dir: string, analysis: string, own: AnalysisSelectionOptions): Promise<void> {
  const expected = analysisOutputFiles(analysis, own.baseDir, own.agents, await selectAnalysis(own));
  let current = true;
  try {
    // The input record says what built the folder (stages/input-record.ts), not what it selects.
    const names = readdirSync(dir).filter((n) => n !== INPUT_RECORD_FILE).sort();
    if (names.length !== expected.size || names.some((n) => !holds(join(dir, n), expected.get(n)))) current = false;
  } catch {
    current = false;
  }
  if (!current) {
    throw new Error(
      `${dir} is missing or not the analysis' current selection, and Nx would store it under this run's key. ` +
        `Run \`nx run ${analysis}:task-list\` first (an override never rewrites it), then run this command again.`,
    );
  }
}

/**
 * The filter files the selection reads, each checked as a whole before
 * selection: a malformed, non-UTF-8, unreadable or wrongly shaped filter is a
 * ConfigError naming the file, the key (or flag) that names it and what was
 * expected, not a problem after which the runs it should exclude are analysed.
 */
function checkFilterFiles(sel: AnalysisSelectionOptions, resolvePath: (p: string) => string, o: SelectionOverrides): void {
  const issues: string[] = [];
  const wanted = [
    { path: sel.dataFilter, which: 'baseline_harm' as const, key: o.data_filter !== undefined ? '--data_filter' : 'data.filters.baseline_harm', what: 'a baseline-harm filter: a JSON object {"<domain>": {"agent_<agent>": [task ids]}}' },
    { path: sel.humanAnnotationFilter, which: 'human_annotation' as const, key: o.human_annotation_filter !== undefined ? '--human_annotation_filter' : 'data.filters.human_annotation', what: 'a human-annotation decisions file: a JSON object {"<task_id>:<perturbed_id>:<refinement_model>:<agent>": {"final_decision": ...}}' },
  ];
  for (const w of wanted) {
    if (!w.path) continue;
    const error = filterFileError(resolvePath(w.path), w.path, w.which);
    if (error !== null) issues.push(`${w.key}: ${error}; expected ${w.what}. Nothing was selected and the previous outputs were left as they were`);
  }
  if (issues.length > 0) throw new ConfigError('pipeline.yaml', issues);
}

/** Running as an Nx task whose result Nx will store in its cache (not under --skip-nx-cache). */
function underNxCache(): boolean {
  return process.env['NX_TASK_HASH'] !== undefined && process.env['NX_SKIP_NX_CACHE'] !== 'true';
}

function localIsoNow(): string {
  const d = new Date();
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds() * 1000, 6)}`;
}
