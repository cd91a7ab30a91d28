// Clustering through the real OpenAI SDK client, the response store and a
// scripted fake endpoint: one call when it fits, chunks plus a merge round
// when it does not, repairs of bad answers, and single-category clusters
// (flagged) for what the model never places.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { categorizeIteratively } from '../stages/categorize/llm.ts';
import type { Complete } from '../stages/categorize/llm.ts';
import { checkClusterAnswer, clusterAnswerSchema, clusterCategories, estimateClusterCalls, renderCategoriesForClustering } from '../stages/cluster/llm.ts';
import type { ClusterResult } from '../stages/cluster/llm.ts';
import type { CategorizeItem, Category } from '../stages/formats.ts';
import type { LlmClientOptions } from '../stages/llm/client.ts';
import { startFakeProviderServer } from './helpers/fake-provider-server.ts';
import { completeOverFake, fakeOpenAiSettings } from './helpers/llm-over-fake.ts';
import type { FakeProviderServer, FakeReply, RecordedRequest } from './helpers/fake-provider-server.ts';

const TEMPLATE = readFileSync(new URL('../prompts/cluster.md', import.meta.url), 'utf8');
const CATEGORIZE = {
  create: readFileSync(new URL('../prompts/categorize-create.md', import.meta.url), 'utf8'),
  update: readFileSync(new URL('../prompts/categorize-update.md', import.meta.url), 'utf8'),
};
const THEMES = ['Theme Alpha', 'Theme Beta', 'Theme Gamma'];

/** Category i belongs to theme i % 3. */
function makeCategories(n: number, examples = 2): Category[] {
  return Array.from({ length: n }, (_, i) => ({
    category_name: `Mechanism ${i}`,
    definition: `Wording pattern number ${i} that misleads the agent.`,
    examples: Array.from({ length: examples }, (_, k) => ({ id: `t${i}:p${k}`, trigger_phrase: `phrase ${i}.${k}`, justification: `because ${i}.${k}` })),
  }));
}

/** The theme of a category or of an earlier-round cluster ("Theme Alpha (2)"). */
function themeOf(name: string): string {
  const m = /^Mechanism (\d+)$/.exec(name);
  if (m) return THEMES[Number(m[1]) % THEMES.length]!;
  const t = /^(Theme \w+)/.exec(name);
  if (t) return t[1]!;
  throw new Error(`fake: unknown name ${name}`);
}

type Fault = 'omit' | 'unknown' | 'duplicate' | 'badjson';
type Phase = 'first' | 'reask' | 'repair';

interface Seen {
  names: string[];
  phase: Phase;
  prompt: string;
}

function parseRequest(r: RecordedRequest): Seen {
  const messages = r.body.messages as { content: string }[];
  const prompt = messages[0]!.content;
  const last = messages[messages.length - 1]!.content;
  const phase: Phase = messages.length === 1 ? 'first' : last.startsWith('Your previous answer does not match') ? 'reask' : 'repair';
  return { names: [...prompt.matchAll(/^Category \d+: (.+)$/gm)].map((m) => m[1]!), phase, prompt };
}

function goodAnswer(names: string[]) {
  const groups = new Map<string, string[]>();
  for (const n of names) groups.set(themeOf(n), [...(groups.get(themeOf(n)) ?? []), n]);
  return {
    clusters: [...groups].map(([theme, members]) => ({
      cluster_name: theme,
      definition: `Shared mechanism of ${theme}.`,
      anchor_phrases: 'phrase, wording',
      member_categories: members.map((m) => ({ category_name: m, category_definition: `def of ${m}`, justification: `${m} fits ${theme}.` })),
    })),
  };
}

function fakeClusterer(fault: (s: Seen) => Fault | null = () => null, victim = 'Mechanism 4') {
  return (r: RecordedRequest): FakeReply => {
    const s = parseRequest(r);
    const a = goodAnswer(s.names);
    switch (fault(s)) {
      case 'badjson':
        return { text: '{"clusters": [' };
      case 'omit':
        for (const c of a.clusters) c.member_categories = c.member_categories.filter((m) => m.category_name !== victim);
        a.clusters = a.clusters.filter((c) => c.member_categories.length > 0);
        break;
      case 'unknown':
        a.clusters[0]!.member_categories.push({ category_name: 'Ghost category', category_definition: 'x', justification: 'y' });
        break;
      case 'duplicate':
        a.clusters[1]!.member_categories.push({ ...a.clusters[0]!.member_categories[0]! });
        break;
      default:
        break;
    }
    return { text: JSON.stringify(a), usage: { input: 2000, output: 300 } };
  };
}

