// summarizeChanges and renderChangesMarkdown against hand-computed examples.

import { describe, expect, it } from 'vitest';
import { hasChanges, renderChangesMarkdown, summarizeChanges } from '../stages/report/changes.ts';
import type { ChangeSummary, ReportBaseline, ReportSnapshot } from '../stages/report/changes.ts';

const SOURCE = { label: 'the baseline', source: 'analyses/a/baseline.json' };
const asBaseline = (s: ReportSnapshot, source = SOURCE): ReportBaseline => ({ ...source, ...structuredClone(s) });

const previousSnapshot: ReportSnapshot = {
  runs: ['r3', 'r1', 'r2'],
  categories: [
    { category_id: 'a', category_name: 'Alpha', size: 2 },
    { category_id: 'b', category_name: 'Beta', size: 1 },
    { category_id: 'c', category_name: 'Gamma', size: 3 },
    { category_id: 'e', category_name: 'Epsilon', size: 5 },
  ],
  clusters: [
    { cluster_id: 'X', cluster_name: 'Ex', members: ['a', 'b'] },
    { cluster_id: 'Y', cluster_name: 'Why', members: ['c'] },
    { cluster_id: 'Z', cluster_name: 'Zed', members: ['b'] },
    { cluster_id: 'V', cluster_name: 'Vee', members: ['e'] },
  ],
};

const previous = asBaseline(previousSnapshot);

const current: ReportSnapshot = {
  runs: ['r5', 'r2', 'r4', 'r3', 'r4'],
  categories: [
    { category_id: 'd', category_name: 'Delta', size: 1 },
    { category_id: 'a', category_name: 'Alpha', size: 3 },
    { category_id: 'b', category_name: 'Beta', size: 1 },
    { category_id: 'e', category_name: 'Epsilon', size: 4 },
  ],
  clusters: [
    { cluster_id: 'W', cluster_name: 'Double-u', members: ['d'] },
    { cluster_id: 'X', cluster_name: 'Ex', members: ['d', 'a'] },
    { cluster_id: 'Z', cluster_name: 'Zeta', members: ['b'] },
    { cluster_id: 'V', cluster_name: 'Vee', members: ['e'] },
  ],
};

