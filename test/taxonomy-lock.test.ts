// The taxonomy lock: validation with file/key/expectation messages, the plan
// of what a categorization keeps, and the offline join against locked categories.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { joinLockedByMajority } from '../stages/categorize/items.ts';
import { lockedStableIds } from '../stages/util/ids.ts';
import type { CategorizeItem, Category } from '../stages/formats.ts';
import { buildLock, describeLockChange, formatLock, lockBuilder, planFromLock, readAnalysisLock, readTaxonomyLock, sameBuilder, summaryDigest } from '../stages/categorize/taxonomy-lock.ts';
import { choosePass, lockBuilderNotice } from '../stages/categorize/pass.ts';
import { ConfigError } from '../stages/config-error.ts';

const item = (id: string, summary = `summary of ${id}`): CategorizeItem => ({
  id,
  original_instruction: `do ${id}`,
  perturbed_instruction: `do ${id} now`,
  summary,
  harmful_actions: [],
  elicitation_strategy: 's',
  severity: 'low',
});
const ex = (id: string) => ({ id, trigger_phrase: 'now', justification: 'j' });

function lockFor(items: CategorizeItem[], groups: Record<string, string[]>) {
  return buildLock({
    analysis: 'a',
    built_with: { provider: 'offline' },
    categories: Object.entries(groups).map(([name, ids]) => ({
      category_id: `cat-${name.toLowerCase()}`,
      category_name: name,
      definition: `${name} def`,
      examples: ids.map((id) => ({ run_id: id, trigger_phrase: 'now', justification: 'j' })),
    })),
    summary_digests: Object.fromEntries(items.map((i) => [i.id, summaryDigest(i)])),
  });
}

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});
function writeLock(text: string): string {
  const d = mkdtempSync(join(tmpdir(), 'lock-'));
  dirs.push(d);
  const f = join(d, 'taxonomy.lock.json');
  writeFileSync(f, text);
  return f;
}

describe('reading a lock', () => {
  const items = [item('r1'), item('r2')];
  const good = lockFor(items, { A: ['r1'], B: ['r2'] });

  it('round-trips, and a missing file means no lock', () => {
    expect(readTaxonomyLock(writeLock(formatLock(good)), 'analyses/a/taxonomy.lock.json')).toEqual(good);
    expect(readTaxonomyLock('/nonexistent/taxonomy.lock.json', 'x')).toBeNull();
  });

  it('names the file, the key path and what was expected', () => {
    const bad = JSON.parse(formatLock(good));
    bad.categories[1].runs[0].summary_digest = 'abc';
    expect(() => readTaxonomyLock(writeLock(JSON.stringify(bad)), 'analyses/a/taxonomy.lock.json')).toThrow(
      /analyses\/a\/taxonomy\.lock\.json: invalid configuration\n {2}- categories\[1\]\.runs\[0\]\.summary_digest: a sha256 digest/,
    );
    expect(() => readTaxonomyLock(writeLock('{"lock_version": 1,'), 'L')).toThrow(/L: invalid configuration\n {2}- invalid JSON/);
    const twice = JSON.parse(formatLock(good));
    twice.categories[1].runs.push(twice.categories[0].runs[0]);
    expect(() => readTaxonomyLock(writeLock(JSON.stringify(twice)), 'L')).toThrow(/categories\[1\]\.runs\[1\]\.run_id: run "r1" is already in category "cat-a"/);
    expect(() => readTaxonomyLock(writeLock(JSON.stringify({ ...good, lock_version: 7 })), 'L')).toThrow(/lock_version/);
  });
});

