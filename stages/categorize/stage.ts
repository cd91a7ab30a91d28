// Step 3 as a stage: the taxonomy of benign-input vulnerability categories.
//
// A pure function of (summaries, settings, taxonomy lock): it never reads its
// own previous output. With a committed lock (analyses/<name>/taxonomy.lock.json),
// runs the lock holds with an unchanged summary keep their category with no
// call, and only new or changed runs are categorized against the locked
// taxonomy; without one the taxonomy is built from scratch. The categorizer
// itself: categorize/outcome.ts. Run by the stage runner (executors/lib/runner.ts).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LlmStageDefinition, LlmTools, StageResult } from '../stage-context.ts';
import { buildItems, checkCoverage, decorateCategories } from './items.ts';
import { runSampleKey } from './assign.ts';
import { llmOutcome, offlineOutcome } from './outcome.ts';
import type { CategorizeRunOptions, Outcome, Templates } from './outcome.ts';
import type { LockBase } from './pass.ts';
import { categorizationFile } from './output.ts';
import { runHeldout } from './heldout-check.ts';
import { HELDOUT_FILE } from './heldout.ts';
import type { HeldoutDocument } from './heldout.ts';
import { usesAssignPrompt } from './settings.ts';
import { LEDGER_FILE, ledgerFile, promptIds } from '../task-list/ledger.ts';
import type { FailedRun, Ledger, LedgerRun } from '../task-list/ledger.ts';
import { plural } from '../util/words.ts';
import { formatUsd } from '../llm/pricing.ts';
import { sha256 } from '../llm/store.ts';
import { SUMMARY_INDEX_FILE, summaryIndexFile } from '../summarize/format.ts';
import type { SummaryFile, SummaryIndexEntry } from '../summarize/format.ts';
import { readSummaries } from '../summarize/summaries.ts';
import { planFromLock, readAnalysisLock } from './taxonomy-lock.ts';
import { writeJson } from '../util/fs.ts';
import { collectGarbage } from '../util/memory.ts';
import { lockedStableIds, stableIds } from '../util/ids.ts';
import { EVALUATIONS_FILE, evaluationOf, evaluationsFile } from '../summarize/run-data.ts';
import type { EvaluationsFile, RunEvaluation } from '../summarize/run-data.ts';

type Tools = LlmTools<CategorizeRunOptions>;

import { ledgerFacts } from './input.ts';
import type { CategorizeInput } from './input.ts';

export type { CategorizeInput };

export const categorizeStage: LlmStageDefinition<CategorizeRunOptions, CategorizeInput> = {
  stage: 'categorize',
  read: (t) => {
    const ledger = t.upstream('task-list', LEDGER_FILE, ledgerFile);
    const evaluations = t.upstream('summarize', EVALUATIONS_FILE, evaluationsFile);
    const index = t.upstream('summarize', SUMMARY_INDEX_FILE, summaryIndexFile).runs;
    const built = summarizedItems(ledger, index, readSummaries(t.ctx.outputOf('summarize'), index, t.ctx.analysis.name), evaluations);
    return { ledger: ledgerFacts(ledger), built, templates: templatesOf(t), base: lockBase(t, built) };
  },
  subject: ({ built }) => `${built.items.length} summarized runs`,
  run: categorizeRun,
};

/** The items the categorizer sees: each summarized run's summary and its evaluation; runs with no summary are listed as missing. */
function summarizedItems(ledger: Ledger, index: SummaryIndexEntry[], summaries: Map<string, SummaryFile>, evaluations: EvaluationsFile) {
  const entryOf = new Map(index.map((e) => [e.run_id, e]));
  return buildItems(ledger.runs, promptIds(ledger.runs), (run: LedgerRun) => {
    const entry = entryOf.get(run.run_id);
    if (!entry) return { error: 'no summary: the run is missing from the summarize index' };
    if (entry.status !== 'done' || !entry.file) return { error: `no summary: ${entry.reason ?? 'summarize failed'}` };
    return evaluatedSummary(summaries.get(run.run_id) as SummaryFile, evaluationOf(evaluations, run.run_id));
  });
}

/** A run's summary with what the categorizer shows beside it: severity, harmful actions, strategy (summarize's evaluations.json). */
export function evaluatedSummary(file: SummaryFile, ev: RunEvaluation) {
  return { file, severity: ev.severity, harmful: ev.harmful, strategy: ev.strategy ?? '' };
}

export function templatesOf(t: { ctx: Tools['ctx'] }): Templates {
  const settings = t.ctx.analysis.categorize;
  return {
    create: readFileSync(t.ctx.resolvePath(settings.prompts.create), 'utf8'),
    update: readFileSync(t.ctx.resolvePath(settings.prompts.update), 'utf8'),
    // Read only when the strategy or the held-out check of a model uses it (only then is it an input of the target).
    assign: usesAssignPrompt(settings) ? readFileSync(t.ctx.resolvePath(settings.prompts.assign), 'utf8') : '',
  };
}

