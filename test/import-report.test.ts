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
