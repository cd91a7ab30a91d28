// Induce, then assign in parallel (stages/categorize/assign.ts): the sample is
// stratified and deterministic; at 2,000 runs the sequential rounds (calls
// whose request depends on an earlier answer) stay under 50 while every run is
// accounted for; the taxonomy lock is respected (locked categories unchanged,
// new runs assigned in parallel, misfits create categories through the
// updater); a bad assignment answer is repaired through the real OpenAI SDK.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { adjustedRandIndex, assignmentsOf } from '../stages/agreement.ts';
import {
  assignAnswerSchema,
  buildAssignRequests,
  categorizeInduceAssign,
  categorizeWith,
  checkAssignAnswer,
  misfitOrder,
  planAssignCalls,
  sendEach,
  stratifiedSample,
  stratumQuotas,
} from '../stages/categorize/assign.ts';
import type { InduceAssignOptions, InduceAssignResult, SampleKey, SendAll } from '../stages/categorize/assign.ts';
import { categorizeIteratively, isGenericLabel } from '../stages/categorize/llm.ts';
import type { CategorizeResult, Complete } from '../stages/categorize/llm.ts';
import { lockedStableIds, stableIds } from '../stages/categorize/items.ts';
import type { CategorizeItem, Category } from '../stages/formats.ts';
import type { ChatMessage, LlmRequest } from '../stages/llm/types.ts';
import { buildLock, planFromLock, summaryDigest } from '../stages/categorize/taxonomy-lock.ts';
import { startFakeProviderServer } from './helpers/fake-provider-server.ts';
import type { FakeProviderServer, FakeReply, RecordedRequest } from './helpers/fake-provider-server.ts';
import { completeOverFake, fakeOpenAiSettings } from './helpers/llm-over-fake.ts';

const prompt = (f: string) => readFileSync(new URL(`../prompts/${f}`, import.meta.url), 'utf8');
const TEMPLATES = { create: prompt('categorize-create.md'), update: prompt('categorize-update.md'), assign: prompt('categorize-assign.md') };

// ---------------------------------------------------------------------------
// Synthetic runs: 7 common mechanisms, 12 rare ones (run i with i % 50 == 17), 3 late ones.

const COMMON = ['Deadline pressure', 'Unscoped cleanup', 'Claimed prior approval', 'Persistence demand', 'Sharing beyond the request', 'Silent overwrite', 'Forced workaround'];
const RARE = Array.from({ length: 12 }, (_, k) => `Rare mechanism ${String.fromCharCode(65 + k)}`);
/** Only in runs 1,000 and later (i % 100 == 33): what a lock built on the first 1,000 runs has never seen. */
const LATE = ['Late mechanism X', 'Late mechanism Y', 'Late mechanism Z'];
const DOMAINS = ['os', 'office', 'web'];
const AGENTS = ['haiku', 'opus'];

function mechanismOf(id: string): string {
  const i = Number(/^task-(\d+):/.exec(id)![1]);
  if (i >= 1000 && i % 100 === 33) return LATE[Math.floor(i / 100) % LATE.length]!;
  return i % 50 === 17 ? RARE[Math.floor(i / 50) % RARE.length]! : COMMON[i % COMMON.length]!;
}

function makeItem(i: number): CategorizeItem {
  const m = mechanismOf(`task-${i}:p${i}`);
  return {
    id: `task-${i}:p${i}`,
    original_instruction: `Convert report ${i} to PDF.`,
    perturbed_instruction: `Convert report ${i} to PDF, with the cue of ${m.toLowerCase()}.`,
    summary: `Run ${i} worked through ${m.toLowerCase()}.`,
    harmful_actions: [],
    elicitation_strategy: 'underspecification',
    severity: 'medium',
  };
}
const makeItems = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => makeItem(from + k));

/** Strata by domain and agent, ordered by the run id. */
const strata: SampleKey = (item) => {
  const i = Number(/^task-(\d+):/.exec(item.id)![1]);
  return { stratum: `${DOMAINS[i % 3]}|${AGENTS[Math.floor(i / 3) % 2]}`, key: `run:${item.id}` };
};

// ---------------------------------------------------------------------------
// A model that knows each run's mechanism, for the create, update and assign prompts

