// What categorize reads before it runs (its stage's \`read\`): the ledger, the
// items built from the summaries, the prompt templates and the lock base.
// A contract of its own so that output.ts and stage.ts do not import each other.
import type { buildItems } from './items.ts';
import type { Templates } from './outcome.ts';
import type { LockBase } from './pass.ts';
import type { Ledger } from '../task-list/ledger.ts';

export interface CategorizeInput {
  ledger: LedgerFacts;
  built: ReturnType<typeof buildItems>;
  templates: Templates;
  base: LockBase | null;
}

/** What categorize keeps of the task list's ledger: the runs themselves are in `built` (at 100,000 runs the ledger holds 90 MB, mostly paths). */
export interface LedgerFacts {
  runCount: number;
  taskListFiles: Ledger['task_list_files'];
  refinementModels: string[];
}

export function ledgerFacts(ledger: Ledger): LedgerFacts {
  return {
    runCount: ledger.runs.length,
    taskListFiles: ledger.task_list_files,
    refinementModels: [...new Set(ledger.runs.map((r) => r.refinement_model))].sort(),
  };
}
