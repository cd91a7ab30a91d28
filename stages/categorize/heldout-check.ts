// The held-out agreement check as categorize runs it, and its part of the
// plan. After the taxonomy is final: the sample (categorize/heldout.ts) is
// re-assigned against the taxonomy without its runs. With a model, through
// the assigner of the induce_assign strategy (assign.ts: the assign prompt,
// assign_batch_size runs per request, repairs) and so through the answerer
// and its store: a re-run with the same taxonomy asks nothing. Offline, by
// the nearest-category rule (heldout-nearest.ts), computed (no store entry:
// the rule's code is not part of the offline analyzer's version, which keys
// offline answers). It changes nothing of the categorization.
import type { LlmTools, StageAnswerer, CallPlan } from '../stage-context.ts';
import type { Category, CategorizeItem } from '../formats.ts';
import { assignInParallel, buildAssignRequests } from './assign.ts';
import { withoutRuns } from './llm.ts';
import { heldoutFigures, heldoutSample, heldoutSampleSize, HELDOUT_OFF, labelledRuns } from './heldout.ts';
import type { HeldoutDocument, LabelledRun, Reassignment } from './heldout.ts';
import type { CategorizeSettings } from './settings.ts';
import { repairLimit } from '../llm/repair.ts';
import { newAccounting } from '../llm/usage.ts';
import { sha256 } from '../llm/store.ts';
import { costUsd } from '../llm/pricing.ts';
import { nearestCategories } from './heldout-nearest.ts';
import { FREE } from '../plan/pricing.ts';
import { plural } from '../util/words.ts';

/** What the check needs of the categorization: the final categories (by name), the items, run ids, category ids. */
export interface HeldoutSubject {
  categories: readonly Category[];
  items: readonly CategorizeItem[];
  runIdOf: (itemId: string) => string;
  idOf: (categoryName: string) => string;
}

/** The sample and the taxonomy it is re-assigned against (its runs taken out). */
export function heldoutSetup(s: CategorizeSettings, subject: Pick<HeldoutSubject, 'categories' | 'items' | 'runIdOf'>) {
  const labelled = labelledRuns(subject.categories, subject.items, subject.runIdOf);
  const sample = heldoutSample(labelled, s.heldout);
  const taxonomy = withoutRuns(subject.categories, new Set(sample.map((l) => l.item.id)));
  return { labelled, sample, taxonomy };
}

/** The check, run by the stage: heldout.json's document. */
export async function runHeldout(t: LlmTools<unknown>, subject: HeldoutSubject, assignTemplate: string): Promise<HeldoutDocument> {
  const s = t.ctx.analysis.categorize;
  if (!s.heldout.enabled) return HELDOUT_OFF;
  const { labelled, sample, taxonomy } = heldoutSetup(s, subject);
  const common = { analyzer: t.label, settings: s.heldout, labelled, categories: subject.categories.length, sample, idOf: subject.idOf };
  if (s.provider === 'offline') {
    const reassigned = offlineReassign(subject.items, taxonomy, sample);
    console.log(`  held-out check: ${sample.length} of ${plural(labelled.length, 'categorized run', 'categorized runs')} re-assigned by the nearest-category rule`);
    return heldoutFigures({ ...common, method: 'nearest-category', prompt: null, reassigned, requests: 0 });
  }
  const requests = buildAssignRequests(sample.map((l) => l.item), taxonomy, assignTemplate, s.assign_batch_size).length;
  console.log(`  held-out check: ${sample.length} of ${plural(labelled.length, 'categorized run', 'categorized runs')} re-assigned with the assign prompt in ${plural(requests, 'request', 'requests')}`);
  // Progress over the requests (a repair counts as one more step done).
  const show = t.progress(requests);
  let done = 0;
  const complete: StageAnswerer['complete'] = (req) =>
    t.answerer.complete(req).then((a) => {
      done += 1;
      show(Math.min(requests, done), t.answerer.progressLine(0));
      return a;
    });
  const phase = await assignInParallel(sample.map((l) => l.item), taxonomy, { template: assignTemplate, batchSize: s.assign_batch_size, complete, maxRepairs: repairLimit(undefined), firstIndex: 0 }, newAccounting());
  const reassigned = new Map<string, Reassignment>();
  const sampled = new Set(sample.map((l) => l.item.id));
  for (const c of phase.taxonomy) for (const e of c.examples) if (sampled.has(e.id) && !reassigned.has(e.id)) reassigned.set(e.id, { outcome: 'category', category: c.category_name });
  for (const m of phase.misfits) {
    reassigned.set(m.item.id, m.proposal ? { outcome: 'none_fits', proposal: m.proposal.category_name } : { outcome: 'unanswered', reason: m.reason });
  }
  return heldoutFigures({ ...common, method: 'assign-prompt', prompt: { file: s.prompts.assign, sha256: sha256(assignTemplate) }, reassigned, requests });
}

