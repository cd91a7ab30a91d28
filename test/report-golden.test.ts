// Compares our report numbers with Markdown recorded from the reference
// implementation's report script (test/fixtures/report/golden/<case>.md, made
// from test/fixtures/report/<case>/{categorization,clusters}.json). The wording of
// our report differs, so both reports are parsed into the same structure of
// numbers, names and percent strings and compared field by field.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderMarkdownReport, unescapeMarkdown } from '../stages/report/markdown.ts';
import { referenceReportStatistics } from '../stages/report/reference-stats.ts';
import { computeReportStats, cutName } from '../stages/report/stats.ts';
import type { CategorizationDocument, ClustersDocument } from '../stages/report/stats.ts';

interface Row {
  rank: number;
  name: string;
  categories: number;
  perturbations: number;
  percent: string;
}
interface Member {
  name: string;
  perturbations: number;
  /** null stands for a missing or null trigger phrase */
  phrases: (string | null)[];
  more: number;
}
interface Detail extends Row {
  members: Member[];
}
interface Extracted {
  totals: { categories: number; perturbations: number; clusters: number };
  table: Row[];
  details: Detail[];
  unclustered: { name: string; perturbations: number }[];
  cumulative: { topN: number; categories: number; perturbations: number; percent: string }[];
}

const CASES: { name: string; maxExamples: number }[] = [
  { name: 'mixed', maxExamples: 3 },
  { name: 'sixteenths', maxExamples: 3 },
  { name: 'zero', maxExamples: 3 },
  { name: 'unicode', maxExamples: 1 },
  // Our own pipeline's output on the bundled sample (offline analyzer), read
  // unchanged by the reference report script.
  { name: 'pipeline-sample', maxExamples: 3 },
];

function fixture(path: string): string {
  return readFileSync(new URL(`./fixtures/report/${path}`, import.meta.url), 'utf8');
}

function num(text: string | undefined): number {
  if (text === undefined || !/^\d+$/.test(text)) throw new Error(`not a count: ${String(text)}`);
  return Number(text);
}

function must(match: RegExpMatchArray | null, what: string): RegExpMatchArray {
  if (!match) throw new Error(`could not find ${what}`);
  return match;
}

/** Split a table row of our report on unescaped pipes, then unescape each cell. */
function splitOurRow(line: string): string[] {
  const cells: string[] = [];
  let current = '';
  for (let i = 1; i < line.length; i++) {
    const ch = line[i] as string;
    if (ch === '\\') {
      current += ch + (line[i + 1] ?? '');
      i++;
    } else if (ch === '|') {
      cells.push(unescapeMarkdown(current.trim()));
      current = '';
    } else {
      current += ch;
    }
  }
  return cells;
}

/** The reference does not escape pipes: the first cell is the rank, the last three are numbers. */
function splitReferenceRow(line: string, trailing: number): string[] {
  const parts = line.slice(2, -2).split(' | ');
  const head = parts.slice(0, 1);
  const tail = parts.slice(parts.length - trailing);
  const middle = parts.slice(1, parts.length - trailing);
  return middle.length ? [...head, middle.join(' | '), ...tail] : [...head, ...tail];
}

function tableRows(lines: string[], start: number): string[] {
  const rows: string[] = [];
  for (let i = start + 2; i < lines.length && (lines[i] as string).startsWith('|'); i++) rows.push(lines[i] as string);
  return rows;
}