// ---------------------------------------------------------------------------

let server: FakeProviderServer;
let dir: string;

beforeAll(async () => {
  server = await startFakeProviderServer({ maxLifetimeMs: 300_000 });
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cluster-llm-'));
});
afterEach(() => {
  server.reset();
  rmSync(dir, { recursive: true, force: true });
});
afterAll(async () => {
  await server.close();
});

function completeFn(extra: Partial<LlmClientOptions> = {}): Complete {
  return completeOverFake(fakeOpenAiSettings(server, { max_tokens: 64000 }), dir, 'store', extra);
}

/** Every category in exactly one cluster; returns name -> cluster name. */
function expectPartition(result: ClusterResult, categories: readonly Category[]): Map<string, string> {
  const where = new Map<string, string>();
  for (const c of result.clusters) {
    for (const m of c.member_categories) {
      expect(where.has(m.category_name), `${m.category_name} twice`).toBe(false);
      where.set(m.category_name, c.cluster_name);
    }
  }
  expect([...where.keys()].sort()).toEqual(categories.map((c) => c.category_name).sort());
  const names = result.clusters.map((c) => c.cluster_name);
  expect(new Set(names).size).toBe(names.length);
  return where;
}

const BIG = 1_000_000;

describe('prompt block and schema', () => {
  it('shows name, definition and up to 5 examples, then "... and N more examples"', () => {
    const [c] = makeCategories(1, 7);
    expect(renderCategoriesForClustering([c!, { category_name: 'Empty', definition: 'none', examples: [] }])).toBe(
      [
        'Category 1: Mechanism 0',
        'Definition: Wording pattern number 0 that misleads the agent.',
        'Examples (7):',
        ...[0, 1, 2, 3, 4].flatMap((k) => [`  - Trigger phrase: "phrase 0.${k}"`, `    Justification: because 0.${k}`]),
        '  ... and 2 more examples',
        '',
        'Category 2: Empty',
        'Definition: none',
        'Examples (0):',
      ].join('\n'),
    );
    expect(renderCategoriesForClustering([c!], 2).split('\n').at(-1)).toBe('  ... and 5 more examples');
  });

  it('restricts member names to the categories shown', () => {
    const schema = clusterAnswerSchema(['A', 'B']);
    const ok = { clusters: [{ cluster_name: 'X', definition: 'd', anchor_phrases: 'a', member_categories: [{ category_name: 'A', category_definition: 'd', justification: 'j' }] }] };
    expect(schema.safeParse(ok).success).toBe(true);
    expect(schema.safeParse({ clusters: [{ ...ok.clusters[0], member_categories: [{ category_name: 'C', category_definition: 'd', justification: 'j' }] }] }).success).toBe(false);
  });

  it('the check states unknown, missing and repeated names; merges same-named clusters', () => {
    const m = (n: string) => ({ category_name: n, category_definition: 'd', justification: 'j' });
    const check = checkClusterAnswer(
      {
        clusters: [
          { cluster_name: 'One', definition: 'd', anchor_phrases: '', member_categories: [m('A'), m('Ghost')] },
          { cluster_name: ' one ', definition: 'd2', anchor_phrases: '', member_categories: [m('b')] },
          { cluster_name: 'Two', definition: 'd', anchor_phrases: '', member_categories: [m('A')] },
        ],
      },
      ['A', 'B', 'C'],
    );
    expect(check.problems).toEqual([
      '"Ghost" is not one of the categories listed: use the category names exactly as given.',
      'Category "A" is placed 2 times (in "One", "Two"): place it in exactly one cluster.',
      'Category "C" is in no cluster: place it in exactly one cluster (alone, if it has no partner).',
    ]);
    expect(check.clusters.map((c) => [c.cluster_name, c.units.map((u) => u.unit)])).toEqual([['One', [0, 1]]]);
    expect(check.missing).toEqual([2]);
  });
});

