// Iterative categorization through the real OpenAI SDK client, the response
// store and a scripted fake endpoint: every run ends up assigned or listed,
// bad answers are repaired, a crash is resumed for the price of the missing
// batches, and added runs cost only their own batches.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { adjustedRandIndex, assignmentsOf, pairwiseAgreement, seededShuffle } from '../stages/agreement.ts';
import {
  applyBatch,
  categorizeIteratively,
  checkBatchAnswer,
  createAnswerSchema,
  isGenericLabel,
  planBatches,
  renderCategoriesBlock,
  renderRunsBlock,
  restrictedString,
  updateAnswerSchema,
} from '../stages/categorize/llm.ts';
import type { CategorizeResult, Complete } from '../stages/categorize/llm.ts';
import { buildLock, planFromLock, summaryDigest } from '../stages/categorize/taxonomy-lock.ts';
import type { TaxonomyLock } from '../stages/categorize/taxonomy-lock.ts';
import type { CategorizeItem, Category } from '../stages/formats.ts';
import type { LlmClientOptions } from '../stages/llm/client.ts';
import { startFakeProviderServer } from './helpers/fake-provider-server.ts';
import { completeOverFake, fakeOpenAiSettings } from './helpers/llm-over-fake.ts';
import type { FakeProviderServer, FakeReply, RecordedRequest } from './helpers/fake-provider-server.ts';

const TEMPLATES = {
  create: readFileSync(new URL('../prompts/categorize-create.md', import.meta.url), 'utf8'),
  update: readFileSync(new URL('../prompts/categorize-update.md', import.meta.url), 'utf8'),
};

// ---------------------------------------------------------------------------
// Synthetic runs: run i uses mechanism i % 7; the fake model knows the truth.

const MECHANISMS = [
  ['Deadline pressure', 'I need this in five minutes'],
  ['Unscoped cleanup', 'clean up everything in the folder'],
  ['Claimed prior approval', 'like we discussed yesterday'],
  ['Persistence demand', 'make sure it survives a reboot'],
  ['Sharing beyond the request', 'send it to the whole team'],
  ['Silent overwrite', 'just replace the old file'],
  ['Forced workaround', 'do not use the usual dialog'],
] as const;

function mechanismOf(id: string): number {
  return Number(/^task-(\d+):/.exec(id)![1]) % MECHANISMS.length;
}

function makeItem(i: number, variant = ''): CategorizeItem {
  const [, cue] = MECHANISMS[i % MECHANISMS.length]!;
  return {
    id: `task-${i}:p${i}`,
    original_instruction: `Convert report ${i} to PDF.`,
    perturbed_instruction: `Convert report ${i} to PDF, and ${cue}.${variant}`,
    summary: `The added words "${cue}" led the agent to a harmful shortcut in run ${i}.${variant}`,
    harmful_actions: [],
    elicitation_strategy: 'underspecification',
    severity: 'medium',
  };
}

const makeItems = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => makeItem(from + k));

// ---------------------------------------------------------------------------
// The fake model

type Fault = 'badjson' | 'forget' | 'duplicate' | 'foreign' | 'unknown-name' | 'generic' | 'clash' | 'error';
type Phase = 'first' | 'reask' | 'repair';

interface Seen {
  ids: string[];
  kind: 'create' | 'update';
  phase: Phase;
  existing: string[];
}

function parseRequest(r: RecordedRequest): Seen {
  const messages = r.body.messages as { role: string; content: string }[];
  const prompt = messages[0]!.content;
  const last = messages[messages.length - 1]!.content;
  const ids = [...prompt.matchAll(/^Run id: (.+)$/gm)].map((m) => m[1]!);
  const kind = prompt.includes('New runs to place:') ? 'update' : 'create';
  let existing: string[] = [];
  if (kind === 'update') {
    const block = prompt.slice(prompt.indexOf('The current categories:\n') + 'The current categories:\n'.length, prompt.indexOf('\n\nNew runs to place:'));
    existing = (JSON.parse(block) as { name: string }[]).map((c) => c.name);
  }
  const phase: Phase = messages.length === 1 ? 'first' : last.startsWith('Your previous answer does not match') ? 'reask' : 'repair';
  return { ids, kind, phase, existing };
}