type Kind = 'create' | 'update' | 'assign';

function kindOf(first: string): Kind {
  if (first.includes('Runs to sort:')) return 'assign';
  if (first.includes('New runs to place:')) return 'update';
  return 'create';
}

function listed(first: string, kind: Kind): string[] {
  if (kind === 'create') return [];
  const [open, close] = kind === 'assign' ? ['The categories:\n', '\n\nRuns to sort:'] : ['The current categories:\n', '\n\nNew runs to place:'];
  const block = first.slice(first.indexOf(open) + open.length, first.indexOf(close));
  return (JSON.parse(block) as { name: string }[]).map((c) => c.name);
}

const example = (id: string) => ({ id, trigger_phrase: `the cue of ${mechanismOf(id).toLowerCase()}`, justification: `Run ${id} relies on this wording.` });

/** A careful model's answer to a conversation (repairs included: it answers the first prompt again). */
function goodAnswer(messages: readonly { role: string; content: string }[]): Record<string, unknown> {
  const first = messages[0]!.content;
  const kind = kindOf(first);
  const names = listed(first, kind);
  const ids = [...first.matchAll(/^Run id: (.+)$/gm)].map((m) => m[1]!);
  if (kind === 'assign') {
    return {
      assignments: ids.map((id) => {
        const m = mechanismOf(id);
        const fits = names.includes(m);
        return { ...example(id), category_name: fits ? m : null, proposed_category: fits ? null : { category_name: m, definition: `Wording of the kind "${m}".` } };
      }),
    };
  }
  const groups = new Map<string, string[]>();
  const assignments: Record<string, unknown>[] = [];
  for (const id of ids) {
    const m = mechanismOf(id);
    if (names.includes(m)) assignments.push({ ...example(id), category_name: m });
    else groups.set(m, [...(groups.get(m) ?? []), id]);
  }
  const categories = [...groups].map(([name, gids]) => ({ category_name: name, definition: `Wording of the kind "${name}".`, examples: gids.map(example) }));
  return kind === 'create' ? { categories } : { assignments, new_categories: categories };
}

/**
 * `complete` in memory that counts rounds: the calls issued while the
 * previous answers are being handled are answered together, one round later.
 * A call whose request depends on an earlier answer therefore lands in a
 * later round; independent calls share one.
 */
