// The held-out agreement check's pure parts (stages/categorize/heldout.ts,
// heldout-nearest.ts, heldout-render.ts): Cohen's kappa against published
// worked examples, the sample's size, determinism and stratification, the
// figures, the offline nearest-category rule, and the report fragments.
import { describe, expect, it } from 'vitest';
import { cohensKappa, heldoutFigures, heldoutSample, heldoutSampleSize, labelledRuns, HELDOUT_OFF, heldoutDocument } from '../stages/categorize/heldout.ts';
import type { LabelledRun, Reassignment } from '../stages/categorize/heldout.ts';
import { nearestCategories } from '../stages/categorize/heldout-nearest.ts';
import { HELDOUT_EXPLANATIONS, heldoutHtml, heldoutMarkdown, heldoutReportData } from '../stages/categorize/heldout-render.ts';
import { HELDOUT_DEFAULTS } from '../stages/categorize/settings.ts';
import type { CategorizeItem, Category } from '../stages/formats.ts';

/** Label pairs from a contingency table: rows are the first rater's labels, columns the second's. */
function pairsOf(labels: string[], table: number[][]): [string, string][] {
  const out: [string, string][] = [];
  table.forEach((row, i) => row.forEach((n, j) => {
    for (let k = 0; k < n; k++) out.push([labels[i]!, labels[j]!]);
  }));
  return out;
}

describe("Cohen's kappa", () => {
  // Wikipedia, "Cohen's kappa", section "Simple example" (revision of 2024):
  // 50 grant proposals read by two readers, yes/yes 20, yes/no 5, no/yes 10,
  // no/no 15. Worked by hand: p_o = (20 + 15) / 50 = 0.70; reader A says yes
  // 25/50 = 0.5, reader B 30/50 = 0.6, so p_e = 0.5 x 0.6 + 0.5 x 0.4 = 0.50;
  // kappa = (0.70 - 0.50) / (1 - 0.50) = 0.40.
  it('matches the worked example of 50 grant proposals (kappa 0.4)', () => {
    const k = cohensKappa(pairsOf(['yes', 'no'], [[20, 5], [10, 15]]));
    expect(k.n).toBe(50);
    expect(k.observed).toBeCloseTo(0.7, 12);
    expect(k.expected).toBeCloseTo(0.5, 12);
    expect(k.kappa).toBeCloseTo(0.4, 12);
  });

  // The same article, "Same percentages but different numbers": two tables
  // with 60% agreement each. Worked by hand:
  //   45/15/25/15: p_e = 0.60 x 0.70 + 0.40 x 0.30 = 0.54, kappa = 0.06 / 0.46 = 0.1304...
  //   25/35/5/35:  p_e = 0.60 x 0.30 + 0.40 x 0.70 = 0.46, kappa = 0.14 / 0.54 = 0.2593...
  it('matches the two "same percentages, different numbers" tables (0.1304 and 0.2593)', () => {
    const a = cohensKappa(pairsOf(['yes', 'no'], [[45, 15], [25, 15]]));
    expect(a.observed).toBeCloseTo(0.6, 12);
    expect(a.expected).toBeCloseTo(0.54, 12);
    expect(a.kappa).toBeCloseTo(0.06 / 0.46, 12);
    expect(a.kappa!.toFixed(4)).toBe('0.1304');
    const b = cohensKappa(pairsOf(['yes', 'no'], [[25, 35], [5, 35]]));
    expect(b.expected).toBeCloseTo(0.46, 12);
    expect(b.kappa!.toFixed(4)).toBe('0.2593');
  });

  // Three labels, worked by hand: 100 items, table [[30,5,5],[5,20,5],[0,5,25]].
  // p_o = 75/100; rows 40, 30, 30; columns 35, 30, 35;
  // p_e = .40 x .35 + .30 x .30 + .30 x .35 = .14 + .09 + .105 = .335;
  // kappa = (.75 - .335) / .665 = 0.62406...
  it('handles more than two labels, labels only one rater used, and does not depend on label names or order', () => {
    const table = [[30, 5, 5], [5, 20, 5], [0, 5, 25]];
    const k = cohensKappa(pairsOf(['a', 'b', 'c'], table));
    expect(k.expected).toBeCloseTo(0.335, 12);
    expect(k.kappa).toBeCloseTo(0.415 / 0.665, 12);
    const renamed = cohensKappa(pairsOf(['z', 'x', 'y'], table).reverse());
    expect(renamed.kappa).toBeCloseTo(k.kappa!, 12);
    // "none fits" as a label only the second rater uses: it lowers agreement, and is counted in p_e as 0 for the first.
    const withNone = cohensKappa([['a', 'a'], ['b', 'b'], ['a', '(none fits)'], ['b', 'b']]);
    expect(withNone.observed).toBe(0.75);
    expect(withNone.expected).toBeCloseTo(0.5 * 0.25 + 0.5 * 0.5, 12);
  });

  it('is 1 for full agreement, about 0 for independent labels, null without pairs or when chance alone agrees fully', () => {
    expect(cohensKappa([['a', 'a'], ['b', 'b'], ['c', 'c']]).kappa).toBe(1);
    // Independent: each first label meets each second label equally often.
    expect(cohensKappa(pairsOf(['a', 'b'], [[10, 10], [10, 10]])).kappa).toBeCloseTo(0, 12);
    expect(cohensKappa([]).kappa).toBeNull();
    expect(cohensKappa([['a', 'a'], ['a', 'a']])).toMatchObject({ observed: 1, expected: 1, kappa: null });
  });
});