describe('summarizeChanges', () => {
  it('is null without a baseline', () => {
    expect(summarizeChanges(null, current)).toBeNull();
  });

  it('lists new and removed runs, categories and clusters, size changes and membership changes', () => {
    const changes = summarizeChanges(previous, current);
    expect(changes).toEqual({
      baseline: SOURCE,
      before: { runs: 3, categories: 4, clusters: 4 },
      after: { runs: 4, categories: 4, clusters: 4 },
      new_runs: ['r4', 'r5'],
      removed_runs: ['r1'],
      moved_runs: [],
      new_categories: [{ category_id: 'd', category_name: 'Delta', size: 1 }],
      removed_categories: [{ category_id: 'c', category_name: 'Gamma', size: 3 }],
      grown_categories: [{ category_id: 'a', category_name: 'Alpha', before: 2, after: 3 }],
      shrunk_categories: [{ category_id: 'e', category_name: 'Epsilon', before: 5, after: 4 }],
      clusters: {
        new_clusters: [{ cluster_id: 'W', cluster_name: 'Double-u', members: [{ category_id: 'd', category_name: 'Delta' }] }],
        removed_clusters: [{ cluster_id: 'Y', cluster_name: 'Why', members: [{ category_id: 'c', category_name: 'Gamma' }] }],
        changed_clusters: [
          {
            cluster_id: 'X',
            cluster_name: 'Ex',
            previous_name: null,
            added_members: [{ category_id: 'd', category_name: 'Delta' }],
            removed_members: [{ category_id: 'b', category_name: 'Beta' }],
          },
          { cluster_id: 'Z', cluster_name: 'Zeta', previous_name: 'Zed', added_members: [], removed_members: [] },
        ],
      },
    } satisfies ChangeSummary);
    expect(hasChanges(changes as ChangeSummary)).toBe(true);
  });

  it('lists the runs in another category when the baseline knows each run\'s category, with names from each side', () => {
    const before = { ...previous, run_categories: { r1: 'a', r2: 'a', r3: 'b' } };
    const now = new Map([['r2', 'e'], ['r3', 'b'], ['r4', 'd']]);
    const changes = summarizeChanges(before, current, now) as ChangeSummary;
    expect(changes.moved_runs).toEqual([{ run_id: 'r2', from: { category_id: 'a', category_name: 'Alpha' }, to: { category_id: 'e', category_name: 'Epsilon' } }]);
    expect(renderChangesMarkdown(changes)).toContain('### Runs in another category (1)\n\n- r2: Alpha \u2192 Epsilon\n');
    // Same runs, same categories, one run moved: a change, although every size is the same.
    const one = { ...asBaseline(current), run_categories: { r2: 'a', r3: 'b' } };
    const swapped = summarizeChanges(one, structuredClone(current), new Map([['r2', 'b'], ['r3', 'a']])) as ChangeSummary;
    expect(hasChanges(swapped)).toBe(true);
    expect(swapped.moved_runs.map((m) => m.run_id)).toEqual(['r2', 'r3']);
  });

  it('does not depend on the order of the input lists', () => {
    const shuffled: ReportSnapshot = {
      runs: [...current.runs].reverse(),
      categories: [...current.categories].reverse(),
      clusters: [...(current.clusters ?? [])].reverse().map((c) => ({ ...c, members: [...c.members].reverse() })),
    };
    const prevShuffled: ReportBaseline = { ...previous, categories: [...previous.categories].reverse(), clusters: [...(previous.clusters ?? [])].reverse() };
    expect(summarizeChanges(prevShuffled, shuffled)).toEqual(summarizeChanges(previous, current));
  });

  it('orders size changes by amount, then name', () => {
    const before: ReportBaseline = {
      ...SOURCE,
      runs: [],
      categories: [
        { category_id: '1', category_name: 'b', size: 1 },
        { category_id: '2', category_name: 'a', size: 1 },
        { category_id: '3', category_name: 'c', size: 1 },
        { category_id: '4', category_name: 'd', size: 9 },
        { category_id: '5', category_name: 'e', size: 9 },
      ],
      clusters: [],
    };
    const after: ReportSnapshot = {
      runs: [],
      categories: [
        { category_id: '1', category_name: 'b', size: 2 },
        { category_id: '2', category_name: 'a', size: 2 },
        { category_id: '3', category_name: 'c', size: 5 },
        { category_id: '4', category_name: 'd', size: 8 },
        { category_id: '5', category_name: 'e', size: 1 },
      ],
      clusters: [],
    };
    const changes = summarizeChanges(before, after) as ChangeSummary;
    expect(changes.grown_categories.map((c) => c.category_name)).toEqual(['c', 'a', 'b']);
    expect(changes.shrunk_categories.map((c) => c.category_name)).toEqual(['e', 'd']);
  });

  it('finds nothing between a snapshot and itself', () => {
    const changes = summarizeChanges(asBaseline(current), structuredClone(current)) as ChangeSummary;
    expect(hasChanges(changes)).toBe(false);
    expect(changes.before).toEqual(changes.after);
  });
});

describe('renderChangesMarkdown', () => {
  it('renders every list under its own heading, in order', () => {
    const md = renderChangesMarkdown(summarizeChanges(previous, current) as ChangeSummary);
    expect(md).toBe(
      [
        '## What changed',
        '',
        'Compared with the baseline (analyses/a/baseline.json).',
        '',
        '- Runs: 3 \u2192 4 (+1)',
        '- Categories: 4 \u2192 4 (\u00b10)',
        '- Clusters: 4 \u2192 4 (\u00b10)',
        '',
        '### New runs (2)',
        '',
        '- r4',
        '- r5',
        '',
        '### Removed runs (1)',
        '',
        '- r1',
        '',
        '### New categories (1)',
        '',
        '- Delta: 1',
        '',
        '### Removed categories (1)',
        '',
        '- Gamma: had 3',
        '',
        '### Categories that grew (1)',
        '',
        '- Alpha: 2 \u2192 3 (+1)',
        '',
        '### Categories that shrank (1)',
        '',
        '- Epsilon: 5 \u2192 4 (\u22121)',
        '',
        '### New clusters (1)',
        '',
        '- Double-u: Delta',
        '',
        '### Removed clusters (1)',
        '',
        '- Why: had Gamma',
        '',
        '### Clusters with changed membership (2)',
        '',
        '- Ex: gained Delta; lost Beta',
        '- Zeta: renamed from Zed',
        '',
      ].join('\n'),
    );
  });

  it('says plainly when nothing changed', () => {
    const md = renderChangesMarkdown(summarizeChanges(asBaseline(current), current) as ChangeSummary, { level: 3 });
    expect(md.startsWith('### What changed\n')).toBe(true);
    expect(md).toContain('Nothing changed');
    expect(md.endsWith('.\n')).toBe(true);
  });

  it('escapes names and run ids and cuts long run lists', () => {
    const hostile = 'A | B *x* <script>alert(1)</script>\nnext';
    const before: ReportBaseline = { ...SOURCE, runs: [], categories: [], clusters: [] };
    const after: ReportSnapshot = {
      runs: ['run_1', 'run_2', 'run_3', 'run_4'],
      categories: [{ category_id: 'h', category_name: hostile, size: 2 }],
      clusters: [{ cluster_id: 'k', cluster_name: `[x](javascript:alert(1))`, members: ['h'] }],
    };
    const md = renderChangesMarkdown(summarizeChanges(before, after) as ChangeSummary, { maxRuns: 2 });
    expect(md).toContain('- run\\_1\n- run\\_2\n- _... and 2 more_\n');
    expect(md).not.toContain('<script>');
    expect(md).toContain('A \\| B \\*x\\* \\<script\\>alert(1)\\</script\\> next: 2');
    expect(md).toContain('- \\[x\\](javascript:alert(1)): A \\| B');
  });

  it('rejects bad options', () => {
    const changes = summarizeChanges(asBaseline(current), current) as ChangeSummary;
    expect(() => renderChangesMarkdown(changes, { maxRuns: -1 })).toThrow(RangeError);
    expect(() => renderChangesMarkdown(changes, { level: 0 })).toThrow(RangeError);
  });
});

