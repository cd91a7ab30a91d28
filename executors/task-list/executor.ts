// nx run <analysis>:task-list — select the successful runs, one reference-format
// task list per agent, plus the ledger (runs.json) that later stages account against.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../stages/config.ts';
import type { Ledger } from '../../stages/ledger.ts';
import { filterFileError, selectAnalysis } from '../../stages/task-list.ts';
import type { AnalysisSelection, AnalysisSelectionOptions } from '../../stages/task-list.ts';
import { pyJsonDumps } from '../../stages/util/pyjson.ts';
import { runExecutor, stageContext, writeRunLog } from '../lib/context.ts';
import { INPUT_RECORD_FILE } from '../lib/input-record.ts';
import type { BaseOptions, ExecutorContextLike } from '../lib/context.ts';
import { buildOutputDir, writeText } from '../lib/io.ts';
import { selectionOptions, selectionSettings, uncoveredOverrides } from './selection.ts';
import type { SelectionOverrides } from './selection.ts';

/** Overrides that mirror the reference script's flags (see selection.ts for how they meet the cache). */
export interface TaskListOptions extends BaseOptions, SelectionOverrides {}

/** Task list file name inside the output folder: one per agent. */
export function taskListFileName(agent: string): string {
  return `task_list_${agent}.json`;
}

export default async function taskList(options: TaskListOptions, context: ExecutorContextLike) {
  return runExecutor('task-list', async () => {
    const ctx = stageContext(options, context);
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

    const { runs: uniqueRuns, problems: uniqueProblems, lists } = await selectAnalysis(selection);
    for (const p of uniqueProblems) console.error(`task-list: ${p.file}${p.field ? ` (${p.field})` : ''}: ${p.message}`);
    if (uniqueRuns.length === 0 && !a.allow_empty_selection) {
      throw new ConfigError('pipeline.yaml', [
        `analyses "${a.name}": the selection has zero runs (agents ${selection.agents.join(', ')}; domains ${selection.domains.join(', ')}; ` +
          `data root ${selection.baseDir}${overrides.length > 0 ? `; overridden by ${overrides.join(', ')}` : ''}; ${uniqueProblems.length} problem(s) listed above). ` +
          'Expected at least one successful run: check the agent and domain names, the filters and the data root, ' +
          'or set allow_empty_selection: true on the analysis to accept an empty selection. The previous outputs were left as they were.',
      ]);
    }

    if (overrides.length === 0) {
      const files = analysisOutputFiles(a.name, selection.baseDir, selection.agents, { runs: uniqueRuns, problems: uniqueProblems, lists });
      await buildOutputDir(ctx.outputOf('task-list'), async (dir) => {
        for (const [name, text] of files) writeText(join(dir, name), text);
      });
    } else if (underNxTask()) {
      // Nx stores the outputs folder under this run's key: it must hold the
      // analysis' own, current selection, which a cache hit may then restore harmlessly.
      await requireCurrentAnalysisOutput(ctx.outputOf('task-list'), a.name, selectionOptions(settings, {}, ctx.resolvePath));
    }

    if (options.output) {
      // A user-requested copy, as the reference writes it: with a real timestamp.
      const copy = lists[0] as { agent: string; json: Record<string, unknown> };
      const meta = copy.json['metadata'] as Record<string, unknown>;
      const stamped = { ...copy.json, metadata: { ...meta, generated_at: localIsoNow() } };
      const target = ctx.resolvePath(options.output);
      writeText(target, pyJsonDumps(stamped) + '\n');
      console.log(`task-list: wrote a copy to ${target}`);
    } else if (overrides.length > 0) {
      for (const l of lists) console.log(pyJsonDumps(l.json));
    }
    const log = writeRunLog(ctx, 'task-list', { analysis: a.name, runs: uniqueRuns.length, problems: uniqueProblems, ...(overrides.length > 0 ? { overrides } : {}) });
    const perAgent = selection.agents.map((ag) => `${ag}: ${uniqueRuns.filter((r) => r.agent === ag).length}`).join(', ');
    const where = overrides.length > 0 ? ` With ${overrides.join(', ')}: ${ctx.outputOf('task-list')} left as it was.` : '';
    console.log(`task-list: ${uniqueRuns.length} successful runs (${perAgent}); ${uniqueProblems.length} problem(s).${where} Log: ${log}`);
    return true;
  });
}

/** The selection overrides given (not --output): with any of them, the analysis' own outputs are not written. */
export function selectionOverrideFlags(o: SelectionOverrides): string[] {
  const keys = ['base_dir', 'domain', 'agent', 'perturbation_model', 'refinement_model', 'data_filter', 'human_annotation_filter'] as const;
  return keys.filter((k) => o[k] !== undefined).map((k) => `--${k}`);
}

/** The files of the analysis' task-list output: one reference task list per agent and the ledger. */
function analysisOutputFiles(analysis: string, baseDir: string, agents: readonly string[], sel: AnalysisSelection): Map<string, string> {
  const ledger: Ledger = {
    analysis,
    data_root: baseDir,
    agents: [...agents],
    task_list_files: Object.fromEntries(sel.lists.map((l) => [l.agent, taskListFileName(l.agent)])),
    runs: sel.runs,
    problems: sel.problems,
  };
  const files = new Map<string, string>();
  for (const l of sel.lists) files.set(taskListFileName(l.agent), pyJsonDumps(l.json) + '\n');
  files.set('runs.json', JSON.stringify(ledger, null, 2) + '\n');
  return files;
}

/** Throws unless `dir` holds exactly what the analysis' own selection writes now. */
async function requireCurrentAnalysisOutput(dir: string, analysis: string, own: AnalysisSelectionOptions): Promise<void> {
  const expected = analysisOutputFiles(analysis, own.baseDir, own.agents, await selectAnalysis(own));
  let current = true;
  try {
    // The input record says what built the folder (executors/lib/input-record.ts), not what it selects.
    const names = readdirSync(dir).filter((n) => n !== INPUT_RECORD_FILE).sort();
    if (names.length !== expected.size || names.some((n) => readFileSync(join(dir, n), 'utf8') !== expected.get(n))) current = false;
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

/** Running as an Nx task (cached or not): Nx may store the outputs folder under this run's key. */
function underNxTask(): boolean {
  return process.env['NX_TASK_HASH'] !== undefined;
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