describe('clusterCategories over the real OpenAI client', () => {
  it('no call for a single category, and the estimate (plan, progress) says none', async () => {
    server.handle(fakeClusterer());
    const categories = makeCategories(1);
    expect(estimateClusterCalls(categories, TEMPLATE, BIG)).toBe(0);
    expect(estimateClusterCalls(makeCategories(2), TEMPLATE, BIG)).toBe(1);
    const result = await clusterCategories(categories, { template: TEMPLATE, complete: completeFn(), maxPromptChars: BIG });
    expect(server.requests).toHaveLength(0);
    expect(result.clusters).toHaveLength(1);
  });

  it('one call when everything fits', async () => {
    server.handle(fakeClusterer());
    const categories = makeCategories(9);
    const result = await clusterCategories(categories, { template: TEMPLATE, complete: completeFn(), maxPromptChars: BIG });
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]!.body.response_format.type).toBe('json_schema');
    expect(result.calls).toHaveLength(1);
    expect(result.rounds).toBe(1);
    const where = expectPartition(result, categories);
    for (const [name, cluster] of where) expect(cluster).toBe(themeOf(name));
    expect(result.clusters.map((c) => c.cluster_name)).toEqual(THEMES);
    expect(result.unclustered).toEqual([]);
    // Definitions come from the categorization, not from the model's copy.
    expect(result.clusters[0]!.member_categories[0]).toEqual({ category_name: 'Mechanism 0', category_definition: 'Wording pattern number 0 that misleads the agent.', justification: 'Mechanism 0 fits Theme Alpha.' });
    expect(result.usage).toEqual({ input_tokens: 2000, output_tokens: 300, total_tokens: 2300 });
  });

  it('chunked when too large: chunks in input order, then one merge round over the first-round clusters', async () => {
    server.handle(fakeClusterer());
    const categories = makeCategories(30);
    const full = TEMPLATE.replace('{CATEGORIES}', renderCategoriesForClustering(categories)).length;
    const maxPromptChars = Math.ceil(TEMPLATE.length + (full - TEMPLATE.length) / 3.5);
    const result = await clusterCategories(categories, { template: TEMPLATE, complete: completeFn(), maxPromptChars });
    const firstRound = result.calls.filter((c) => c.round === 1);
    expect(firstRound).toHaveLength(4);
    expect(result.calls.filter((c) => c.round === 2)).toHaveLength(1);
    expect(result.rounds).toBe(2);
    expect(server.requests).toHaveLength(5);
    for (const r of server.requests) expect(r.body.messages[0].content.length).toBeLessThanOrEqual(maxPromptChars);
    // Chunks are consecutive runs of the input.
    expect(firstRound.flatMap((c) => c.names)).toEqual(categories.map((c) => c.category_name));
    // The merge round sees the first-round clusters, made unique, with their members.
    const merge = parseRequest(server.requests[4]!);
    expect(merge.names).toHaveLength(12);
    expect([...merge.names].sort()).toEqual(THEMES.flatMap((t) => [t, `${t} (2)`, `${t} (3)`, `${t} (4)`]).sort());
    expect(merge.prompt).toContain('Member categories (');
    const where = expectPartition(result, categories);
    for (const [name, cluster] of where) expect(cluster).toBe(themeOf(name));
    expect(result.clusters.map((c) => c.member_categories.length)).toEqual([10, 10, 10]);
    expect(result.unclustered).toEqual([]);
  });

  it('a missing category is stated and repaired', async () => {
    server.handle(fakeClusterer((s) => (s.phase === 'first' ? 'omit' : null)));
    const categories = makeCategories(9);
    const result = await clusterCategories(categories, { template: TEMPLATE, complete: completeFn(), maxPromptChars: BIG });
    expect(server.requests).toHaveLength(2);
    expect(server.requests[1]!.body.messages.at(-1).content).toContain('Category "Mechanism 4" is in no cluster');
    expect(result.calls[0]).toMatchObject({ repairs: 1, unresolved: [] });
    expectPartition(result, categories);
    expect(result.unclustered).toEqual([]);
  });

  it('a duplicated category is stated and repaired', async () => {
    server.handle(fakeClusterer((s) => (s.phase === 'first' ? 'duplicate' : null)));
    const categories = makeCategories(6);
    const result = await clusterCategories(categories, { template: TEMPLATE, complete: completeFn(), maxPromptChars: BIG });
    expect(server.requests).toHaveLength(2);
    expect(server.requests[1]!.body.messages.at(-1).content).toContain('Category "Mechanism 0" is placed 2 times (in "Theme Alpha", "Theme Beta")');
    expectPartition(result, categories);
  });

  it('an unknown name: re-asked by the client (enum), or, with client re-asks off, stated by the check', async () => {
    server.handle(fakeClusterer((s) => (s.phase === 'first' ? 'unknown' : null)));
    const categories = makeCategories(6);
    const viaClient = await clusterCategories(categories, { template: TEMPLATE, complete: completeFn(), maxPromptChars: BIG });
    expect(server.requests.map((r) => parseRequest(r).phase)).toEqual(['first', 'reask']);
    expectPartition(viaClient, categories);

    server.reset();
    server.handle(fakeClusterer((s) => (s.phase === 'first' ? 'unknown' : null)));
    const viaCheck = await clusterCategories(makeCategories(7), { template: TEMPLATE, complete: completeFn({ maxValidationRetries: 0 }), maxPromptChars: BIG });
    expect(server.requests.map((r) => parseRequest(r).phase)).toEqual(['first', 'repair']);
    expect(server.requests[1]!.body.messages.at(-1).content).toContain('"Ghost category" is not one of the categories listed');
    expectPartition(viaCheck, makeCategories(7));
  });

  it('a category never placed becomes its own cluster and is listed with the reason', async () => {
    server.handle(fakeClusterer(() => 'omit'));
    const categories = makeCategories(9);
    const result = await clusterCategories(categories, { template: TEMPLATE, complete: completeFn(), maxPromptChars: BIG, maxRepairs: 2 });
    expect(server.requests).toHaveLength(3);
    const where = expectPartition(result, categories);
    expect(where.get('Mechanism 4')).toBe('Mechanism 4');
    expect(result.clusters.at(-1)).toMatchObject({
      cluster_name: 'Mechanism 4',
      definition: 'Wording pattern number 4 that misleads the agent.',
      anchor_phrases: 'phrase 4.0, phrase 4.1',
      member_categories: [{ category_name: 'Mechanism 4' }],
    });
    expect(result.unclustered).toEqual([{ category_name: 'Mechanism 4', reason: 'the model did not place it in any cluster after 2 repair requests' }]);
  });

  it('an answer that never parses: every category of the call kept alone and listed', async () => {
    server.handle(fakeClusterer(() => 'badjson'));
    const categories = makeCategories(4);
    const result = await clusterCategories(categories, { template: TEMPLATE, complete: completeFn(), maxPromptChars: BIG });
    expect(server.requests).toHaveLength(3); // the client's own 3 asks
    expectPartition(result, categories);
    expect(result.clusters).toHaveLength(4);
    expect(result.unclustered.map((u) => u.category_name)).toEqual(categories.map((c) => c.category_name));
    expect(result.unclustered[0]!.reason).toMatch(/^no valid answer: cluster: the answer did not match/);
  });

  it('in the merge round, a first-round cluster the model leaves out stays as it was (not lost)', async () => {
    server.handle(fakeClusterer((s) => (s.names.some((n) => n.startsWith('Theme')) ? 'omit' : null), 'Theme Beta (2)'));
    const categories = makeCategories(30);
    const full = TEMPLATE.replace('{CATEGORIES}', renderCategoriesForClustering(categories)).length;
    const maxPromptChars = Math.ceil(TEMPLATE.length + (full - TEMPLATE.length) / 3.5);
    const result = await clusterCategories(categories, { template: TEMPLATE, complete: completeFn(), maxPromptChars, maxRepairs: 1 });
    expectPartition(result, categories);
    expect(result.clusters.map((c) => c.cluster_name)).toEqual(['Theme Alpha', 'Theme Beta', 'Theme Gamma', 'Theme Beta (2)']);
    expect(result.unclustered).toEqual([]);
    expect(result.calls.at(-1)!.unresolved).toEqual(['Category "Theme Beta (2)" is in no cluster: place it in exactly one cluster (alone, if it has no partner).']);
  });

  it('a category too large for any prompt is kept alone and flagged; the others are clustered', async () => {
    server.handle(fakeClusterer());
    const categories = makeCategories(7);
    categories[3] = { ...categories[3]!, definition: 'x'.repeat(5000) };
    const maxPromptChars = TEMPLATE.length + 4000;
    const result = await clusterCategories(categories, { template: TEMPLATE, complete: completeFn(), maxPromptChars });
    expectPartition(result, categories);
    expect(result.unclustered).toEqual([{ category_name: 'Mechanism 3', reason: `its description does not fit next to other categories within maxPromptChars (${maxPromptChars} characters)` }]);
    for (const r of server.requests) expect(r.body.messages[0].content.length).toBeLessThanOrEqual(maxPromptChars);
  });

  it('no categories: no call; one category: no call, one cluster', async () => {
    const none = await clusterCategories([], { template: TEMPLATE, complete: completeFn(), maxPromptChars: BIG });
    expect(none).toMatchObject({ clusters: [], unclustered: [], calls: [] });
    const one = await clusterCategories(makeCategories(1), { template: TEMPLATE, complete: completeFn(), maxPromptChars: BIG });
    expect(one.clusters.map((c) => c.cluster_name)).toEqual(['Mechanism 0']);
    expect(one.unclustered).toEqual([]);
    expect(server.requests).toHaveLength(0);
  });
});

