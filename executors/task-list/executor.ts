// nx run <analysis>:task-list — select the successful runs, one reference-format
// task list per agent, plus the ledger (runs.json) that later stages account against.
import { join } from 'node:path';
import type { Ledger, LedgerRun, Problem } from '../../stages/ledger.ts';
import { selectRuns } from '../../stages/task-list.ts';
import { pyJsonDumps } from '../../stages/util/pyjson.ts';
import { runExecutor, stageContext, writeRunLog } from '../lib/context.ts';
import type { BaseOptions, ExecutorContextLike } from '../lib/context.ts';
import { buildOutputDir, writeJson, writeText } from '../lib/io.ts';

/** Overrides that mirror the reference script's flags. */
export interface TaskListOptions extends BaseOptions {
  base_dir?: string;
  domain?: string;
  agent?: string;
  perturbation_model?: string;
  refinement_model?: string;
  data_filter?: string;
  human_annotation_filter?: string;
  output?: string;
}

/** Task list file name inside the output folder: one per agent. */
export function taskListFileName(agent: string): string {
  return `task_list_${agent}.json`;
}

export default async function taskList(options: TaskListOptions, context: ExecutorContextLike) {
  return runExecutor('task-list', async () => {
    const ctx = stageContext(options, context);
    const a = ctx.analysis;
    const baseDir = options.base_dir ?? a.data.root;
    const agents = options.agent ? [options.agent] : a.agents;
    const domains: string[] = options.domain ? [options.domain] : a.domains === 'all' ? ['all'] : a.domains;
    const refinementModels: (string | null)[] = options.refinement_model
      ? [options.refinement_model]
      : a.refinement_models === 'all' ? [null] : a.refinement_models;
    const dataFilter = options.data_filter ?? a.data.baseline_harm_filter;
    const humanFilter = options.human_annotation_filter ?? a.data.human_annotation_filter;
    const perturbationModel = options.perturbation_model ?? a.data.perturbation_model;

    const runs: LedgerRun[] = [];
    const problems: Problem[] = [];
    const lists: { agent: string; json: Record<string, unknown> }[] = [];
    for (const agent of agents) {
      const parts: Awaited<ReturnType<typeof selectRuns>>[] = [];
      for (const domain of domains) {
        for (const rm of refinementModels) {
          parts.push(
            await selectRuns({
              baseDir: { typed: baseDir, resolved: ctx.resolvePath(baseDir) },
              domain,
              perturbationModel,
              refinementModel: rm,
              agent,
              dataFilter: dataFilter ? { typed: dataFilter, resolved: ctx.resolvePath(dataFilter) } : null,
              humanAnnotationFilter: humanFilter ? { typed: humanFilter, resolved: ctx.resolvePath(humanFilter) } : null,
            }),
          );
        }
      }
      const merged = mergeTaskLists(parts.map((p) => p.taskList as unknown as Record<string, unknown>), domains, refinementModels);
      lists.push({ agent, json: merged });
      for (const p of parts) {
        runs.push(...p.runs);
        problems.push(...p.problems);
      }
    }
    const uniqueRuns = dedupe(runs);
    const uniqueProblems = dedupeProblems(problems);
    for (const p of uniqueProblems) console.error(`task-list: ${p.file}${p.field ? ` (${p.field})` : ''}: ${p.message}`);

    const ledger: Ledger = {
      analysis: a.name,
      data_root: baseDir,
      agents,
      task_list_files: Object.fromEntries(lists.map((l) => [l.agent, taskListFileName(l.agent)])),
      runs: uniqueRuns,
      problems: uniqueProblems,
    };
    await buildOutputDir(ctx.outputOf('task-list'), async (dir) => {
      for (const l of lists) writeText(join(dir, taskListFileName(l.agent)), pyJsonDumps(l.json) + '\n');
      writeJson(join(dir, 'runs.json'), ledger);
    });

    if (options.output) {
      // A user-requested copy, as the reference writes it: with a real timestamp.
      if (lists.length !== 1) throw new Error('--output needs exactly one agent: add --agent <name>');
      const copy = lists[0] as { agent: string; json: Record<string, unknown> };
      const meta = copy.json['metadata'] as Record<string, unknown>;
      const stamped = { ...copy.json, metadata: { ...meta, generated_at: localIsoNow() } };
      const target = ctx.resolvePath(options.output);
      writeText(target, pyJsonDumps(stamped) + '\n');
      console.log(`task-list: wrote a copy to ${target}`);
    }
    const log = writeRunLog(ctx, 'task-list', { analysis: a.name, runs: uniqueRuns.length, problems: uniqueProblems });
    const perAgent = agents.map((ag) => `${ag}: ${uniqueRuns.filter((r) => r.agent === ag).length}`).join(', ');
    console.log(`task-list: ${uniqueRuns.length} successful runs (${perAgent}); ${uniqueProblems.length} problem(s). Log: ${log}`);
    return true;
  });
}