function parseReference(md: string): Extracted {
  const lines = md.split('\n');
  const totals = {
    categories: num(must(md.match(/^- \*\*Total Categories \(Original\):\*\* (\d+)$/m), 'categories')[1]),
    perturbations: num(must(md.match(/^- \*\*Total Successful Perturbations:\*\* (\d+)$/m), 'perturbations')[1]),
    clusters: num(must(md.match(/^- \*\*Number of Clusters:\*\* (\d+)$/m), 'clusters')[1]),
  };
  const tableStart = lines.findIndex((l) => l.startsWith('| Rank | Cluster |'));
  const table = tableRows(lines, tableStart).map((line) => {
    const [rank, name, categories, perturbations, percent] = splitReferenceRow(line, 3) as string[];
    return { rank: num(rank), name: name as string, categories: num(categories), perturbations: num(perturbations), percent: percent as string };
  });

  const details: Detail[] = [];
  const coverageAt = lines.indexOf('## Coverage Analysis');
  let member: Member | undefined;
  for (const line of lines.slice(lines.indexOf('## Detailed Cluster Breakdown'), coverageAt)) {
    let m: RegExpMatchArray | null;
    const current = details[details.length - 1];
    if ((m = line.match(/^### (\d+)\. (.*)$/))) {
      details.push({ rank: num(m[1]), name: m[2] as string, categories: -1, perturbations: -1, percent: '', members: [] });
    } else if (current && (m = line.match(/^- Member Categories: (\d+)$/))) current.categories = num(m[1]);
    else if (current && (m = line.match(/^- Total Perturbations: (\d+)$/))) current.perturbations = num(m[1]);
    else if (current && (m = line.match(/^- Proportion of Dataset: (.*)$/))) current.percent = m[1] as string;
    else if (current && (m = line.match(/^\*\*(.*)\*\* \((\d+) perturbations\)$/))) {
      member = { name: m[1] as string, perturbations: num(m[2]), phrases: [], more: 0 };
      current.members.push(member);
    } else if (member && (m = line.match(/^ {2}\d+\. "(.*)"$/))) {
      const phrase = m[1] as string;
      member.phrases.push(phrase === 'N/A' || phrase === 'None' ? null : phrase);
    } else if (member && (m = line.match(/^ {2}\.\.\. and (\d+) more$/))) member.more = num(m[1]);
  }

  const unclustered: Extracted['unclustered'] = [];
  const cumulativeStart = lines.findIndex((l) => l.startsWith('| Top N Clusters'));
  for (const line of lines.slice(coverageAt, cumulativeStart)) {
    const m = line.match(/^- (.*) \((\d+) perturbations\)$/);
    if (m) unclustered.push({ name: m[1] as string, perturbations: num(m[2]) });
  }
  const cumulative = tableRows(lines, cumulativeStart).map((line) => {
    const [topN, categories, perturbations, percent] = splitReferenceRow(line, 3) as string[];
    return { topN: num(topN), categories: num(categories), perturbations: num(perturbations), percent: percent as string };
  });
  return { totals, table, details, unclustered, cumulative };
}

function parseOurs(md: string): Extracted {
  const lines = md.split('\n');
  const totals = {
    categories: num(must(md.match(/^- Categories in the taxonomy: (\d+)$/m), 'categories')[1]),
    perturbations: num(must(md.match(/^- Perturbations \(examples over those categories\): (\d+)$/m), 'perturbations')[1]),
    clusters: num(must(md.match(/^- Clusters: (\d+)$/m), 'clusters')[1]),
  };
  const tableStart = lines.findIndex((l) => l.startsWith('| Rank | Cluster | Categories |'));
  const table = tableRows(lines, tableStart).map((line) => {
    const [rank, name, categories, perturbations, percent] = splitOurRow(line) as string[];
    return { rank: num(rank), name: name as string, categories: num(categories), perturbations: num(perturbations), percent: percent as string };
  });

  const details: Detail[] = [];
  const coverageAt = lines.indexOf('## Coverage of categories');
  let member: Member | undefined;
  for (const line of lines.slice(lines.indexOf('## Clusters in detail'), coverageAt)) {
    let m: RegExpMatchArray | null;
    const current = details[details.length - 1];
    if ((m = line.match(/^### (\d+)\. (.*)$/))) {
      details.push({ rank: num(m[1]), name: unescapeMarkdown(m[2] as string), categories: -1, perturbations: -1, percent: '', members: [] });
    } else if (current && (m = line.match(/^- Categories: (\d+)$/))) current.categories = num(m[1]);
    else if (current && (m = line.match(/^- Perturbations: (\d+)$/))) current.perturbations = num(m[1]);
    else if (current && (m = line.match(/^- Share of all perturbations: (.*)$/))) current.percent = m[1] as string;
    else if (current && (m = line.match(/^\*\*(.*)\*\*: (\d+) perturbations?( \(not in the categorization\))?$/))) {
      member = { name: unescapeMarkdown(m[1] as string), perturbations: num(m[2]), phrases: [], more: 0 };
      current.members.push(member);
    } else if (member && (m = line.match(/^\d+\. (?:"(.*)"|(_\(no trigger phrase recorded\)_))$/))) {
      member.phrases.push(m[1] === undefined ? null : unescapeMarkdown(m[1]));
    } else if (member && (m = line.match(/^_\.\.\. and (\d+) more trigger phrases?_$/))) member.more = num(m[1]);
  }

  const unclustered: Extracted['unclustered'] = [];
  const cumulativeStart = lines.findIndex((l) => l.startsWith('| Top clusters'));
  for (const line of lines.slice(coverageAt, cumulativeStart)) {
    const m = line.match(/^- (.*): (\d+) perturbations?$/);
    if (m) unclustered.push({ name: unescapeMarkdown(m[1] as string), perturbations: num(m[2]) });
  }
  const cumulative = tableRows(lines, cumulativeStart).map((line) => {
    const [topN, categories, perturbations, percent] = splitOurRow(line) as string[];
    return { topN: num(topN), categories: num(categories), perturbations: num(perturbations), percent: percent as string };
  });
  return { totals, table, details, unclustered, cumulative };
}

describe.each(CASES)('reference golden: $name', ({ name, maxExamples }) => {
  const categorization = JSON.parse(fixture(`${name}/categorization.json`)) as CategorizationDocument;
  const clusters = JSON.parse(fixture(`${name}/clusters.json`)) as ClustersDocument;
  const reference = parseReference(fixture(`golden/${name}.md`));

  it('the parsed reference report is complete', () => {
    expect(reference.table.length).toBe(reference.totals.clusters);
    expect(reference.details.length).toBe(reference.totals.clusters);
    expect(reference.cumulative.length).toBe(reference.totals.clusters);
    for (const d of reference.details) expect(d.percent).toMatch(/^\d+\.\d%$/);
  });

  it('our rendered report has the same numbers, names, order and percent strings', () => {
    const ours = parseOurs(
      renderMarkdownReport({
        categorization,
        clusters,
        maxExamples,
        files: { clusters: `/somewhere/${name}/clusters.json`, categorization: 'categorization.json' },
      }),
    );
    expect(ours).toEqual(reference);
  });

  it('computeReportStats gives the same numbers', () => {
    const stats = computeReportStats(categorization, clusters);
    expect({
      categories: stats.totalCategories,
      perturbations: stats.totalPerturbations,
      clusters: stats.clusterCount,
    }).toEqual(reference.totals);
    expect(
      stats.clusters.map((c) => ({
        rank: c.rank,
        name: cutName(c.name),
        categories: c.memberEntries,
        perturbations: c.perturbations,
        percent: `${c.percentText}%`,
      })),
    ).toEqual(reference.table);
    expect(
      stats.clusters.map((c) => ({
        name: c.name,
        members: c.members.map((m) => [m.name, m.perturbations]),
      })),
    ).toEqual(reference.details.map((d) => ({ name: d.name, members: d.members.map((m) => [m.name, m.perturbations]) })));
    expect(stats.unclustered).toEqual(reference.unclustered);
    expect(
      stats.cumulative.map((r) => ({
        topN: r.topN,
        categories: r.memberEntries,
        perturbations: r.perturbations,
        percent: `${r.percentText}%`,
      })),
    ).toEqual(reference.cumulative);
  });

  it('referenceReportStatistics gives the same numbers as plain JSON', () => {
    const json = referenceReportStatistics(categorization, clusters);
    expect(JSON.parse(JSON.stringify(json))).toEqual(json);
    expect([json.total_categories, json.total_perturbations, json.cluster_count]).toEqual([
      reference.totals.categories,
      reference.totals.perturbations,
      reference.totals.clusters,
    ]);
    expect(
      json.clusters.map((c) => ({
        rank: c.rank,
        name: c.table_name,
        categories: c.member_entries,
        perturbations: c.perturbations,
        percent: `${c.percent_text}%`,
      })),
    ).toEqual(reference.table);
    expect(json.clusters.map((c) => c.members.map((m) => [m.category_name, m.perturbations]))).toEqual(
      reference.details.map((d) => d.members.map((m) => [m.name, m.perturbations])),
    );
    expect(json.unclustered.map((u) => ({ name: u.category_name, perturbations: u.perturbations }))).toEqual(reference.unclustered);
    expect(
      json.cumulative.map((r) => ({
        topN: r.top_n,
        categories: r.member_entries,
        perturbations: r.perturbations,
        percent: `${r.percent_text}%`,
      })),
    ).toEqual(reference.cumulative);
  });
});
