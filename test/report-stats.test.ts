// Hand-computed checks of the report statistics (rules: seed-formats-details.md §5).

import { describe, expect, it } from 'vitest';
import type { Category, Cluster } from '../stages/formats.ts';
import { referenceReportStatistics } from '../stages/report/reference-stats.ts';
import {
  codePointLength,
  computeReportStats,
  cutName,
  percentOf,
} from '../stages/report/stats.ts';
import type { CategorizationDocument, ClustersDocument } from '../stages/report/stats.ts';
import { compareCodePoints } from '../stages/util/order.ts';

function category(name: string, count: number): Category {
  return {
    category_name: name,
    definition: `about ${name}`,
    examples: Array.from({ length: count }, (_, i) => ({ id: `t${i}:p${i}`, trigger_phrase: `${name} ${i}`, justification: 'j' })),
  };
}

function cluster(name: string, members: string[]): Cluster {
  return {
    cluster_name: name,
    definition: `cluster ${name}`,
    anchor_phrases: 'a, b',
    member_categories: members.map((m) => ({ category_name: m, category_definition: '', justification: `why ${m}` })),
  };
}

function docs(categories: Category[], clusters: Cluster[]): [CategorizationDocument, ClustersDocument] {
  return [{ categorization: { categories } }, { clusters }];
}

describe('computeReportStats', () => {
  it('handles empty inputs', () => {
    const stats = computeReportStats(...docs([], []));
    expect(stats).toEqual({
      totalCategories: 0,
      totalPerturbations: 0,
      clusterCount: 0,
      clusters: [],
      unclustered: [],
      cumulative: [],
      duplicateCategoryNames: [],
      unknownMemberNames: [],
      multiplyClustered: [],
    });
  });

  it('reads a reference categorization that failed to parse as having no categories', () => {
    const broken = { categorization: { error: 'bad json', raw_response: '...' } } as unknown as CategorizationDocument;
    const stats = computeReportStats(broken, { clusters: [cluster('K', ['A'])] });
    expect(stats.totalCategories).toBe(0);
    expect(stats.clusters[0]).toMatchObject({ memberEntries: 1, perturbations: 0, percent: 0, percentText: '0.0' });
    expect(stats.unknownMemberNames).toEqual(['A']);
  });

  it('counts distinct names, the last duplicate wins', () => {
    // A(5) ... A(2): A counts 2; B 3 => 2 categories, 5 perturbations.
    const stats = computeReportStats(...docs([category('A', 5), category('B', 3), category('A', 2)], [cluster('K', ['A'])]));
    expect(stats.totalCategories).toBe(2);
    expect(stats.totalPerturbations).toBe(5);
    expect(stats.duplicateCategoryNames).toEqual(['A']);
    expect(stats.clusters[0]).toMatchObject({ perturbations: 2, percent: 40, percentText: '40.0' });
    expect(stats.clusters[0]?.members[0]?.examples.map((e) => e.trigger_phrase)).toEqual(['A 0', 'A 1']);
    expect(stats.unclustered).toEqual([{ name: 'B', perturbations: 3 }]);
  });

  it('counts member entries as listed, unknown and repeated names included', () => {
    const stats = computeReportStats(...docs([category('A', 4)], [cluster('K', ['A', 'Ghost', 'A', 'Ghost'])]));
    const k = stats.clusters[0];
    expect(k?.memberEntries).toBe(4);
    expect(k?.perturbations).toBe(8); // A counted twice
    expect(k?.percentText).toBe('200.0');
    expect(k?.members.map((m) => [m.name, m.perturbations, m.known])).toEqual([
      ['A', 4, true],
      ['A', 4, true],
      ['Ghost', 0, false],
      ['Ghost', 0, false],
    ]);
    expect(stats.unknownMemberNames).toEqual(['Ghost']);
    expect(stats.multiplyClustered).toEqual([{ name: 'A', clusters: ['K', 'K'] }]);
  });

  it('counts a category in two clusters in both; shares and cumulative pass 100%', () => {
    // total 16: A 1, B 3, C 12. K1 = {C} 12 (75%), K2 = {A, C} 13 (81.25%), K3 = {B} 3 (18.75%).
    const stats = computeReportStats(
      ...docs([category('A', 1), category('B', 3), category('C', 12)], [cluster('K1', ['C']), cluster('K2', ['A', 'C']), cluster('K3', ['B'])]),
    );
    expect(stats.clusters.map((c) => [c.rank, c.name, c.perturbations, c.percentText])).toEqual([
      [1, 'K2', 13, '81.2'], // 81.25 ties to even
      [2, 'K1', 12, '75.0'],
      [3, 'K3', 3, '18.8'], // 18.75 ties to even
    ]);
    expect(stats.cumulative.map((r) => [r.topN, r.memberEntries, r.perturbations, r.percentText])).toEqual([
      [1, 2, 13, '81.2'],
      [2, 3, 25, '156.2'], // 156.25
      [3, 4, 28, '175.0'],
    ]);
    expect(stats.multiplyClustered).toEqual([{ name: 'C', clusters: ['K2', 'K1'] }]);
    expect(stats.unclustered).toEqual([]);
  });

  it('ranks by perturbations with ties in input order, members likewise', () => {
    const stats = computeReportStats(
      ...docs(
        [category('a', 2), category('b', 2), category('c', 1), category('d', 4)],
        [cluster('first', ['c', 'a', 'b']), cluster('second', ['d']), cluster('third', ['a', 'b', 'c']), cluster('fourth', [])],
      ),
    );
    expect(stats.clusters.map((c) => [c.rank, c.name, c.inputIndex])).toEqual([
      [1, 'first', 0],
      [2, 'third', 2],
      [3, 'second', 1],
      [4, 'fourth', 3],
    ]);
    expect(stats.clusters[0]?.members.map((m) => m.name)).toEqual(['a', 'b', 'c']);
    expect(stats.clusters[3]).toMatchObject({ memberEntries: 0, perturbations: 0, members: [] });
  });

  it('percent is 0 when there are no perturbations', () => {
    const stats = computeReportStats(...docs([category('A', 0)], [cluster('K', ['A'])]));
    expect(stats.clusters[0]).toMatchObject({ perturbations: 0, percent: 0, percentText: '0.0' });
    expect(stats.cumulative[0]).toMatchObject({ percent: 0, percentText: '0.0' });
  });

  it('prints 1 of 16 as 6.2, as Python does', () => {
    const stats = computeReportStats(...docs([category('A', 1), category('B', 15)], [cluster('K', ['A'])]));
    expect(stats.clusters[0]?.percent).toBe(6.25);
    expect(stats.clusters[0]?.percentText).toBe('6.2');
  });

  it('sorts unclustered categories by code point, not UTF-16 unit or locale', () => {
    const names = ['😀 emoji', 'ｚ wide', 'a lower', 'B upper', 'é'];
    const stats = computeReportStats(...docs(names.map((n, i) => category(n, i)), []));
    expect(stats.unclustered.map((u) => u.name)).toEqual(['B upper', 'a lower', 'é', 'ｚ wide', '😀 emoji']);
    expect([...names].sort()).not.toEqual(stats.unclustered.map((u) => u.name)); // JS default order differs
  });

  it('applies the reference defaults for missing fields', () => {
    const bare = { member_categories: [{ justification: null }] } as unknown as Cluster;
    const stats = computeReportStats({ categorization: { categories: [category('', 2)] } }, { clusters: [bare] });
    expect(stats.clusters[0]).toMatchObject({ name: 'Unnamed', definition: '', anchorPhrases: '', perturbations: 2 });
    expect(stats.clusters[0]?.members[0]).toMatchObject({ name: '', justification: '', known: true });
    expect(stats.unclustered).toEqual([]);
  });

  it('treats a category without an examples key as empty', () => {
    const noExamples = { category_name: 'A', definition: 'd' } as unknown as Category;
    const stats = computeReportStats({ categorization: { categories: [noExamples] } }, { clusters: [] });
    expect(stats.unclustered).toEqual([{ name: 'A', perturbations: 0 }]);
  });
});