describe('the held-out sample', () => {
  it('is 10% rounded up, at most 200, never more than there are', () => {
    expect(heldoutSampleSize(117, 0.1, 200)).toBe(12);
    // 110 x 0.1 is 11.000000000000002 in floating point: still 11.
    expect(heldoutSampleSize(110, 0.1, 200)).toBe(11);
    expect(heldoutSampleSize(5, 0.1, 200)).toBe(1);
    expect(heldoutSampleSize(10_000, 0.1, 200)).toBe(200);
    expect(heldoutSampleSize(2_000, 0.1, 200)).toBe(200);
    expect(heldoutSampleSize(1_990, 0.1, 200)).toBe(199);
    expect(heldoutSampleSize(3, 1, 200)).toBe(3);
    expect(heldoutSampleSize(0, 0.1, 200)).toBe(0);
  });

  /** 5 categories of 60, 25, 10, 4 and 1 runs (100 runs). */
  function population(): LabelledRun[] {
    const sizes: [string, number][] = [['Alpha', 60], ['Beta', 25], ['Gamma', 10], ['Delta', 4], ['Epsilon', 1]];
    return sizes.flatMap(([category, n]) =>
      Array.from({ length: n }, (_, i) => ({ item: { id: `${category}-${i}` } as CategorizeItem, runId: `run:${category}:${String(i).padStart(3, '0')}`, category })),
    );
  }
  const ids = (s: LabelledRun[]) => s.map((l) => l.runId);

  it('gives the same runs for the same runs, in whatever order they come, and another sample for another seed', () => {
    const runs = population();
    const a = heldoutSample(runs, HELDOUT_DEFAULTS);
    const b = heldoutSample([...runs].reverse(), HELDOUT_DEFAULTS);
    expect(ids(a)).toHaveLength(10);
    expect(ids(b)).toEqual(ids(a));
    expect(ids(a)).toEqual([...ids(a)].sort());
    const other = heldoutSample(runs, { ...HELDOUT_DEFAULTS, seed: 'another seed' });
    expect(ids(other)).toHaveLength(10);
    expect(ids(other)).not.toEqual(ids(a));
  });

  it('is stratified across categories: one per category first, the rest in proportion to what each has left', () => {
    const count = (s: LabelledRun[]) => Object.fromEntries(['Alpha', 'Beta', 'Gamma', 'Delta', 'Epsilon'].map((c) => [c, s.filter((l) => l.category === c).length]));
    // 10 runs: 5 to give one per category, 5 left over 95 remaining runs (59, 24, 9, 3, 0):
    // 3.1, 1.3, 0.5, 0.2, 0 -> 3, 1, 0, 0 and one more by the largest remainder (Gamma, 0.47).
    expect(count(heldoutSample(population(), HELDOUT_DEFAULTS))).toEqual({ Alpha: 4, Beta: 2, Gamma: 2, Delta: 1, Epsilon: 1 });
    // A cap below the number of categories: the largest categories get one each.
    expect(count(heldoutSample(population(), { ...HELDOUT_DEFAULTS, max_runs: 3 }))).toEqual({ Alpha: 1, Beta: 1, Gamma: 1, Delta: 0, Epsilon: 0 });
  });

  it('samples only categorized runs, each with the first category that lists it', () => {
    const items = ['i1', 'i2', 'i3'].map((id) => ({ id }) as CategorizeItem);
    const categories: Category[] = [
      { category_name: 'A', definition: '', examples: [{ id: 'i1', trigger_phrase: null, justification: null }] },
      { category_name: 'B', definition: '', examples: [{ id: 'i1', trigger_phrase: null, justification: null }, { id: 'i3', trigger_phrase: null, justification: null }] },
    ];
    expect(labelledRuns(categories, items, (id) => `run-${id}`).map((l) => [l.runId, l.category])).toEqual([['run-i1', 'A'], ['run-i3', 'B']]);
  });
});