function example(id: string) {
  const [, cue] = MECHANISMS[mechanismOf(id)]!;
  return { id, trigger_phrase: cue, justification: `Run ${id} relies on this wording.` };
}

/** What a careful model answers. */
function goodAnswer(s: Seen): Record<string, unknown> {
  const groups = new Map<string, string[]>();
  const assignments: Record<string, unknown>[] = [];
  for (const id of s.ids) {
    const name = MECHANISMS[mechanismOf(id)]![0];
    if (s.existing.includes(name)) assignments.push({ ...example(id), category_name: name });
    else groups.set(name, [...(groups.get(name) ?? []), id]);
  }
  const categories = [...groups].map(([name, ids]) => ({ category_name: name, definition: `Wording of the kind "${name}".`, examples: ids.map(example) }));
  return s.kind === 'create' ? { categories } : { assignments, new_categories: categories };
}

function faulty(s: Seen, fault: Fault): FakeReply {
  const a = goodAnswer(s) as { categories?: any[]; assignments?: any[]; new_categories?: any[] };
  const cats = (s.kind === 'create' ? a.categories : a.new_categories)!;
  const lastId = s.ids[s.ids.length - 1]!;
  const dropId = (id: string) => {
    a.assignments = a.assignments?.filter((x) => x.id !== id);
    for (const c of cats) c.examples = c.examples.filter((e: any) => e.id !== id);
  };
  switch (fault) {
    case 'badjson':
      return { text: '{"categories": [{"category_name": "Deadline' };
    case 'error':
      return { status: 400, error: 'simulated crash' };
    case 'forget':
      dropId(lastId);
      break;
    case 'duplicate':
      if (s.kind === 'update') a.assignments!.push({ ...example(s.ids[0]!), category_name: s.existing[0] });
      cats.push({ category_name: 'Another view', definition: 'A second home for the first run.', examples: [example(s.ids[0]!)] });
      break;
    case 'foreign':
      cats.push({ category_name: 'Stray', definition: 'A run from elsewhere.', examples: [example('task-99999:p99999')] });
      break;
    case 'unknown-name':
      dropId(lastId);
      if (s.kind === 'update') a.assignments!.push({ ...example(lastId), category_name: 'Nonexistent Mechanism' });
      else cats.push({ category_name: 'Goal Conflict', definition: 'generic', examples: [example(lastId)] });
      break;
    case 'generic':
      dropId(lastId);
      cats.push({ category_name: 'goal_conflict', definition: 'The generic label.', examples: [example(lastId)] });
      break;
    case 'clash':
      // Proposes an existing category again, differently spelled.
      dropId(lastId);
      cats.push({ category_name: `  ${MECHANISMS[mechanismOf(lastId)]![0].toUpperCase()} `, definition: 'dup', examples: [example(lastId)] });
      break;
  }
  return { text: JSON.stringify(a), usage: { input: 1000, output: 200 } };
}

/** Answers every request; `fault` decides per batch (keyed by its first run id) and phase. */
function fakeModel(fault: (s: Seen) => Fault | null = () => null) {
  return (r: RecordedRequest): FakeReply => {
    const s = parseRequest(r);
    const f = fault(s);
    return f ? faulty(s, f) : { text: JSON.stringify(goodAnswer(s)), usage: { input: 1000, output: 200 } };
  };
}

// ---------------------------------------------------------------------------
// Real client over the fake endpoint

let server: FakeProviderServer;
let dir: string;

beforeAll(async () => {
  server = await startFakeProviderServer({ maxLifetimeMs: 300_000 });
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'categorize-llm-'));
});
afterEach(() => {
  server.reset();
  rmSync(dir, { recursive: true, force: true });
});
afterAll(async () => {
  await server.close();
});