describe('string helpers', () => {
  it('compareCodePoints orders astral characters after the BMP', () => {
    expect(compareCodePoints('\u{1F600}', '\uFF5A')).toBe(1);
    expect(compareCodePoints('\uFF5A', '\u{1F600}')).toBe(-1);
    expect(compareCodePoints('abc', 'abc')).toBe(0);
    expect(compareCodePoints('ab', 'abc')).toBe(-1);
    expect(compareCodePoints('abd', 'abc')).toBe(1);
    expect(compareCodePoints('', '')).toBe(0);
    expect(compareCodePoints('Z', 'a')).toBe(-1);
  });

  it('cutName counts code points and cuts to 50 + "..."', () => {
    const fifty = 'x'.repeat(50);
    expect(cutName(fifty)).toBe(fifty);
    expect(cutName(`${fifty}y`)).toBe(`${fifty}...`);
    const emoji = '😀'.repeat(51);
    expect(codePointLength(emoji)).toBe(51);
    expect(cutName(emoji)).toBe(`${'😀'.repeat(50)}...`);
    expect(cutName('😀'.repeat(30))).toBe('😀'.repeat(30)); // 60 UTF-16 units, 30 code points
    expect(cutName('abcdef', 3)).toBe('abc...');
  });

  it('percentOf divides first, then multiplies', () => {
    expect(percentOf(1, 3)).toBe((1 / 3) * 100);
    expect(percentOf(5, 0)).toBe(0);
  });
});

describe('referenceReportStatistics', () => {
  it('gives plain snake_case JSON with printed percent strings', () => {
    const json = referenceReportStatistics(
      ...docs([category('A', 1), category('B', 15), category('C', 0)], [cluster('Long '.repeat(12), ['B']), cluster('Small', ['A', 'X'])]),
    );
    expect(json).toEqual({
      total_categories: 3,
      total_perturbations: 16,
      cluster_count: 2,
      clusters: [
        {
          rank: 1,
          input_index: 0,
          cluster_name: 'Long '.repeat(12),
          table_name: `${'Long '.repeat(10)}...`,
          member_entries: 1,
          perturbations: 15,
          percent: 93.75,
          percent_text: '93.8',
          members: [{ category_name: 'B', perturbations: 15 }],
        },
        {
          rank: 2,
          input_index: 1,
          cluster_name: 'Small',
          table_name: 'Small',
          member_entries: 2,
          perturbations: 1,
          percent: 6.25,
          percent_text: '6.2',
          members: [
            { category_name: 'A', perturbations: 1 },
            { category_name: 'X', perturbations: 0 },
          ],
        },
      ],
      unclustered: [{ category_name: 'C', perturbations: 0 }],
      cumulative: [
        { top_n: 1, member_entries: 1, perturbations: 15, percent: 93.75, percent_text: '93.8' },
        { top_n: 2, member_entries: 3, perturbations: 16, percent: 100, percent_text: '100.0' },
      ],
    });
  });
});