describe('cost across runs', () => {
  /** One fake for both steps: categorize by run index % 4, cluster by theme. */
  function combined() {
    const cluster = fakeClusterer();
    return (r: RecordedRequest): FakeReply => {
      if (r.body.response_format?.json_schema?.name === 'cluster_categories') return cluster(r);
      const prompt = r.body.messages[0].content as string;
      const ids = [...prompt.matchAll(/^Run id: (.+)$/gm)].map((m) => m[1]!);
      const name = (id: string) => `Mechanism ${Number(/^r(\d+):/.exec(id)![1]) % 4}`;
      const ex = (id: string) => ({ id, trigger_phrase: 'cue', justification: 'j' });
      if (!prompt.includes('New runs to place:')) {
        const names = [...new Set(ids.map(name))];
        return { text: JSON.stringify({ categories: names.map((n) => ({ category_name: n, definition: `def ${n}`, examples: ids.filter((id) => name(id) === n).map(ex) })) }) };
      }
      return { text: JSON.stringify({ assignments: ids.map((id) => ({ ...ex(id), category_name: name(id) })), new_categories: [] }) };
    };
  }
  const items: CategorizeItem[] = Array.from({ length: 15 }, (_, i) => ({
    id: `r${i}:p${i}`,
    original_instruction: 'o',
    perturbed_instruction: 'p cue',
    summary: `s${i}`,
    harmful_actions: [],
    elicitation_strategy: 'goal_conflict',
    severity: null,
  }));

  it('a second run costs nothing; changing the cluster prompt costs one clustering call and no categorization call', async () => {
    server.handle(combined());
    const run = async (template: string) => {
      const complete = completeFn();
      const cat = await categorizeIteratively(items, { initialBatchSize: 10, iterativeBatchSize: 5, templates: CATEGORIZE, complete });
      const clu = await clusterCategories(cat.categories, { template, complete, maxPromptChars: BIG });
      return { cat, clu };
    };
    const first = await run(TEMPLATE);
    expect(server.requests).toHaveLength(2 + 1);
    expect(first.cat.categories.map((c) => c.category_name)).toEqual(['Mechanism 0', 'Mechanism 1', 'Mechanism 2', 'Mechanism 3']);

    server.reset();
    server.handle(combined());
    const again = await run(TEMPLATE);
    expect(server.requests).toHaveLength(0);
    expect(again.clu.clusters).toEqual(first.clu.clusters);
    expect(again.clu.cachedCalls).toBe(1);

    server.reset();
    server.handle(combined());
    const edited = await run(TEMPLATE.replace('safety report', 'safety review'));
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]!.body.response_format.json_schema.name).toBe('cluster_categories');
    expect(edited.cat.paidCalls).toBe(0);
    expect(edited.clu.paidCalls).toBe(1);
  });
});