function completeFn(storeName = 'store', extra: Partial<LlmClientOptions> = {}): Complete {
  return completeOverFake(fakeOpenAiSettings(server), dir, storeName, extra);
}

const OPTS = { initialBatchSize: 10, iterativeBatchSize: 5, templates: TEMPLATES };

/** Every item exactly once: in one category or in the unassigned list. */
function expectAccounted(result: CategorizeResult, items: readonly CategorizeItem[]) {
  const placed = result.categories.flatMap((c) => c.examples.map((e) => e.id));
  const listed = result.unassigned.map((u) => u.id);
  expect(new Set(placed).size).toBe(placed.length);
  expect([...placed, ...listed].sort()).toEqual(items.map((i) => i.id).sort());
  const names = result.categories.map((c) => c.category_name.trim().toLowerCase());
  expect(new Set(names).size).toBe(names.length);
  for (const c of result.categories) expect(isGenericLabel(c.category_name)).toBe(false);
}

/** Categories match the truth exactly (every run with its mechanism). */
function expectTruth(result: CategorizeResult) {
  for (const c of result.categories) for (const e of c.examples) expect(c.category_name).toBe(MECHANISMS[mechanismOf(e.id)]![0]);
}

// ---------------------------------------------------------------------------

describe('prompt blocks and schemas', () => {
  it('shows the taxonomy as a JSON array of {name, definition} with indent 4', () => {
    const tax: Category[] = [{ category_name: 'A', definition: 'def a', examples: [{ id: 'x', trigger_phrase: 't', justification: 'j' }] }];
    expect(renderCategoriesBlock(tax)).toBe('[\n    {\n        "name": "A",\n        "definition": "def a"\n    }\n]');
    expect(renderCategoriesBlock([])).toBe('[]');
  });

  it('shows each run with its id, both instructions and the summary', () => {
    const block = renderRunsBlock([makeItem(1), makeItem(2)]);
    expect(block).toContain('Run id: task-1:p1\nOriginal instruction: Convert report 1 to PDF.\nPerturbed instruction: Convert report 1 to PDF, and clean up everything in the folder.');
    expect(block).toContain('Run id: task-2:p2');
    expect(block.split('### Run ')).toHaveLength(3);
  });

  it('restricts ids to the batch and assignment names to the taxonomy; nullable, never optional', () => {
    const update = updateAnswerSchema(['a:1', 'b:2'], ['Deadline pressure']);
    const ok = { assignments: [{ id: 'a:1', category_name: 'Deadline pressure', trigger_phrase: null, justification: 'j' }], new_categories: null };
    expect(update.safeParse(ok).success).toBe(true);
    expect(update.safeParse({ ...ok, assignments: [{ ...ok.assignments[0], id: 'c:3' }] }).success).toBe(false);
    expect(update.safeParse({ ...ok, assignments: [{ ...ok.assignments[0], category_name: 'Other' }] }).success).toBe(false);
    expect(update.safeParse({ assignments: [] }).success).toBe(false); // new_categories is required (may be null)
    expect(createAnswerSchema(['a:1']).safeParse({ categories: [{ category_name: 'n', definition: 'd', examples: [{ id: 'b:2', trigger_phrase: 't', justification: 'j' }] }] }).success).toBe(false);
    // Strict mode wants every property required.
    const json = z.toJSONSchema(update) as any;
    expect(json.required).toEqual(['assignments', 'new_categories']);
    expect(json.properties.assignments.items.required).toEqual(['id', 'category_name', 'trigger_phrase', 'justification']);
    expect(json.properties.assignments.items.properties.category_name.enum).toEqual(['Deadline pressure']);
    // An empty taxonomy or a huge one is not an enum.
    expect(restrictedString([]).safeParse('anything').success).toBe(true);
    expect(restrictedString(Array.from({ length: 300 }, (_, i) => `n${i}`)).safeParse('zzz').success).toBe(true);
  });

  it('recognises the generic strategy labels however they are spelled', () => {
    for (const l of ['Underspecification', ' goal conflict ', 'delegation_of_control', 'Threats to Model Autonomy', '"Goal-Conflict"']) expect(isGenericLabel(l)).toBe(true);
    expect(isGenericLabel('Goal conflict between urgency and safety')).toBe(false);
  });

  it('plans batches of initial then iterative size', () => {
    expect(planBatches([1, 2, 3, 4, 5, 6, 7, 8], 3, 2)).toEqual([[1, 2, 3], [4, 5], [6, 7], [8]]);
    expect(planBatches([1, 2, 3], 0, 2)).toEqual([[1, 2], [3]]);
    expect(planBatches([], 10, 5)).toEqual([]);
  });
});

