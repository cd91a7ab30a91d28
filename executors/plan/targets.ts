// Which targets of the chain will run, and why: each output carries the
// record its key was computed from (inputs.json); this computes the record of
// now with the same function and the same description as the key
// (stages/input-record.ts, keyDescription in the plugin), so a stage whose
// record differs is one whose key differs. It follows changes down the chain
// (a stage whose output changes makes the next one run). The selection is
// compared run by run with the ledger on disk, so "10 runs added" is exact.
//
// What it cannot see: whether Nx holds an older output for the new inputs
// (after a revert, or built by a teammate on the remote cache). Then Nx
// restores instead of running, and the store answers every call: the plan's
// calls to pay stay right, only "runs" was pessimistic.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeInputChange, inputRecord, readInputRecord } from '../../stages/input-record.ts';
import { STAGE_INFO, STAGES } from '../../stages/registry.ts';
import type { StageName } from '../../stages/registry.ts';
import type { Ledger, LedgerRun } from '../../stages/task-list/ledger.ts';
import { readJsonFileSync } from '../../stages/util/fs.ts';
import type { StageContext } from '../lib/context.ts';
import { keyDescription, normalizeOptions, stageCodeOf } from '../plugin.ts';
import { plural } from '../../stages/util/words.ts';

/** Where the executors' code and packages are: the workspace under Nx; the repository when a test runs the plan on another folder. */
const CODE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export type Verdict = 'runs' | 'cached' | 'runs if upstream output changes';

export interface TargetPlan {
  target: StageName;
  verdict: Verdict;
  why: string[];
}

export interface SelectionChange {
  added: number;
  removed: number;
  changed: number;
}

/** Runs added, removed or changed (their input files) between the ledger on disk and the selection of now. */
export function selectionChange(before: readonly LedgerRun[], now: readonly LedgerRun[]): SelectionChange {
  const old = new Map(before.map((r) => [r.run_id, JSON.stringify(r)]));
  let added = 0;
  let changed = 0;
  for (const r of now) {
    const prev = old.get(r.run_id);
    if (prev === undefined) added += 1;
    else if (prev !== JSON.stringify(r)) changed += 1;
    old.delete(r.run_id);
  }
  return { added, removed: old.size, changed };
}

function describeSelection(c: SelectionChange): string {
  const parts = [[c.added, 'added'], [c.removed, 'removed'], [c.changed, 'changed']].filter(([n]) => (n as number) > 0).map(([n, what]) => `${plural(n as number, 'run', 'runs')} ${what}`);
  return parts.join(', ');
}

/** The targets' verdicts, in chain order, for the selection computed now (its runs, and the fingerprint of the tree it read). */
export async function planTargets(ctx: StageContext, selection: { runs: readonly LedgerRun[]; fingerprint: string }): Promise<TargetPlan[]> {
  const { runs } = selection;
  const outDir = dirname(dirname(ctx.outputOf('report')));
  const ledger = readJsonFileSync<Ledger>(join(ctx.outputOf('task-list'), 'runs.json'), { expect: 'object' });
  const change = ledger.ok && Array.isArray(ledger.value.runs) ? selectionChange(ledger.value.runs, runs) : null;
  const selectionMoved = change !== null && change.added + change.removed + change.changed > 0;
  const plans: TargetPlan[] = [];
  // One code scan for the five records (the stages share most of their closure).
  const codeOf = stageCodeOf(CODE_ROOT);
  const opts = normalizeOptions({ outDir });
  // Whether the output of the previous stage will change: 'yes', 'maybe' (it runs, its bytes may come out equal) or 'no'.
  let upstream: 'yes' | 'maybe' | 'no' = 'no';
  for (const stage of STAGES) {
    // The stage it reads from, whose verdict `upstream` holds (the chain is a line).
    const previous = STAGE_INFO[stage].dependsOn;
    const record = readInputRecord(ctx.outputOf(stage));
    const why: string[] = [];
    if (!record) why.push('no output here yet, or one without a record of its inputs (Nx restores it instead if its cache holds these inputs)');
    else why.push(...describeInputChange(record, await inputRecord(keyDescription(ctx.analysis, stage, opts, codeOf), ctx.workspaceRoot, CODE_ROOT, process.env, selection.fingerprint)));
    if (stage === 'task-list') {
      if (change === null && record) why.push('no readable task-list/runs.json to compare the selection with');
      else if (selectionMoved) why.push(`the selection changed: ${describeSelection(change)} (${runs.length} selected now)`);
    } else if (upstream === 'yes') {
      why.push(`the output of ${previous} changes`);
    }
    const runsNow = why.length > 0;
    const verdict: Verdict = runsNow ? 'runs' : upstream === 'maybe' ? 'runs if upstream output changes' : 'cached';
    if (verdict === 'runs if upstream output changes') why.push(`${previous} runs; Nx serves this target from its cache if that output comes out byte-identical`);
    plans.push({ target: stage, verdict, why });
    // A changed selection reaches every output (each lists or counts the runs); otherwise a stage that runs may or may not change its output.
    upstream = selectionMoved ? 'yes' : verdict === 'cached' ? 'no' : 'maybe';
  }
  return plans;
}