/** The nearest-category rule on the sample. */
function offlineReassign(items: readonly CategorizeItem[], taxonomy: readonly Category[], sample: readonly LabelledRun[]): Map<string, Reassignment> {
  if (sample.length === 0) return new Map();
  const categories = taxonomy.map((c) => ({ name: c.category_name, members: c.examples.map((e) => e.id) }));
  const answers = nearestCategories(items, categories, sample.map((l) => l.item.id));
  return new Map(answers.map((a): [string, Reassignment] => [a.id, a.category === null ? { outcome: 'none_fits', proposal: null } : { outcome: 'category', category: a.category }]));
}

/** The check's calls for the plan: each request looked up in the store when the taxonomy is known, else estimated from the sample size. */
export function planHeldout(
  s: CategorizeSettings,
  answerer: StageAnswerer,
  subject: Pick<HeldoutSubject, 'items' | 'runIdOf'> & { categories: readonly Category[] | null },
  assignTemplate: string,
  estimate: { population: number; charsPerRun: number },
): { plan: CallPlan; note: string } {
  if (!s.heldout.enabled) return { plan: { ...FREE }, note: 'held-out check off' };
  if (s.provider === 'offline') return { plan: { ...FREE }, note: 'held-out check by the nearest-category rule' };
  if (subject.categories) {
    const { sample, taxonomy } = heldoutSetup(s, { ...subject, categories: subject.categories });
    const requests = buildAssignRequests(sample.map((l) => l.item), taxonomy, assignTemplate, s.assign_batch_size);
    const plan = { ...FREE };
    for (const r of requests) {
      const probe = answerer.probe(r.request);
      if (!probe) continue;
      if (probe.cached) {
        plan.reused += 1;
        continue;
      }
      plan.toPay += 1;
      plan.estInputTokens += probe.estInputTokens;
      plan.estCostUsd = plan.estCostUsd === null || probe.estCostUsd === null ? null : plan.estCostUsd + probe.estCostUsd;
    }
    return { plan, note: `held-out check: ${plural(sample.length, 'run', 'runs')} in ${plural(requests.length, 'assign call', 'assign calls')}` };
  }
  // The taxonomy depends on answers not bought yet: the sample's size from the runs, each request at the batch size.
  const size = heldoutSampleSize(estimate.population, s.heldout.fraction, s.heldout.max_runs);
  const calls = Math.ceil(size / s.assign_batch_size);
  const perCall = Math.ceil((assignTemplate.length + estimate.charsPerRun * Math.min(size, s.assign_batch_size)) / 4);
  return {
    plan: { reused: 0, toPay: calls, estInputTokens: perCall * calls, estCostUsd: costUsd(s.model, { input_tokens: perCall * calls, output_tokens: s.max_tokens * calls }), known: false },
    note: `held-out check: about ${plural(size, 'run', 'runs')} in ${plural(calls, 'assign call', 'assign calls')}`,
  };
}