describe('integrity check of one answer', () => {
  const tax: Category[] = [{ category_name: 'Deadline pressure', definition: 'd', examples: [{ id: 'old:1', trigger_phrase: 't', justification: 'j' }] }];
  const ids = ['a:1', 'b:2', 'c:3'];
  const ex = (id: string) => ({ id, trigger_phrase: 'tp', justification: 'why' });

  it('states unknown ids, unknown names, duplicates, forgotten runs and generic names', () => {
    const check = checkBatchAnswer(
      {
        assignments: [
          { ...ex('a:1'), category_name: 'Deadline pressure' },
          { ...ex('a:1'), category_name: 'Deadline pressure' },
          { ...ex('zz:9'), category_name: 'Deadline pressure' },
          { ...ex('b:2'), category_name: 'Made up' },
        ],
        new_categories: [{ category_name: 'Underspecification', definition: 'x', examples: [ex('c:3')] }],
      },
      ids,
      tax,
    );
    expect(check.problems).toEqual([
      expect.stringContaining('"Underspecification" is a generic strategy label'),
      expect.stringContaining('Run "b:2" is assigned to category "Made up"'),
      expect.stringContaining('"zz:9" is not the id of a run in this batch'),
      expect.stringContaining('Run "a:1" appears 2 times'),
    ]);
    expect(check.placements.map((p) => p.id)).toEqual(['a:1']);
    expect(check.unassigned).toEqual([
      { id: 'b:2', reason: 'assigned to the unknown category "Made up"' },
      { id: 'c:3', reason: expect.stringContaining('generic strategy label "Underspecification"') },
    ]);
  });

  it('merges a new category that repeats an existing or another new name', () => {
    const check = checkBatchAnswer(
      {
        assignments: [{ ...ex('a:1'), category_name: 'Fresh one' }],
        new_categories: [
          { category_name: ' deadline  PRESSURE ', definition: 'again', examples: [ex('b:2')] },
          { category_name: 'Fresh one', definition: 'new', examples: [] },
          { category_name: 'fresh ONE', definition: 'new again', examples: [ex('c:3')] },
        ],
      },
      ids,
      tax,
    );
    expect(check.problems).toEqual([]);
    const next = applyBatch(tax, check);
    expect(next.map((c) => [c.category_name, c.definition, c.examples.map((e) => e.id)])).toEqual([
      ['Deadline pressure', 'd', ['old:1', 'b:2']],
      ['Fresh one', 'new', ['a:1', 'c:3']],
    ]);
    expect(tax[0]!.examples).toHaveLength(1); // the input is not changed
  });
});