function roundCounting(answer: (messages: ChatMessage[]) => Record<string, unknown> = goodAnswer) {
  const state = { rounds: 0, calls: 0, widest: 0, byKind: { create: 0, update: 0, assign: 0 } as Record<Kind, number> };
  let queue: { req: LlmRequest<any>; resolve: (a: any) => void; reject: (e: unknown) => void }[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const now = queue;
    queue = [];
    state.rounds += 1;
    state.widest = Math.max(state.widest, now.length);
    for (const q of now) {
      try {
        const raw = answer(q.req.messages);
        const value = q.req.schema ? q.req.schema.zod.parse(raw) : raw;
        const requestHash = createHash('sha256').update(JSON.stringify(q.req.messages)).digest('hex');
        q.resolve({ value, usage: { input_tokens: 100, output_tokens: 20, total_tokens: 120 }, costUsd: 0.001, cached: false, requestHash });
      } catch (err) {
        q.reject(err);
      }
    }
  };
  const complete: Complete = (req) =>
    new Promise((resolve, reject) => {
      state.calls += 1;
      state.byKind[kindOf(req.messages[0]!.content)] += 1;
      queue.push({ req, resolve, reject });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
  return { complete, state };
}

const OPTS = { initialBatchSize: 10, iterativeBatchSize: 5, induceSampleSize: 200, assignBatchSize: 20, templates: TEMPLATES, sampleKey: strata };

/** Every item exactly once; no duplicate or generic names; each category holds one mechanism (the truth). */
function expectAccounted(result: CategorizeResult, items: readonly CategorizeItem[]) {
  const placed = result.categories.flatMap((c) => c.examples.map((e) => e.id));
  const listedIds = result.unassigned.map((u) => u.id);
  expect(new Set(placed).size).toBe(placed.length);
  expect([...placed, ...listedIds].sort()).toEqual(items.map((i) => i.id).sort());
  const names = result.categories.map((c) => c.category_name.trim().toLowerCase());
  expect(new Set(names).size).toBe(names.length);
  for (const c of result.categories) expect(isGenericLabel(c.category_name)).toBe(false);
}
function expectTruth(result: CategorizeResult) {
  for (const c of result.categories) for (const e of c.examples) expect(c.category_name).toBe(mechanismOf(e.id));
}

// ---------------------------------------------------------------------------

describe('the stratified sample', () => {
  const items = makeItems(0, 600);

  it('quotas add up, give every stratum one, and follow the stratum sizes', () => {
    const q = stratumQuotas(new Map([['a', 500], ['b', 90], ['c', 9], ['d', 1]]), 60);
    expect([...q.values()].reduce((n, x) => n + x, 0)).toBe(60);
    expect(q.get('d')).toBe(1);
    expect(q.get('a')).toBeGreaterThan(45);
    expect(stratumQuotas(new Map([['a', 3], ['b', 2]]), 100)).toEqual(new Map([['a', 3], ['b', 2]]));
    expect([...stratumQuotas(new Map([['a', 5], ['b', 5], ['c', 5]]), 2).values()]).toEqual([1, 1, 0]);
  });

  it('is deterministic: the same items in any order give the same sample in the same order; another seed another sample', () => {
    const a = stratifiedSample(items, 60, strata);
    const shuffled = [...items].reverse();
    const b = stratifiedSample(shuffled, 60, strata);
    expect(b.sample.map((i) => i.id)).toEqual(a.sample.map((i) => i.id));
    expect(a.sample).toHaveLength(60);
    expect(a.rest).toHaveLength(540);
    // rest keeps the input order
    expect(a.rest.map((i) => i.id)).toEqual(items.map((i) => i.id).filter((id) => !a.sample.some((s) => s.id === id)));
    const c = stratifiedSample(items, 60, strata, 'stability-1');
    expect(c.sample.map((i) => i.id)).not.toEqual(a.sample.map((i) => i.id));
  });

  it('takes every stratum in proportion and interleaves them', () => {
    const { sample } = stratifiedSample(items, 60, strata);
    const counts = new Map<string, number>();
    for (const s of sample) counts.set(strata(s).stratum, (counts.get(strata(s).stratum) ?? 0) + 1);
    expect([...counts.values()]).toEqual([10, 10, 10, 10, 10, 10]);
    // The first (creating) batch sees all six strata.
    expect(new Set(sample.slice(0, 6).map((s) => strata(s).stratum)).size).toBe(6);
  });
});

describe('the assign answer', () => {
  const tax: Category[] = [{ category_name: 'Deadline pressure', definition: 'd', examples: [] }];
  const ids = ['a:1', 'b:2', 'c:3', 'd:4'];
  const entry = (id: string, category_name: string | null, proposed: { category_name: string; definition: string } | null = null) => ({
    id, category_name, proposed_category: proposed, trigger_phrase: 'tp', justification: 'why',
  });

  it('a name restricted to the taxonomy or null; every field required (strict mode)', () => {
    const schema = assignAnswerSchema(ids, ['Deadline pressure']);
    expect(schema.safeParse({ assignments: [entry('a:1', 'Deadline pressure'), entry('b:2', null, { category_name: 'X', definition: 'y' })] }).success).toBe(true);
    expect(schema.safeParse({ assignments: [entry('a:1', 'Other')] }).success).toBe(false);
    expect(schema.safeParse({ assignments: [entry('zz:9', null)] }).success).toBe(false);
    const json = z.toJSONSchema(schema) as any;
    expect(json.properties.assignments.items.required).toEqual(['id', 'category_name', 'proposed_category', 'trigger_phrase', 'justification']);
  });

  it('states unknown names, missing proposals, generic proposals, foreign, repeated and forgotten runs', () => {
    const check = checkAssignAnswer(
      {
        assignments: [
          entry('a:1', 'Deadline pressure'),
          entry('a:1', 'Deadline pressure'),
          entry('b:2', 'Made up'),
          entry('c:3', null),
          entry('zz:9', 'Deadline pressure'),
          entry('d:4', null, { category_name: 'goal_conflict', definition: 'g' }),
        ],
      },
      ids,
      tax,
    );
    expect(check.problems).toEqual([
      expect.stringContaining('Run "b:2" is assigned to category "Made up", which is not in the list'),
      expect.stringContaining('Run "c:3" has no category_name and no proposed_category'),
      expect.stringContaining('"goal_conflict" is a generic strategy label'),
      expect.stringContaining('"zz:9" is not the id of a run in this batch'),
      expect.stringContaining('Run "a:1" appears 2 times'),
    ]);
    expect(check.placements.map((p) => p.id)).toEqual(['a:1']);
    expect(check.unplaced.map((u) => u.id)).toEqual(['b:2', 'c:3', 'd:4']);
  });

  it('"none fits" with a listed proposal is that category; with a new one a misfit', () => {
    const check = checkAssignAnswer(
      { assignments: [entry('a:1', null, { category_name: ' deadline  PRESSURE', definition: 'again' }), entry('b:2', null, { category_name: 'Fresh', definition: 'new' })] },
      ['a:1', 'b:2'],
      tax,
    );
    expect(check.problems).toEqual([]);
    expect(check.placements.map((p) => [p.id, p.key])).toEqual([['a:1', 'deadline pressure']]);
    expect(check.misfits).toEqual([{ id: 'b:2', proposal: { category_name: 'Fresh', definition: 'new' } }]);
  });

  it('misfits go to the updater one per distinct proposal first', () => {
    const m = (id: string, name: string | null) => ({ item: makeItem(Number(id)), proposal: name ? { category_name: name, definition: '' } : null });
    const order = misfitOrder([m('1', 'B'), m('2', 'A'), m('3', null), m('4', 'A'), m('5', 'C'), m('6', 'A')]);
    expect(order.map((x) => x.item.id)).toEqual(['task-2:p2', 'task-1:p1', 'task-5:p5', 'task-4:p4', 'task-6:p6', 'task-3:p3']);
  });

  it('the requests of a phase are one list built before sending, in item order', () => {
    const items = makeItems(0, 45);
    const reqs = buildAssignRequests(items, tax, TEMPLATES.assign, 20);
    expect(reqs.map((r) => r.ids.length)).toEqual([20, 20, 5]);
    expect(reqs.map((r) => r.index)).toEqual([0, 1, 2]);
    expect(reqs[2]!.ids[0]).toBe('task-40:p40');
    expect(reqs[0]!.request.messages[0]!.content).toContain('"name": "Deadline pressure"');
    expect(reqs[0]!.request.schema!.name).toBe('categorize_assign');
  });
});

describe('2,000 runs: sequential rounds counted', () => {
  const items = makeItems(0, 2000);

  it('induce_assign: at most 50 rounds, every run accounted for, the same partition as sequential', async () => {
    const par = roundCounting();
    const result = await categorizeInduceAssign(items, { ...OPTS, complete: par.complete });
    expectAccounted(result, items);
    expectTruth(result);
    expect(result.unassigned).toEqual([]);
    expect(result.categories.map((c) => c.category_name).sort()).toEqual([...new Set(items.map((i) => mechanismOf(i.id)))].sort());
    expect(par.state.rounds).toBeLessThanOrEqual(50);
    expect(result.stats.sequential_rounds).toBe(par.state.rounds);
    // Induction: 1 create + ceil(190 / 5) updates; then 90 assign requests at once.
    expect(result.stats).toMatchObject({ sample_runs: 200, assigned_runs: 1800 });
    expect(par.state.widest).toBe(90);
    // Rare mechanisms absent from the sample: "none fits", then created by the updater.
    expect(result.stats.none_fits).toBeGreaterThan(0);
    expect(result.stats.placed_in_parallel + result.stats.none_fits).toBe(1800);
    const planned = planAssignCalls(2000, { ...OPTS, start: false });
    expect(planned).toEqual({ sequentialCalls: 39, parallelCalls: 90, totalCalls: 129, sequentialRounds: 40 });
    expect(par.state.byKind.create + par.state.byKind.update).toBeGreaterThanOrEqual(39);

    const seq = roundCounting();
    const reference = await categorizeIteratively(items, { ...OPTS, complete: seq.complete });
    expect(seq.state.rounds).toBe(1 + Math.ceil(1990 / 5));
    expect(adjustedRandIndex(assignmentsOf(reference.categories), assignmentsOf(result.categories))).toBe(1);
  });

  it('is deterministic, and ids are stable: a second pass builds the same categories in the same order', async () => {
    const a = await categorizeInduceAssign(items, { ...OPTS, complete: roundCounting().complete });
    const b = await categorizeInduceAssign([...items].reverse().reverse(), { ...OPTS, complete: roundCounting().complete });
    expect(b.categories).toEqual(a.categories);
    const ids = (r: InduceAssignResult) => stableIds('cat', r.categories.map((c) => c.category_name), (s) => createHash('sha256').update(s).digest('hex'));
    expect(ids(b)).toEqual(ids(a));
  });

  it('many misfits: a few per wave go to the updater, the rest are assigned again; rounds stay bounded', async () => {
    // A sample of 20: most rare mechanisms and some common ones are missing.
    const par = roundCounting();
    const result = await categorizeInduceAssign(items, { ...OPTS, induceSampleSize: 20, complete: par.complete });
    expectAccounted(result, items);
    expectTruth(result);
    expect(result.unassigned).toEqual([]);
    expect(result.stats.misfit_waves).toBeGreaterThan(0);
    expect(par.state.rounds).toBeLessThanOrEqual(50);
    expect(result.stats.updated_runs).toBeLessThan(result.stats.none_fits);
  });

  it('the requests of each phase go to an injected sender as one list', async () => {
    const lists: number[] = [];
    const par = roundCounting();
    const sendAll: SendAll = (requests, complete) => {
      lists.push(requests.length);
      return sendEach(requests, complete);
    };
    const result = await categorizeInduceAssign(items, { ...OPTS, complete: par.complete, sendAll });
    expect(lists[0]).toBe(90);
    expect(result.batches.filter((b) => b.kind === 'assign').length).toBe(lists.reduce((n, x) => n + x, 0));
  });

  it('sequential through categorizeWith is categorizeIteratively, request for request', async () => {
    const few = makeItems(0, 40);
    const a = roundCounting();
    const b = roundCounting();
    const viaStrategy = await categorizeWith('sequential', few, { ...OPTS, complete: a.complete });
    const direct = await categorizeIteratively(few, { ...OPTS, complete: b.complete });
    expect(viaStrategy.stats).toBeNull();
    expect(viaStrategy.categories).toEqual(direct.categories);
    expect(a.state).toEqual(b.state);
  });

  it('no more runs than the sample: exactly the sequential flow', async () => {
    const few = makeItems(0, 150);
    const a = await categorizeInduceAssign(few, { ...OPTS, complete: roundCounting().complete });
    const b = await categorizeIteratively(few, { ...OPTS, complete: roundCounting().complete });
    expect(a.categories).toEqual(b.categories);
    expect(a.stats).toMatchObject({ sample_runs: 150, assigned_runs: 0 });
  });
});

describe('against a taxonomy lock', () => {
  const same = (id: string) => id;
  const lockOf = (items: CategorizeItem[], result: CategorizeResult) =>
    buildLock({
      analysis: 'test',
      built_with: { model: 'gpt-5-mini' },
      categories: result.categories.map((c, i) => ({ category_id: `cat-${i}`, category_name: c.category_name, definition: c.definition, examples: c.examples.map((e) => ({ ...e, run_id: e.id })) })),
      summary_digests: Object.fromEntries(items.map((i) => [i.id, summaryDigest(i)])),
    });

  it('new runs are assigned in parallel; locked categories never change; misfits create categories through the updater', async () => {
    // The lock holds the first 1,000 runs; runs 1,000 to 2,000 bring the late mechanisms.
    const base = makeItems(0, 1000);
    const first = await categorizeInduceAssign(base, { ...OPTS, complete: roundCounting().complete });
    const lock = lockOf(base, first);
    const lockedNames = first.categories.map((c) => c.category_name);
    const all = makeItems(0, 2000);
    const plan = planFromLock(lock, all, same);
    expect(plan.toAdd).toHaveLength(1000);

    const counter = roundCounting();
    const grown = await categorizeInduceAssign(plan.toAdd, { ...OPTS, complete: counter.complete, start: { categories: plan.keep } });
    expectAccounted(grown, all);
    expectTruth(grown);
    // Nothing induced; 50 assign requests at once; the misfits' updates are the only sequential calls.
    expect(grown.stats).toMatchObject({ sample_runs: 0, assigned_runs: 1000 });
    expect(counter.state.widest).toBe(50);
    expect(counter.state.byKind.create).toBe(0);
    expect(counter.state.rounds).toBeLessThanOrEqual(10);
    // Locked categories: same names, definitions, order, and their runs first, unchanged.
    expect(grown.categories.slice(0, lockedNames.length).map((c) => c.category_name)).toEqual(lockedNames);
    grown.categories.slice(0, lockedNames.length).forEach((c, k) => {
      expect(c.definition).toBe(first.categories[k]!.definition);
      expect(c.examples.slice(0, first.categories[k]!.examples.length)).toEqual(first.categories[k]!.examples);
    });
    const added = grown.categories.slice(lockedNames.length).map((c) => c.category_name);
    expect([...added].sort()).toEqual([...LATE]);
    expect(grown.stats.none_fits).toBeGreaterThan(0);
    // Locked ids are kept; a new category gets a new id.
    const locked = new Map(lock.categories.map((c) => [c.category_name, c.category_id]));
    const ids = lockedStableIds(grown.categories.map((c) => c.category_name), locked, (n) => `new-${n}`);
    expect(ids.slice(0, lockedNames.length)).toEqual(lock.categories.map((c) => c.category_id));
    expect(ids.slice(lockedNames.length)).toEqual(added.map((n) => `new-${n}`));
  });
});

// ---------------------------------------------------------------------------
// Through the real OpenAI SDK and the response store

let server: FakeProviderServer;
let dir: string;

beforeAll(async () => {
  server = await startFakeProviderServer({ maxLifetimeMs: 300_000 });
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'categorize-assign-'));
});
afterEach(() => {
  server.reset();
  rmSync(dir, { recursive: true, force: true });
});
afterAll(async () => {
  await server.close();
});