/** The committed taxonomy lock and what it means for these runs (kept, new, changed, removed); null without a lock. */
export function lockBase(t: { ctx: Tools['ctx'] }, built: Pick<CategorizeInput['built'], 'items' | 'runOf'>): LockBase | null {
  const found = readAnalysisLock(t.ctx.workspaceRoot, t.ctx.analysis.name);
  const runIdOf = (itemId: string) => built.runOf.get(itemId)?.run_id ?? itemId;
  return found ? { ...found, plan: planFromLock(found.lock, built.items, runIdOf) } : null;
}

async function categorizeRun(input: CategorizeInput, t: Tools): Promise<StageResult> {
  const { ledger, built, templates, base } = input;
  // Between phases, what the last one dropped is collected (util/memory.ts): the upstream files' texts, then the categorizer's working data, then the check's.
  collectGarbage();
  const outcome = t.ctx.analysis.categorize.provider === 'offline'
    ? offlineOutcome(t, built.items, base)
    : await llmOutcome(t, built.items, templates, base, runSampleKey(built.runOf));
  collectGarbage();
  const coverage = checkCoverage(outcome.categories, built.items.map((i) => i.id));
  const unassigned = unassignedRuns(input, outcome, coverage.unassigned);
  const idOf = categoryIds(outcome, base);
  const decorated = decorateCategories(outcome.categories, built.items, built.runOf, idOf);
  // After the taxonomy is final, and apart from it: categorization.json is what it would be without the check.
  const heldout = await runHeldout(t, { categories: outcome.categories, items: built.items, runIdOf: (id) => built.runOf.get(id)?.run_id ?? id, idOf: (name) => idOf({ category_name: name }) }, templates.assign);
  collectGarbage();
  await t.output(async (dir) => {
    writeJson(join(dir, 'categorization.json'), categorizationFile(t, input, outcome, decorated, coverage.assigned.size, unassigned));
    writeJson(join(dir, HELDOUT_FILE), heldout);
  });
  return {
    log: { mode: outcome.mode, batches: outcome.batchLog, unassigned, heldout: heldoutLog(heldout) },
    summary: (logFile) => {
      const s = t.answerer.totals();
      return [
        `categorize: ${coverage.assigned.size}/${ledger.runCount} runs in ${plural(decorated.length, 'category', 'categories')}` +
          `${unassigned.length ? `, ${unassigned.length} unassigned (listed in the output)` : ''}; mode ${outcome.mode}; ` +
          `${plural(s.reused, 'answer', 'answers')} reused from the response store, ${s.computed} computed; spent ${formatUsd(s.paidCostUsd)} to build this output. Log: ${logFile}`,
        ...heldoutLine(heldout),
        ...lockHint(base, t.ctx.analysis.name),
      ];
    },
  };
}

/** Runs with no summary, then those the categorizer left out, by run id. */
function unassignedRuns({ built }: CategorizeInput, outcome: Outcome, left: string[]): FailedRun[] {
  const reasonOf = new Map(outcome.unassigned.map((u) => [u.id, u.reason]));
  return [
    ...built.missing,
    ...left.map((id) => ({
      run_id: built.runOf.get(id)?.run_id ?? id,
      stage: 'categorize',
      reason: reasonOf.get(id) ?? 'not assigned to any category',
    })),
  ].sort((x, y) => (x.run_id < y.run_id ? -1 : 1));
}

/** Locked categories keep the id the lock gives them; new ones get one derived from their name. */
function categoryIds(outcome: Outcome, base: LockBase | null): (c: { category_name: string }) => string {
  const ids = lockedStableIds(outcome.categories.map((c) => c.category_name), base?.plan.lockedIds ?? new Map(), (name) => stableIds('cat', [name], sha256)[0] as string);
  const idByName = new Map(outcome.categories.map((c, i) => [c.category_name, ids[i] as string]));
  return (c) => idByName.get(c.category_name) as string;
}

function lockHint(base: LockBase | null, analysis: string): string[] {
  if (!base || (base.plan.added.length === 0 && base.plan.changed.length === 0)) return [];
  const n = base.plan.added.length + base.plan.changed.length;
  return [`categorize: ${plural(n, 'run is', 'runs are')} not in ${base.file} yet (or not with this summary); review the output, then record it with \`npx nx run ${analysis}:lock-taxonomy\`.`];
}

/** The check's figures for the run log (the runs are in heldout.json). */
function heldoutLog(h: HeldoutDocument) {
  if (!h.enabled) return { enabled: false };
  const { runs: _runs, ...figures } = h;
  return figures;
}

function heldoutLine(h: HeldoutDocument): string[] {
  if (!h.enabled || h.sampled_runs === 0) return [];
  const pct = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(1)}%`);
  return [
    `categorize: held-out check (${h.method}): ${h.agreed}/${h.sampled_runs} sampled runs back in their category (${pct(h.agreement)}), ` +
      `Cohen's kappa ${h.kappa === null ? 'n/a' : h.kappa.toFixed(3)}, none fits ${h.none_fits} (${pct(h.none_fits_rate)}); ${HELDOUT_FILE}`,
  ];
}