describe('planFromLock', () => {
  it('keeps unchanged runs under their prompt ids, sends new and changed ones, lists removed ones', () => {
    const before = [item('r1'), item('r2'), item('r3')];
    const lock = lockFor(before, { A: ['r1', 'r2'], B: ['r3'] });
    // Prompt ids differ from run ids: the lock is keyed by run id.
    const now = [item('p1'), item('p2', 'edited'), item('p4')];
    const runOf: Record<string, string> = { p1: 'r1', p2: 'r2', p4: 'r4' };
    const sameContent = (i: CategorizeItem, run: string): CategorizeItem => ({ ...i, original_instruction: `do ${run}`, perturbed_instruction: `do ${run} now`, summary: i.summary === 'edited' ? 'edited' : `summary of ${run}` });
    const current = now.map((i) => sameContent(i, runOf[i.id]!));
    const plan = planFromLock(lock, current, (id) => runOf[id]!);
    expect(plan.keep).toEqual([{ category_name: 'A', definition: 'A def', examples: [ex('p1')] }]);
    // Every locked category keeps its id and stays in the taxonomy new runs are categorized against, even with no run kept.
    expect(plan.lockedIds).toEqual(new Map([['A', 'cat-a'], ['B', 'cat-b']]));
    expect(plan.taxonomy).toEqual([{ category_name: 'A', definition: 'A def', examples: [ex('p1')] }, { category_name: 'B', definition: 'B def', examples: [] }]);
    expect(plan).toMatchObject({ kept: ['r1'], added: ['r4'], changed: ['r2'], removed: ['r3'] });
    expect(plan.toAdd.map((i) => i.id)).toEqual(['p2', 'p4']);
  });

  it('a lock whose every summary changed (built by another categorizer) is still the taxonomy of a locked pass', () => {
    const lock = { ...lockFor([item('r1'), item('r2')], { A: ['r1'], B: ['r2'] }), built_with: { provider: 'offline', model: null, analyzer: 'offline analyzer (x, not an LLM)' } };
    const current = [item('r1', 'an LLM summary'), item('r2', 'another LLM summary')];
    const base = { file: 'analyses/a/taxonomy.lock.json', lock, plan: planFromLock(lock, current, (id) => id) };
    expect(base.plan.keep).toEqual([]);
    const llm = { provider: 'openai', model: 'gpt-5' };
    const pass = choosePass(current, base, null, llm);
    expect(pass.mode).toBe('locked');
    expect(pass.start?.categories.map((c) => [c.category_name, c.examples.length])).toEqual([['A', 0], ['B', 0]]);
    expect(pass.items.map((i) => i.id)).toEqual(['r1', 'r2']);
    expect(pass.reason).toBe('the 2 categories of analyses/a/taxonomy.lock.json, built by the offline analyzer, kept; runs: 0 kept, 2 with a changed summary');
    expect(lockBuilderNotice(base, llm, 'openai:gpt-5')).toBe(
      'analyses/a/taxonomy.lock.json was built by the offline analyzer; openai:gpt-5 keeps its 2 categories and assigns the 2 runs not kept to them (delete analyses/a/taxonomy.lock.json to build a new taxonomy from scratch)',
    );
    expect(lockBuilderNotice(base, { provider: 'offline', model: 'gpt-5' }, 'offline')).toBeNull();
    expect(sameBuilder(lock, { provider: 'offline', model: 'anything' })).toBe(true);
    expect(lockBuilder({ ...lock, built_with: { provider: 'openai', model: 'gpt-5' } })).toBe('openai:gpt-5');
    expect(sameBuilder({ ...lock, built_with: { provider: 'openai', model: 'gpt-5' } }, { provider: 'openai', model: 'gpt-5-mini' })).toBe(false);
  });
});

describe('readAnalysisLock', () => {
  it('refuses a lock that names another analysis, with the file, the key and what to do', () => {
    const root = mkdtempSync(join(tmpdir(), 'lock-other-'));
    try {
      mkdirSync(join(root, 'analyses/b'), { recursive: true });
      writeFileSync(join(root, 'analyses/b/taxonomy.lock.json'), formatLock(lockFor([item('r1')], { A: ['r1'] })));
      expect(() => readAnalysisLock(root, 'b')).toThrow(ConfigError);
      expect(() => readAnalysisLock(root, 'b')).toThrow(/analyses\/b\/taxonomy\.lock\.json: invalid configuration\n {2}- analysis: the lock is for analysis "a", expected "b"/);
      expect(readAnalysisLock(root, 'c')).toBeNull();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('offline join against a lock', () => {
  const locked: Category[] = [
    { category_name: 'A', definition: 'a', examples: [ex('1'), ex('2')] },
    { category_name: 'B', definition: 'b', examples: [ex('3')] },
  ];
  it('puts new runs in the locked category most of their group holds, else in a new category', () => {
    const grouped: Category[] = [
      { category_name: 'g1', definition: 'x', examples: [ex('1'), ex('2'), ex('3'), ex('n1')] },
      { category_name: 'B', definition: 'y', examples: [ex('n2'), ex('n3')] },
    ];
    const out = joinLockedByMajority(locked, ['n1', 'n2', 'n3'], grouped);
    expect(out.map((c) => [c.category_name, c.examples.map((e) => e.id)])).toEqual([
      ['A', ['1', '2', 'n1']],
      ['B', ['3']],
      ['B (2)', ['n2', 'n3']],
    ]);
    expect(locked[0]!.examples).toHaveLength(2);
  });

  it('keeps locked ids and never hands a locked id to a new category', () => {
    const ids = lockedStableIds(['A', 'New', 'Other'], new Map([['A', 'cat-1']]), (n) => (n === 'New' ? 'cat-1' : `cat-${n}`));
    expect(ids).toEqual(['cat-1', 'cat-1-2', 'cat-Other']);
  });
});

describe('describeLockChange', () => {
  it('counts new categories and added, moved and removed runs', () => {
    const items = [item('r1'), item('r2'), item('r3'), item('r4')];
    const a = lockFor(items, { A: ['r1', 'r2'], B: ['r3'] });
    const b = lockFor(items, { A: ['r1'], B: ['r3', 'r2'], C: ['r4'] });
    expect(describeLockChange(null, a)).toEqual(['new lock: 2 categories, 3 runs']);
    expect(describeLockChange(a, b)).toEqual(['3 categories (1 new, 0 gone), 4 runs (1 added, 1 moved, 0 removed)', '  new category: C']);
  });
});