const overFake = (extra: Record<string, unknown> = {}): Complete => completeOverFake(fakeOpenAiSettings(server, { concurrency: 8 }), dir, 'store', extra);
const firstOf = (r: RecordedRequest) => (r.body.messages as { content: string }[])[0]!.content;

describe('induce_assign over the real OpenAI client', () => {
  const items = makeItems(0, 150);
  const opts: Omit<InduceAssignOptions, 'complete'> = { ...OPTS, induceSampleSize: 30, assignBatchSize: 10 };

  it('structured assign requests, answers replayed from the store on a second pass', async () => {
    server.handle((r) => ({ text: JSON.stringify(goodAnswer(r.body.messages)), usage: { input: 1000, output: 200 } }));
    const result = await categorizeInduceAssign(items, { ...opts, complete: overFake() });
    expectAccounted(result, items);
    expectTruth(result);
    expect(result.unassigned).toEqual([]);
    const assigns = server.requests.filter((r) => kindOf(firstOf(r)) === 'assign');
    expect(assigns.length).toBeGreaterThanOrEqual(12);
    const schema = assigns[0]!.body.response_format.json_schema.schema;
    expect(schema.properties.assignments.items.properties.category_name.anyOf.map((x: any) => x.type ?? 'enum')).toEqual(['string', 'null']);
    const asked = server.requests.length;
    expect(result.paidCalls).toBe(asked);

    server.reset();
    const again = await categorizeInduceAssign(items, { ...opts, complete: overFake() });
    expect(server.requests).toHaveLength(0);
    expect(again.categories).toEqual(result.categories);
    expect(again.cachedCalls).toBe(asked);
    expect(again.usage).toEqual(result.usage);
  });

  it('a bad assignment answer is repaired: the problems are stated back, no run is lost', async () => {
    let sabotaged = 0;
    server.handle((r): FakeReply => {
      const messages = r.body.messages as { role: string; content: string }[];
      const answer = goodAnswer(messages) as { assignments?: any[] };
      // The first answer of every assign batch forgets its last run and places its first twice.
      if (kindOf(messages[0]!.content) === 'assign' && messages.length === 1) {
        sabotaged += 1;
        answer.assignments!.pop();
        answer.assignments!.push({ ...answer.assignments![0] });
      }
      return { text: JSON.stringify(answer) };
    });
    const result = await categorizeInduceAssign(items, { ...opts, complete: overFake() });
    expectAccounted(result, items);
    expectTruth(result);
    expect(result.unassigned).toEqual([]);
    const assignBatches = result.batches.filter((b) => b.kind === 'assign');
    expect(sabotaged).toBeGreaterThan(0);
    expect(assignBatches.filter((b) => b.repairs === 1)).toHaveLength(sabotaged);
    const repair = server.requests.find((r) => kindOf(firstOf(r)) === 'assign' && r.body.messages.length === 3)!;
    const text = repair.body.messages[2].content as string;
    expect(text).toMatch(/is missing from your answer/);
    expect(text).toMatch(/appears 2 times/);
  });

  it('an answer with a name outside the taxonomy is re-asked by the client (enum), with the re-asks off by the integrity check', async () => {
    let bad = true;
    server.handle((r): FakeReply => {
      const messages = r.body.messages as { role: string; content: string }[];
      const answer = goodAnswer(messages) as { assignments?: any[] };
      if (kindOf(messages[0]!.content) === 'assign' && messages.length === 1 && bad) {
        bad = false;
        answer.assignments![0].category_name = 'A Category That Does Not Exist';
      }
      return { text: JSON.stringify(answer) };
    });
    const result = await categorizeInduceAssign(items, { ...opts, complete: overFake({ maxValidationRetries: 0 }) });
    expectAccounted(result, items);
    expect(result.unassigned).toEqual([]);
    const repairs = server.requests.filter((r) => kindOf(firstOf(r)) === 'assign' && r.body.messages.length === 3);
    expect(repairs).toHaveLength(1);
    expect(repairs[0]!.body.messages[2].content).toContain('"A Category That Does Not Exist", which is not in the list');
  });

  it('an assign answer that never parses: its runs go to the updater, none is lost', async () => {
    server.handle((r): FakeReply => {
      const messages = r.body.messages as { role: string; content: string }[];
      if (kindOf(messages[0]!.content) === 'assign' && messages[0]!.content.includes('Run id: task-149:p149')) return { text: '{"assignments": [{"id": "task-' };
      return { text: JSON.stringify(goodAnswer(messages)) };
    });
    const result = await categorizeInduceAssign(items, { ...opts, complete: overFake() });
    expectAccounted(result, items);
    expectTruth(result);
    expect(result.unassigned).toEqual([]);
    const broken = result.batches.find((b) => b.kind === 'assign' && b.ids.includes('task-149:p149'))!;
    expect(broken.unresolved[0]).toMatch(/^no valid answer: categorize-assign: the answer did not match the expected shape/);
    expect(result.stats.unanswered).toBe(broken.ids.length);
    // The updater placed them: update batches after the assignment.
    const firstAssign = result.batches.findIndex((b) => b.kind === 'assign');
    expect(result.batches.slice(firstAssign).some((b) => b.kind === 'update' && b.ids.includes('task-149:p149'))).toBe(true);
  });

  it('a provider failure in one assign request fails the pass after the others are stored; the re-run pays only the rest', async () => {
    let failed = false;
    server.handle((r): FakeReply => {
      const messages = r.body.messages as { role: string; content: string }[];
      if (!failed && kindOf(messages[0]!.content) === 'assign' && messages[0]!.content.includes('Run id: task-149:p149')) {
        failed = true;
        return { status: 400, error: 'simulated failure' };
      }
      return { text: JSON.stringify(goodAnswer(messages)) };
    });
    await expect(categorizeInduceAssign(items, { ...opts, complete: overFake() })).rejects.toThrow(/simulated failure/);
    const before = server.requests.length;
    server.reset();
    server.handle((r) => ({ text: JSON.stringify(goodAnswer(r.body.messages)) }));
    const result = await categorizeInduceAssign(items, { ...opts, complete: overFake() });
    expectAccounted(result, items);
    expect(server.requests.length).toBeLessThan(before);
    expect(server.requests.every((r) => kindOf(firstOf(r)) !== 'create')).toBe(true);
  });
});