function localIsoNow(): string {
  const d = new Date();
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds() * 1000, 6)}`;
}

function dedupe(runs: LedgerRun[]): LedgerRun[] {
  const byId = new Map<string, LedgerRun>();
  for (const r of runs) byId.set(r.run_id, r);
  return [...byId.values()].sort((x, y) => (x.run_id < y.run_id ? -1 : x.run_id > y.run_id ? 1 : 0));
}

function dedupeProblems(problems: Problem[]): Problem[] {
  const seen = new Map<string, Problem>();
  for (const p of problems) seen.set(`${p.file}\u0000${p.field ?? ''}\u0000${p.message}`, p);
  return [...seen.values()].sort((x, y) => (x.file < y.file ? -1 : x.file > y.file ? 1 : x.message < y.message ? -1 : 1));
}

/**
 * One task list per agent. With one domain and one refinement-model setting
 * (the usual case) this is the reference output unchanged; with several
 * domains or models, the per-selection lists are merged (counts summed, lists
 * concatenated and re-sorted) and the metadata names every selection.
 */
export function mergeTaskLists(parts: Record<string, unknown>[], domains: string[], rms: (string | null)[]): Record<string, unknown> {
  if (parts.length === 1) return parts[0] as Record<string, unknown>;
  type TL = {
    metadata: Record<string, unknown>;
    task_lists_by_refinement_model: Record<string, string[]>;
    task_details_by_refinement_model: Record<string, { task_spec: string }[]>;
    excluded_false_positives: unknown[];
  };
  const ps = parts as unknown as TL[];
  const first = ps[0] as TL;
  const lists: Record<string, string[]> = {};
  const details: Record<string, { task_spec: string }[]> = {};
  const byRm: Record<string, number> = {};
  const fpByRm: Record<string, number> = {};
  const excludedIds = new Set<string>();
  let fps = 0;
  const found = new Set<string>();
  for (const p of ps) {
    for (const [rm, l] of Object.entries(p.task_lists_by_refinement_model)) lists[rm] = [...(lists[rm] ?? []), ...l];
    for (const [rm, l] of Object.entries(p.task_details_by_refinement_model)) details[rm] = [...(details[rm] ?? []), ...l];
    for (const [rm, n] of Object.entries(p.metadata['successful_runs_by_refinement_model'] as Record<string, number>)) byRm[rm] = (byRm[rm] ?? 0) + n;
    for (const [rm, n] of Object.entries(p.metadata['excluded_false_positives_by_refinement_model'] as Record<string, number>)) fpByRm[rm] = (fpByRm[rm] ?? 0) + n;
    for (const id of p.metadata['excluded_task_ids_baseline_harm'] as string[]) excludedIds.add(id);
    for (const rm of p.metadata['refinement_models_found'] as string[]) found.add(rm);
    fps += Number(p.metadata['num_excluded_false_positives'] ?? 0);
  }
  const cp = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  for (const rm of Object.keys(lists)) lists[rm]?.sort(cp);
  for (const rm of Object.keys(details)) details[rm]?.sort((x, y) => cp(x.task_spec, y.task_spec));
  const total = Object.values(byRm).reduce((n, x) => n + x, 0);
  return {
    metadata: {
      ...first.metadata,
      domain: domains.join(','),
      refinement_model: rms.includes(null) ? null : rms.join(','),
      excluded_task_ids_baseline_harm: [...excludedIds].sort(cp),
      num_excluded_tasks_baseline_harm: excludedIds.size,
      num_excluded_false_positives: fps,
      excluded_false_positives_by_refinement_model: fpByRm,
      refinement_models_found: [...found].sort(cp),
      total_successful_runs: total,
      successful_runs_by_refinement_model: byRm,
    },
    task_lists_by_refinement_model: lists,
    task_details_by_refinement_model: details,
    excluded_false_positives: ps.flatMap((p) => p.excluded_false_positives),
  };
}