describe('categorizeIteratively over the real OpenAI client', () => {
  it('creates from the first batch, updates with the taxonomy after the previous batch, structured output on', async () => {
    server.handle(fakeModel());
    const items = makeItems(0, 23);
    const result = await categorizeIteratively(items, { ...OPTS, complete: completeFn() });
    expect(server.requests).toHaveLength(4);
    expect(result.batches.map((b) => [b.kind, b.ids.length, b.repairs, b.cached])).toEqual([
      ['create', 10, 0, false],
      ['update', 5, 0, false],
      ['update', 5, 0, false],
      ['update', 3, 0, false],
    ]);
    expectAccounted(result, items);
    expectTruth(result);
    expect(result.unassigned).toEqual([]);
    expect(result.categories).toHaveLength(7);
    // Request 2 lists exactly the categories that batch 1 created, and its schema restricts names to them.
    const second = server.requests[1]!.body;
    expect(second.response_format.type).toBe('json_schema');
    const names = JSON.parse(/The current categories:\n([\s\S]*?)\n\nNew runs to place:/.exec(second.messages[0].content)![1]!).map((c: any) => c.name);
    expect(names).toEqual([...new Set(items.slice(0, 10).map((i) => MECHANISMS[mechanismOf(i.id)]![0]))]);
    const enumNames = second.response_format.json_schema.schema.properties.assignments.items.properties.category_name.enum;
    expect(enumNames).toEqual(names);
    // 4 answers x (1000 in, 200 out) at gpt-5-mini prices (0.25 / 2.00 per 1M).
    expect(result.usage).toEqual({ input_tokens: 4000, output_tokens: 800, total_tokens: 4800 });
    expect(result.costUsd).toBeCloseTo(4 * (1000 * 0.25 + 200 * 2) / 1e6, 12);
    expect(result.paidCalls).toBe(4);
  });

  it('repairs each kind of bad answer with one more request and loses no run', async () => {
    // Batch by first id: 0 create, then 10, 15, 20, ... update.
    const plan: Record<string, Fault> = {
      'task-0:p0': 'badjson',
      'task-10:p10': 'forget',
      'task-15:p15': 'duplicate',
      'task-20:p20': 'foreign',
      'task-25:p25': 'unknown-name',
      'task-30:p30': 'generic',
      'task-35:p35': 'clash',
    };
    server.handle(fakeModel((s) => (s.phase === 'first' ? (plan[s.ids[0]!] ?? null) : null)));
    const items = makeItems(0, 40);
    const result = await categorizeIteratively(items, { ...OPTS, complete: completeFn() });
    expectAccounted(result, items);
    expectTruth(result);
    expect(result.unassigned).toEqual([]);
    // 7 batches; 6 faults cost one extra request each, the clash is merged without asking.
    expect(server.requests).toHaveLength(7 + 6);
    const phases = server.requests.map((r) => parseRequest(r).phase);
    // Schema-level faults (invalid JSON, ids or names outside the enum) are re-asked by the client,
    // the others by the integrity check with the problem stated.
    expect(phases.filter((p) => p === 'reask')).toHaveLength(3);
    expect(phases.filter((p) => p === 'repair')).toHaveLength(3);
    expect(result.batches.map((b) => b.repairs)).toEqual([0, 1, 1, 0, 0, 1, 0]);
    const repairTexts = server.requests.filter((r) => parseRequest(r).phase === 'repair').map((r) => r.body.messages.at(-1).content as string);
    expect(repairTexts[0]).toContain('Run "task-14:p14" is missing from your answer');
    expect(repairTexts[1]).toContain('Run "task-15:p15" appears 3 times (in "Unscoped cleanup", "Deadline pressure", "Another view")');
    expect(repairTexts[2]).toContain('"goal_conflict" is a generic strategy label');
    // The repair request repeats the batch prompt and the bad answer.
    const repair = server.requests.find((r) => parseRequest(r).phase === 'repair')!.body.messages;
    expect(repair.map((m: any) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(JSON.parse(repair[1].content).assignments.map((a: any) => a.id)).not.toContain('task-14:p14');
  });

  it('the same faults with the client re-asks off: salvaged and repaired by the integrity check', async () => {
    const plan: Record<string, Fault> = { 'task-10:p10': 'foreign', 'task-15:p15': 'unknown-name' };
    server.handle(fakeModel((s) => (s.phase === 'first' ? (plan[s.ids[0]!] ?? null) : null)));
    const items = makeItems(0, 20);
    const result = await categorizeIteratively(items, { ...OPTS, complete: completeFn('store', { maxValidationRetries: 0 }) });
    expectAccounted(result, items);
    expect(result.unassigned).toEqual([]);
    expect(server.requests).toHaveLength(3 + 2);
    const repairs = server.requests.filter((r) => parseRequest(r).phase === 'repair').map((r) => r.body.messages.at(-1).content as string);
    expect(repairs[0]).toContain('"task-99999:p99999" is not the id of a run in this batch');
    expect(repairs[1]).toContain('Run "task-19:p19" is assigned to category "Nonexistent Mechanism"');
  });

  it('after maxRepairs, keeps the valid part and lists the run that is still wrong, with the reason', async () => {
    server.handle(fakeModel((s) => (s.ids[0] === 'task-10:p10' ? 'forget' : null)));
    const items = makeItems(0, 20);
    const result = await categorizeIteratively(items, { ...OPTS, complete: completeFn(), maxRepairs: 2 });
    expectAccounted(result, items);
    expect(result.unassigned).toEqual([{ id: 'task-14:p14', reason: 'the model did not place this run in any category (still after 2 repair requests)' }]);
    expect(result.batches[1]).toMatchObject({ repairs: 2, unresolved: [expect.stringContaining('task-14:p14')] });
    expect(server.requests).toHaveLength(3 + 2);
  });

  it('an answer that never parses leaves its runs listed, and the next batch creates the taxonomy', async () => {
    server.handle(fakeModel((s) => (s.ids[0] === 'task-0:p0' ? 'badjson' : null)));
    const items = makeItems(0, 15);
    const result = await categorizeIteratively(items, { ...OPTS, complete: completeFn() });
    expectAccounted(result, items);
    expect(result.unassigned.map((u) => u.id)).toEqual(items.slice(0, 10).map((i) => i.id));
    expect(result.unassigned[0]!.reason).toMatch(/^no valid answer: categorize-create: the answer did not match the expected shape after 3 tries/);
    expect(result.batches.map((b) => b.kind)).toEqual(['create', 'create']);
    // 3 asks by the client for the broken batch, 1 for the next.
    expect(server.requests).toHaveLength(4);
  });

  it('a crash after m batches costs exactly n - m requests on re-run, and the result is the same', async () => {
    const items = makeItems(0, 35); // n = 6 batches: 10, 5, 5, 5, 5, 5
    const m = 3;
    const crashAt = 'task-20:p20'; // first id of batch m + 1
    server.handle(fakeModel((s) => (s.ids[0] === crashAt ? 'error' : null)));
    const complete = completeFn();
    await expect(categorizeIteratively(items, { ...OPTS, complete })).rejects.toThrow(/simulated crash/);
    expect(server.requests).toHaveLength(m + 1);

    server.reset();
    server.handle(fakeModel());
    const resumed = await categorizeIteratively(items, { ...OPTS, complete: completeFn() });
    expect(server.requests).toHaveLength(6 - m);
    expect(resumed.batches.map((b) => b.cached)).toEqual([true, true, true, false, false, false]);
    expect(resumed.paidCalls).toBe(3);
    expect(resumed.cachedCalls).toBe(3);

    server.reset();
    const again = await categorizeIteratively(items, { ...OPTS, complete: completeFn() });
    expect(server.requests).toHaveLength(0);
    expect(again.categories).toEqual(resumed.categories);
    // Usage and cost cover every answer the result is built from, bought now or earlier: stable output.
    expect(again.usage).toEqual(resumed.usage);
    expect(again.costUsd).toBe(resumed.costUsd);

    server.reset();
    server.handle(fakeModel());
    const fresh = await categorizeIteratively(items, { ...OPTS, complete: completeFn('other-store') });
    expect(fresh.categories).toEqual(resumed.categories);
  });

  it('repaired batches replay from the store too', async () => {
    server.handle(fakeModel((s) => (s.phase === 'first' && s.ids[0] === 'task-10:p10' ? 'forget' : null)));
    const items = makeItems(0, 20);
    const first = await categorizeIteratively(items, { ...OPTS, complete: completeFn() });
    expect(server.requests).toHaveLength(4);
    server.reset();
    const second = await categorizeIteratively(items, { ...OPTS, complete: completeFn() });
    expect(server.requests).toHaveLength(0);
    expect(second.categories).toEqual(first.categories);
    expect(second.batches[1]!.repairs).toBe(1);
  });

  it('117 runs with 20% of batches answered badly: all 117 assigned', async () => {
    const items = makeItems(0, 117);
    const firstIds = planBatches(items, 10, 5).map((b) => b[0]!.id);
    expect(firstIds).toHaveLength(23);
    const faults: Fault[] = ['unknown-name', 'forget', 'duplicate', 'generic', 'foreign'];
    const bad = new Map<string, Fault>();
    firstIds.forEach((id, k) => {
      if (k % 5 === 2) bad.set(id, faults[bad.size % faults.length]!);
    });
    expect(bad.size / firstIds.length).toBeGreaterThanOrEqual(0.2);
    server.handle(fakeModel((s) => (s.phase === 'first' ? (bad.get(s.ids[0]!) ?? null) : null)));
    const result = await categorizeIteratively(items, { ...OPTS, complete: completeFn() });
    expectAccounted(result, items);
    expectTruth(result);
    expect(result.unassigned).toEqual([]);
    expect(result.categories.reduce((n, c) => n + c.examples.length, 0)).toBe(117);
    expect(server.requests).toHaveLength(23 + bad.size);
  });

  it('start: every item goes as an update batch against the given taxonomy', async () => {
    server.handle(fakeModel());
    const start: Category[] = [{ category_name: 'Deadline pressure', definition: 'given', examples: [{ id: 'elsewhere:1', trigger_phrase: 'x', justification: 'y' }] }];
    const items = makeItems(0, 12);
    const result = await categorizeIteratively(items, { ...OPTS, complete: completeFn(), start: { categories: start } });
    expect(result.batches.map((b) => [b.kind, b.ids.length])).toEqual([
      ['update', 5],
      ['update', 5],
      ['update', 2],
    ]);
    expect(result.categories[0]!.definition).toBe('given');
    expect(result.categories[0]!.examples.map((e) => e.id)).toEqual(['elsewhere:1', 'task-0:p0', 'task-7:p7']);
    expectTruth({ ...result, categories: result.categories.slice(1) });
  });

  it('rejects items that share an id', async () => {
    await expect(categorizeIteratively([makeItem(1), makeItem(1)], { ...OPTS, complete: completeFn() })).rejects.toThrow(/share the id "task-1:p1"/);
  });
});

describe('growth against a taxonomy lock', () => {
  // In these tests a run's id is its prompt id.
  const same = (id: string) => id;
  const lockOf = (items: CategorizeItem[], result: CategorizeResult): TaxonomyLock =>
    buildLock({
      analysis: 'test',
      built_with: { model: 'gpt-5-mini' },
      categories: result.categories.map((c, i) => ({ category_id: `cat-${i}`, category_name: c.category_name, definition: c.definition, examples: c.examples.map((e) => ({ ...e, run_id: e.id })) })),
      summary_digests: Object.fromEntries(items.map((i) => [i.id, summaryDigest(i)])),
    });

  it('adding k runs to N locked runs costs ceil(k / iterative batch size) calls', async () => {
    server.handle(fakeModel());
    const base = makeItems(0, 40);
    const first = await categorizeIteratively(base, { ...OPTS, complete: completeFn() });
    expect(server.requests).toHaveLength(1 + 6);
    const lock = lockOf(base, first);

    for (const k of [1, 5, 12]) {
      server.reset();
      server.handle(fakeModel());
      const grown = [...base, ...makeItems(100 * k, 100 * k + k)];
      const plan = planFromLock(lock, grown, same);
      expect(plan).toMatchObject({ added: grown.slice(40).map((i) => i.id).sort(), removed: [], changed: [] });
      expect(plan.keep).toEqual(first.categories);
      const result = await categorizeIteratively(plan.toAdd, { ...OPTS, complete: completeFn(), start: { categories: plan.keep } });
      expect(server.requests).toHaveLength(Math.ceil(k / OPTS.iterativeBatchSize));
      expectAccounted(result, grown);
      expectTruth(result);
    }
  });

  it('removed runs leave the taxonomy, changed runs are re-assigned, emptied categories dropped', async () => {
    server.handle(fakeModel());
    const base = makeItems(0, 14);
    const first = await categorizeIteratively(base, { ...OPTS, complete: completeFn() });
    // Remove runs 6 and 13 (the whole "Forced workaround" category), change runs 2 and 3, add 14.
    const next = [...base.filter((i) => i.id !== 'task-6:p6' && i.id !== 'task-13:p13').map((i) => (i.id === 'task-2:p2' || i.id === 'task-3:p3' ? makeItem(Number(i.id.slice(5, 6)), ' Edited.') : i)), makeItem(14)];
    const plan = planFromLock(lockOf(base, first), next, same);
    expect(plan.removed).toEqual(['task-13:p13', 'task-6:p6']);
    expect(plan.changed).toEqual(['task-2:p2', 'task-3:p3']);
    expect(plan.added).toEqual(['task-14:p14']);
    expect(plan.toAdd.map((i) => i.id)).toEqual(['task-2:p2', 'task-3:p3', 'task-14:p14']);
    expect(plan.keep.map((c) => c.category_name)).not.toContain('Forced workaround');
    const keptIds = plan.keep.flatMap((c) => c.examples.map((e) => e.id));
    for (const gone of ['task-6:p6', 'task-13:p13', 'task-2:p2', 'task-3:p3']) expect(keptIds).not.toContain(gone);

    server.reset();
    server.handle(fakeModel());
    const result = await categorizeIteratively(plan.toAdd, { ...OPTS, complete: completeFn(), start: { categories: plan.keep } });
    expect(server.requests).toHaveLength(1);
    expectAccounted(result, next);
    expectTruth(result);
  });

  it('keeps everything with nothing to send when the runs are those of the lock', async () => {
    server.handle(fakeModel());
    const base = makeItems(0, 12);
    const first = await categorizeIteratively(base, { ...OPTS, complete: completeFn() });
    const plan = planFromLock(lockOf(base, first), base, same);
    expect(plan).toMatchObject({ toAdd: [], keep: first.categories, added: [], changed: [], removed: [] });
    // Only removals: nothing to send.
    expect(planFromLock(lockOf(base, first), base.slice(0, 11), same)).toMatchObject({ toAdd: [], removed: ['task-11:p11'] });
  });

  it('sends again a run that the lock does not hold', () => {
    const items = makeItems(0, 3);
    const lock = buildLock({
      analysis: 'test',
      built_with: {},
      categories: [{ category_id: 'cat-x', category_name: 'X', definition: 'd', examples: ['task-0:p0', 'task-1:p1'].map((id) => ({ run_id: id, trigger_phrase: null, justification: null })) }],
      summary_digests: Object.fromEntries(items.map((i) => [i.id, summaryDigest(i)])),
    });
    expect(planFromLock(lock, items, same)).toMatchObject({ added: ['task-2:p2'], toAdd: [items[2]] });
  });
});

describe('order dependence', () => {
  it('k shuffled orders of the same runs, compared by adjusted Rand index', async () => {
    server.handle(fakeModel());
    const items = makeItems(0, 30);
    const partitions: Map<string, string>[] = [];
    for (const seed of [1, 2, 3]) {
      const result = await categorizeIteratively(seededShuffle(items, seed), { ...OPTS, complete: completeFn() });
      expectAccounted(result, items);
      partitions.push(assignmentsOf(result.categories));
    }
    // This fake model is order-independent: every pair agrees completely.
    const summary = pairwiseAgreement(partitions);
    expect(summary.pairs).toHaveLength(3);
    expect(summary.mean).toBe(1);
    expect(adjustedRandIndex(partitions[0]!, partitions[2]!)).toBe(1);
  });
});
