import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { importReports } from '../scripts/import-report.ts';
import { referenceReportStatistics } from '../stages/report/reference-stats.ts';
import { formatPercent1 } from '../stages/util/pyformat.ts';

const FIX = join(import.meta.dirname, 'fixtures/report');
let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

describe('import-report: reports from reference-format files', () => {
  it('renders both reports with the reference numbers, without re-running anything', () => {
    const out = mkdtempSync(join(tmpdir(), 'import-'));
    dirs.push(out);
    const cat = join(FIX, 'mixed/categorization.json');
    const clu = join(FIX, 'mixed/clusters.json');
    const { markdown, html } = importReports(['--categorization', cat, '--clusters', clu, '--out', out]);
    const stats = referenceReportStatistics(JSON.parse(readFileSync(cat, 'utf8')), JSON.parse(readFileSync(clu, 'utf8')));
    expect(markdown).toContain(`Clusters: ${stats.cluster_count}`);
    for (const c of stats.clusters) expect(markdown).toContain(`| ${c.perturbations} | ${formatPercent1(c.percent)}% |`);
    expect(html.startsWith('<!DOCTYPE html>') || html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/https?:\/\//);
  });

  it('names the file and field of a file that is not in the reference format', () => {
    expect(() => importReports(['--categorization', join(FIX, 'mixed/clusters.json'), '--clusters', join(FIX, 'mixed/clusters.json')]))
      .toThrow(/categorization\.categories": expected a list/);
    expect(() => importReports(['--clusters', 'x'])).toThrow('--categorization and --clusters are required');
  });
});

describe('import-report with task lists', () => {
  it('finds every run of the sample, also those whose short id two runs share', async () => {
    const { cpSync, writeFileSync } = await import('node:fs');
    const { default: taskList } = await import('../executors/task-list/executor.ts');
    const root = mkdtempSync(join(tmpdir(), 'import-tl-'));
    dirs.push(root);
    cpSync(join(import.meta.dirname, '../examples/perturbed_queries'), join(root, 'data'), { recursive: true });
    cpSync(join(import.meta.dirname, '../prompts'), join(root, 'prompts'), { recursive: true });
    writeFileSync(join(root, 'pipeline.yaml'), `data:\n  root: ${join(root, 'data')}\nanalyses:\n  - name: s\n    agents: [claude-haiku-4-5-20251001, claude-opus-4-5-20251101]\n`);
    const log = console.log;
    console.log = () => {};
    try {
      expect(await taskList({ analysis: 's' }, { root })).toEqual({ success: true });
    } finally {
      console.log = log;
    }
    const lists = ['claude-haiku-4-5-20251001', 'claude-opus-4-5-20251101'].flatMap((a) => ['--task-list', join(root, `out/s/task-list/task_list_${a}.json`)]);
    const { markdown, html } = importReports([
      '--categorization', join(FIX, 'pipeline-sample/categorization.json'),
      '--clusters', join(FIX, 'pipeline-sample/clusters.json'),
      ...lists, '--out', join(root, 'report'),
    ]);
    expect(markdown).toContain("perturbed instruction: 117 of 117 (100.0%)");
    expect(markdown).toMatch(/\| In the task list \| 117 \|/);
    expect(html).toContain('trigger phrases verified</dt><dd>117 / 117');
  });
});