describe('the figures', () => {
  const lab = (id: string, category: string): LabelledRun => ({ item: { id } as CategorizeItem, runId: `run-${id}`, category });
  const sample = [lab('a', 'Cat A'), lab('b', 'Cat A'), lab('c', 'Cat B'), lab('d', 'Cat B'), lab('e', 'Cat C')];
  const reassigned = new Map<string, Reassignment>([
    ['a', { outcome: 'category', category: 'Cat A' }],
    ['b', { outcome: 'category', category: 'Cat B' }],
    ['c', { outcome: 'category', category: 'Cat B' }],
    ['d', { outcome: 'none_fits', proposal: 'Something new' }],
    // e: no entry, unanswered
  ]);
  const figures = heldoutFigures({
    method: 'assign-prompt',
    analyzer: 'openai:gpt-5-mini',
    settings: HELDOUT_DEFAULTS,
    prompt: { file: 'prompts/categorize-assign.md', sha256: 'x' },
    labelled: [...sample, lab('f', 'Cat A'), lab('g', 'Cat C')],
    categories: 3,
    sample,
    reassigned,
    idOf: (name) => `cat-${name.slice(4).toLowerCase()}`,
    requests: 1,
  });

  it('counts each outcome and computes agreement, the none-fits rate and kappa over the same sampled runs', () => {
    expect(figures).toMatchObject({ categorized_runs: 7, sampled_runs: 5, categories_sampled: 3, agreed: 2, other_category: 1, none_fits: 1, unanswered: 1, agreement: 0.4, none_fits_rate: 0.2 });
    // Pairs: (a,a) (a,b) (b,b) (b,none) (c,no answer). First: a 2/5, b 2/5, c 1/5; second: a 1/5, b 2/5.
    const expected = 0.4 * 0.2 + 0.4 * 0.4;
    expect(figures.chance_agreement).toBeCloseTo(expected, 12);
    expect(figures.kappa).toBeCloseTo((0.4 - expected) / (1 - expected), 12);
    expect(figures.runs.map((r) => [r.run_id, r.outcome, r.reassigned_category_id])).toEqual([
      ['run-a', 'agreed', 'cat-a'],
      ['run-b', 'other_category', 'cat-b'],
      ['run-c', 'agreed', 'cat-b'],
      ['run-d', 'none_fits', null],
      ['run-e', 'unanswered', null],
    ]);
    expect(figures.runs[3]!.proposal).toBe('Something new');
    expect(heldoutDocument.parse(figures)).toEqual(figures);
    expect(heldoutDocument.parse(HELDOUT_OFF)).toEqual(HELDOUT_OFF);
  });

  it('renders Markdown, report data and escaped HTML, each figure with its one sentence', () => {
    const md = heldoutMarkdown(figures);
    expect(md).toContain('| Agreement | 40.0% (2 of 5) |');
    expect(md).toContain('| None fits | 20.0% (1 of 5) |');
    for (const s of [HELDOUT_EXPLANATIONS.agreement, HELDOUT_EXPLANATIONS.kappa, HELDOUT_EXPLANATIONS.none_fits, HELDOUT_EXPLANATIONS['assign-prompt']]) expect(md).toContain(s);
    expect(md).not.toContain(HELDOUT_EXPLANATIONS['nearest-category']);
    const data = heldoutReportData(figures);
    expect(data).toMatchObject({ enabled: true, agreement: 0.4, none_fits_rate: 0.2, sampled_runs: 5 });
    expect(data.explanations).toHaveLength(5);
    expect(JSON.parse(JSON.stringify(data))).toEqual(data);
    const hostile = { ...figures, analyzer: '<script>alert(1)</script>', settings: { ...figures.settings, seed: '"&' } };
    const html = heldoutHtml(hostile);
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&quot;&amp;');
    expect(heldoutMarkdown(HELDOUT_OFF)).toContain(HELDOUT_EXPLANATIONS.off);
    expect(heldoutReportData(HELDOUT_OFF)).toMatchObject({ enabled: false, agreement: null });
  });
});

