// What categorize reads before it runs (its stage's \`read\`): the ledger, the
// items built from the summaries, the prompt templates and the lock base.
// A contract of its own so that output.ts and stage.ts do not import each other.
import type { buildItems } from './items.ts';
import type { Templates } from './outcome.ts';
import type { LockBase } from './pass.ts';
import type { Ledger } from '../task-list/ledger.ts';

export interface CategorizeInput {
  ledger: Ledger;
  built: ReturnType<typeof buildItems>;
  templates: Templates;
  base: LockBase | null;
}
