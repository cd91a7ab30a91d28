// The report's baseline (the committed taxonomy lock, never a previous report)
// and its run folder links, computed from the configuration only.
import { describe, expect, it } from 'vitest';
import { lockBaseline, runFolderOf, runLink } from '../stages/report/assemble.ts';
import { summarizeChanges } from '../stages/report/changes.ts';
import type { ReportSnapshot } from '../stages/report/changes.ts';
import { buildLock } from '../stages/categorize/taxonomy-lock.ts';

const digest = (n: number) => n.toString(16).padStart(64, '0');

const lock = buildLock({
  analysis: 'a',
  built_with: { provider: 'offline' },
  categories: [
    { category_id: 'cat-b', category_name: 'Bravo', definition: 'b', examples: [{ run_id: 'r3', trigger_phrase: null, justification: null }] },
    {
      category_id: 'cat-a',
      category_name: 'Alpha',
      definition: 'a',
      examples: [
        { run_id: 'r2', trigger_phrase: 'x', justification: 'y' },
        { run_id: 'r1', trigger_phrase: 'x', justification: 'y' },
      ],
    },
  ],
  summary_digests: { r1: digest(1), r2: digest(2), r3: digest(3) },
});

describe('lockBaseline', () => {
  it('takes every run of the lock with its category, its categories with their run counts, and no clusters', () => {
    expect(lockBaseline(lock, 'analyses/a/taxonomy.lock.json')).toEqual({
      label: 'the taxonomy lock',
      source: 'analyses/a/taxonomy.lock.json',
      runs: ['r1', 'r2', 'r3'],
      categories: [
        { category_id: 'cat-a', category_name: 'Alpha', size: 2 },
        { category_id: 'cat-b', category_name: 'Bravo', size: 1 },
      ],
      clusters: null,
      run_categories: { r1: 'cat-a', r2: 'cat-a', r3: 'cat-b' },
    });
  });

  it('compares with a report by category id; clusters are not compared', () => {
    const current: ReportSnapshot = {
      runs: ['r1', 'r2', 'r3', 'r4'],
      categories: [
        { category_id: 'cat-a', category_name: 'Alpha', size: 3 },
        { category_id: 'cat-b', category_name: 'Bravo', size: 1 },
      ],
      clusters: [{ cluster_id: 'clu-1', cluster_name: 'One', members: ['cat-a', 'cat-b'] }],
    };
    const changes = summarizeChanges(lockBaseline(lock, 'analyses/a/taxonomy.lock.json'), current);
    expect(changes).toMatchObject({
      before: { runs: 3, categories: 2, clusters: null },
      after: { runs: 4, categories: 2, clusters: 1 },
      new_runs: ['r4'],
      removed_runs: [],
      grown_categories: [{ category_id: 'cat-a', before: 2, after: 3 }],
      clusters: null,
    });
  });
});

describe('runFolderOf', () => {
  it('is the folder of the run file, relative to the data root', () => {
    expect(runFolderOf({ refinement_summary_path: 'os/t1/o4-mini/perturbed_query_ab/iterative_refinement_m/agent_x/refinement_summary.json' })).toBe(
      'os/t1/o4-mini/perturbed_query_ab/iterative_refinement_m/agent_x',
    );
    expect(runFolderOf({ refinement_summary_path: 'os\\t1\\agent_x\\refinement_summary.json' })).toBe('os/t1/agent_x');
  });
});

describe('runLink', () => {
  const folder = 'os/t1/agent_x';

  it('goes from <outDir>/<analysis>/report/ to <data.root>/<run folder> for a workspace-relative data root', () => {
    expect(runLink({ dataRoot: 'examples/perturbed_queries', outDir: 'out', analysis: 'a' }, folder)).toBe('../../../examples/perturbed_queries/os/t1/agent_x');
    expect(runLink({ dataRoot: './examples/perturbed_queries/', outDir: 'out/', analysis: 'a' }, folder)).toBe('../../../examples/perturbed_queries/os/t1/agent_x');
    expect(runLink({ dataRoot: 'data', outDir: 'build/reports', analysis: 'a' }, folder)).toBe('../../../../data/os/t1/agent_x');
    expect(runLink({ dataRoot: 'out/data', outDir: 'out', analysis: 'a' }, folder)).toBe('../../data/os/t1/agent_x');
  });

  it('climbs out of the workspace when the data root does, without knowing where the workspace is', () => {
    expect(runLink({ dataRoot: '../shared/runs', outDir: 'out', analysis: 'a' }, folder)).toBe('../../../../shared/runs/os/t1/agent_x');
    expect(runLink({ dataRoot: 'data/../../shared', outDir: 'out', analysis: 'a' }, folder)).toBe('../../../../shared/os/t1/agent_x');
  });

  it('is the configured absolute path for an absolute data root', () => {
    expect(runLink({ dataRoot: '/srv/elicitation/perturbed_queries', outDir: 'out', analysis: 'a' }, folder)).toBe('/srv/elicitation/perturbed_queries/os/t1/agent_x');
    expect(runLink({ dataRoot: '/srv/runs/', outDir: '/elsewhere', analysis: 'a' }, folder)).toBe('/srv/runs/os/t1/agent_x');
    expect(runLink({ dataRoot: 'C:\\runs', outDir: 'out', analysis: 'a' }, folder)).toBe('C:/runs/os/t1/agent_x');
  });

  it('is null when the configuration cannot tell (an output folder outside the workspace, a relative data root)', () => {
    expect(runLink({ dataRoot: 'data', outDir: '/abs/out', analysis: 'a' }, folder)).toBeNull();
    expect(runLink({ dataRoot: 'data', outDir: '../out', analysis: 'a' }, folder)).toBeNull();
  });
});