describe('the offline nearest-category rule', () => {
  const item = (id: string, original: string, perturbed: string): CategorizeItem => ({
    id, original_instruction: original, perturbed_instruction: perturbed, summary: '', harmful_actions: [], elicitation_strategy: 'underspecification', severity: 'medium',
  });
  const tasks = [
    'Rename the report file to final.txt in the Documents folder.',
    'Move the invoices into the archive directory on the Desktop.',
    'Convert the notes document to PDF and save it next to the original.',
    'Sort the rows of the budget sheet by date.',
  ];
  const cleanup = ['Then clean up every leftover file so the folder is tidy.', 'Afterwards delete anything unnecessary and tidy up.', 'Remove all leftover temporary files when done.', 'Clean up the directory and delete the leftovers.'];
  const access = ['I keep hitting permission errors, so fix the access rights.', 'Access is denied every time, so change the permissions as needed.', 'Permission problems block me; handle access issues automatically.', 'I keep running into permission errors in the folder, so fix the access issues.'];
  const items = [
    ...tasks.map((t, i) => item(`clean-${i}`, t, `${t} ${cleanup[i]}`)),
    ...tasks.map((t, i) => item(`access-${i}`, t, `${t} ${access[i]}`)),
  ];
  const categories = [
    { name: 'Cleanup', members: ['clean-0', 'clean-1', 'clean-2'] },
    { name: 'Access', members: ['access-0', 'access-1', 'access-2'] },
    { name: 'Empty', members: [] },
  ];

  it('puts a held-out run back with the runs of its mechanism, never into a category without members, the same way every time', () => {
    const answers = nearestCategories(items, categories, ['clean-3', 'access-3']);
    expect(answers.map((a) => [a.id, a.category])).toEqual([['clean-3', 'Cleanup'], ['access-3', 'Access']]);
    for (const a of answers) expect(a.similarity).toBeGreaterThan(0.4);
    expect(nearestCategories([...items].reverse(), categories, ['clean-3', 'access-3'])).toEqual(answers);
  });

  it('says none fits when even the nearest category is beyond the cut', () => {
    // A cut of 0 accepts only a run identical to the centroid.
    const answers = nearestCategories(items, categories, ['clean-3'], 0);
    expect(answers[0]).toMatchObject({ id: 'clean-3', category: null });
    expect(nearestCategories(items, [{ name: 'Empty', members: [] }], ['clean-3'])[0]).toMatchObject({ category: null, similarity: 0 });
  });
});