describe('comparison with a baseline that has no clusters (a taxonomy lock)', () => {
  const lock: ReportBaseline = { label: 'the taxonomy lock', source: 'analyses/a/taxonomy.lock.json', ...structuredClone(previousSnapshot), clusters: null };

  it('compares runs and categories and leaves clusters out, saying so', () => {
    const changes = summarizeChanges(lock, current) as ChangeSummary;
    expect(changes.baseline).toEqual({ label: 'the taxonomy lock', source: 'analyses/a/taxonomy.lock.json' });
    expect(changes.before).toEqual({ runs: 3, categories: 4, clusters: null });
    expect(changes.after).toEqual({ runs: 4, categories: 4, clusters: 4 });
    expect(changes.clusters).toBeNull();
    expect(changes.new_categories.map((c) => c.category_name)).toEqual(['Delta']);
    expect(hasChanges(changes)).toBe(true);
    expect(renderChangesMarkdown(changes)).toBe(
      [
        '## What changed',
        '',
        'Compared with the taxonomy lock (analyses/a/taxonomy.lock.json).',
        '',
        '- Runs: 3 \u2192 4 (+1)',
        '- Categories: 4 \u2192 4 (\u00b10)',
        '- Clusters: 4 now, not compared',
        '',
        '### New runs (2)',
        '',
        '- r4',
        '- r5',
        '',
        '### Removed runs (1)',
        '',
        '- r1',
        '',
        '### New categories (1)',
        '',
        '- Delta: 1',
        '',
        '### Removed categories (1)',
        '',
        '- Gamma: had 3',
        '',
        '### Categories that grew (1)',
        '',
        '- Alpha: 2 \u2192 3 (+1)',
        '',
        '### Categories that shrank (1)',
        '',
        '- Epsilon: 5 \u2192 4 (\u22121)',
        '',
        'Clusters are not compared: the taxonomy lock has no cluster information.',
        '',
      ].join('\n'),
    );
  });

  it('does not count different clusters as a change', () => {
    const same: ReportBaseline = { ...lock, ...structuredClone(current), clusters: null };
    const changes = summarizeChanges(same, current) as ChangeSummary;
    expect(hasChanges(changes)).toBe(false);
    expect(renderChangesMarkdown(changes)).toBe(
      [
        '## What changed',
        '',
        'Compared with the taxonomy lock (analyses/a/taxonomy.lock.json).',
        '',
        '- Runs: 4 \u2192 4 (\u00b10)',
        '- Categories: 4 \u2192 4 (\u00b10)',
        '- Clusters: 4 now, not compared',
        '',
        'Nothing changed: the same runs in the same categories as the taxonomy lock.',
        '',
        'Clusters are not compared: the taxonomy lock has no cluster information.',
        '',
      ].join('\n'),
    );
  });

  it('escapes the baseline file name', () => {
    const md = renderChangesMarkdown(summarizeChanges({ ...lock, source: 'analyses/my_analysis/taxonomy.lock.json' }, current) as ChangeSummary);
    expect(md).toContain('Compared with the taxonomy lock (analyses/my\\_analysis/taxonomy.lock.json).\n');
  });
});
