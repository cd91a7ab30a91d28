// The quality section of report.md, from the data computeQuality returns.
// Every figure comes with one sentence on what it measures and what it does not.
import { pct } from '../../util/pyformat.ts';
import { plural } from '../../util/words.ts';
import { codeSpan, escapeMarkdown } from '../markdown.ts';
import { MIN_SUMMARY_WORDS } from './summary-health.ts';
import type { Comparison, Dimension, DifferenceRow, PrevalenceRow, QualityData } from './compute.ts';

export const DIMENSION_LABEL: Record<Dimension, string> = {
  all: 'all runs',
  agent: 'agent',
  refinement_model: 'refinement model',
  domain: 'domain',
};

const share = (x: number) => pct(x * 100);
const signed = (x: number) => `${x > 0 ? '+' : x < 0 ? '−' : ''}${pct(Math.abs(x) * 100)}`;
const percentRange = (lower: number, upper: number) => `${pct(lower * 100)}–${pct(upper * 100)}`;
const signedRange = (lower: number, upper: number) => `${signed(lower)} to ${signed(upper)}`;

function table(header: string[], align: ('l' | 'r')[], rows: string[][]): string[] {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(align.map((a) => (a === 'r' ? '---:' : '---'))), ...rows.map(line)];
}

const FALLBACK_MARK = ' (fallback)';

function label(row: { name: string; fallback: boolean }): string {
  return `${escapeMarkdown(row.name)}${row.fallback ? FALLBACK_MARK : ''}`;
}

/** The sentences that say how to read the section's numbers. */
export function methodNotes(q: QualityData): string[] {
  const level = `${Math.round(q.level * 100)}%`;
  return [
    `Shares are of the categorized runs in a slice (all runs, one agent, one refinement model or one domain); a cluster counts a run when the run's category is one of its members.`,
    `Intervals are ${level} Wilson score intervals for a share, and ${level} Newcombe hybrid score intervals (method 10) for the difference of two shares.`,
    'Both treat runs as independent draws; runs of the same task or the same elicitation tree are related, so the real uncertainty is larger than shown.',
    'The figures describe this taxonomy as the categorizer and clusterer drew it; they say nothing about whether its categories are the right ones.',
  ];
}

function prevalenceTables(title: string, rows: PrevalenceRow[], q: QualityData): string[] {
  const out: string[] = [];
  const dims: Dimension[] = ['agent', 'refinement_model', 'domain'];
  for (const d of dims) {
    const columns = q.slices.map((s, i) => ({ s, i })).filter(({ s }) => s.dimension === 'all' || s.dimension === d);
    if (columns.length < 2) continue;
    out.push(`#### ${title} by ${DIMENSION_LABEL[d]}`, '');
    out.push(
      ...table(
        [title === 'Clusters' ? 'Cluster' : 'Category', ...columns.map(({ s }) => `${s.value === null ? 'All runs' : escapeMarkdown(s.value)} (n=${s.runs})`)],
        ['l', ...columns.map((): 'r' => 'r')],
        rows.map((r) => [
          label(r),
          ...columns.map(({ i }) => {
            const p = r.by[i];
            if (!p || p.share === null || p.lower === null || p.upper === null) return '-';
            return `${p.count} · ${share(p.share)} (${percentRange(p.lower, p.upper)})`;
          }),
        ]),
      ),
      '',
    );
  }
  return out;
}

function differenceTable(title: string, rows: DifferenceRow[], c: Comparison): string[] {
  return [
    ...table(
      [title, `${escapeMarkdown(c.a)}`, `${escapeMarkdown(c.b)}`, 'Difference (95% interval)', ''],
      ['l', 'r', 'r', 'r', 'l'],
      rows.map((r) => [
        label(r),
        `${r.count_a} · ${share(r.share_a)}`,
        `${r.count_b} · ${share(r.share_b)}`,
        `${signed(r.difference)} (${signedRange(r.lower, r.upper)})`,
        r.excludes_zero ? '**excludes 0**' : '',
      ]),
    ),
    '',
  ];
}

function renderComparison(c: Comparison): string[] {
  const marked = c.clusters.filter((r) => r.excludes_zero).length + c.categories.filter((r) => r.excludes_zero).length;
  const tests = c.clusters.length + c.categories.length;
  return [
    `#### ${DIMENSION_LABEL[c.dimension].replace(/^./, (x) => x.toUpperCase())}: ${escapeMarkdown(c.a)} (n=${c.runs_a}) vs ${escapeMarkdown(c.b)} (n=${c.runs_b})`,
    '',
    `Share of ${escapeMarkdown(c.a)}'s runs minus share of ${escapeMarkdown(c.b)}'s runs in each cluster and category; ` +
      `${marked} of ${tests} intervals exclude 0; about 1 in 20 would by chance alone if the two had the same shares.`,
    '',
    ...differenceTable('Cluster', c.clusters, c),
    ...differenceTable('Category', c.categories, c),
  ];
}

export function renderQualityMarkdown(q: QualityData): string[] {
  const out: string[] = ['## Quality of the taxonomy', ''];
  out.push(
    'How far the numbers above can be trusted: how certain each share is, where agents and refinement models differ, ' +
      'which summaries and categories look unhealthy, which categories the cluster model did not place, and how stable the categorization is.',
    '',
  );
  for (const note of methodNotes(q)) out.push(`- ${note}`);
  out.push('');

  // Placement
  const p = q.placement;
  out.push('### Placement in clusters', '');
  out.push(
    `- Categories the cluster model placed in a cluster: ${p.placed_by_model} of ${p.categories}, holding ${p.runs_placed_by_model} of ${p.categorized_runs} categorized runs (the "In a cluster" of the coverage counts only these).`,
    `- Categories put in a cluster of their own by fallback, because the model did not place them: ${p.placed_by_fallback.length}${p.placed_by_fallback.length ? '; marked "(fallback)" in the tables of this section' : ''}.`,
    `- Categories in no cluster at all: ${p.in_no_cluster.length}.`,
    '',
  );
  if (p.placed_by_fallback.length) {
    out.push(
      ...table(
        ['Category placed by fallback', 'Runs', 'Its cluster', 'Why'],
        ['l', 'r', 'l', 'l'],
        p.placed_by_fallback.map((f) => [escapeMarkdown(f.category_name), String(f.runs), f.clusters.map((c) => escapeMarkdown(c)).join('; '), escapeMarkdown(f.reason)]),
      ),
      '',
    );
  }
  if (p.in_no_cluster.length) {
    for (const u of p.in_no_cluster) out.push(`- In no cluster: ${escapeMarkdown(u.category_name)} (${plural(u.runs, 'run', 'runs')})`);
    out.push('');
  }

  // Prevalence
  out.push('### Prevalence with 95% intervals', '');
  out.push(
    'Each cell: runs in the cluster or category · their share of the slice\'s categorized runs (95% Wilson interval): the range of shares this count is compatible with, not a range the share will stay in on other data.',
    '',
  );
  out.push(...prevalenceTables('Clusters', q.prevalence.clusters, q));
  out.push(...prevalenceTables('Categories', q.prevalence.categories, q));

  // Comparisons
  out.push('### Comparisons', '');
  if (!q.comparisons.length) {
    out.push('There is only one agent and one refinement model with categorized runs, so nothing is compared.', '');
  } else {
    out.push(
      'For each pair of agents and each pair of refinement models: the difference in share with its 95% Newcombe interval; ' +
        '"excludes 0" marks a difference the data would be unlikely to show if the two had equal shares. It is not corrected for the many comparisons made, and a difference is not a cause.',
      '',
    );
    for (const c of q.comparisons) out.push(...renderComparison(c));
  }

  // Summary health
  const sh = q.summary_health;
  out.push('### Summary health', '');
  out.push(
    `Summaries that are empty, open like a refusal, or are generic (fewer than ${MIN_SUMMARY_WORDS} words, or word for word another run's summary) would be categorized like real ones; ` +
      `${sh.flagged.length} of ${sh.checked} checked summaries are flagged. The checks read the text only, so they find the plain cases, not every poor summary.`,
    '',
  );
  if (sh.flagged.length) {
    out.push(
      ...table(
        ['Run', 'Problem', 'What was seen'],
        ['l', 'l', 'l'],
        sh.flagged.map((f) => [codeSpan(f.run_id, true), f.issue, escapeMarkdown(f.detail)]),
      ),
      '',
    );
  }

  // Category health
  const ch = q.category_health;
  out.push('### Category health', '');
  out.push(
    `Warnings about the taxonomy itself, from counts and word overlap (a cheap proxy for meaning): a prompt to look, not a finding. ` +
      `A pair is a near-duplicate when the Jaccard similarity of the distinctive words of their names, or of their definitions, is at least ${ch.similarity_threshold} (words more than half of the categories use are left out).`,
    '',
  );
  out.push(
    `- Singleton categories (one run each, so their definition rests on a single example): ${ch.singletons.length ? ch.singletons.map((c) => escapeMarkdown(c.name)).join('; ') : 'none'}`,
    `- Near-duplicate pairs (${ch.near_duplicates.length})${ch.near_duplicates.length ? ':' : ': none'}`,
  );
  for (const d of ch.near_duplicates) {
    out.push(`  - ${escapeMarkdown(d.a.name)} / ${escapeMarkdown(d.b.name)} (names ${d.name_similarity}, definitions ${d.definition_similarity})`);
  }
  out.push(`- Generic names or catch-all definitions (${ch.generic_names.length})${ch.generic_names.length ? ':' : ': none'}`);
  for (const g of ch.generic_names) out.push(`  - ${escapeMarkdown(g.name)}: ${escapeMarkdown(g.reason)}`);
  out.push('');

  // Agreement
  out.push('### Agreement', '');
  for (const line of agreementLines(q)) out.push(`- ${line}`);
  out.push('');
  return out;
}

/** One line per agreement figure (more figures are added here as they are measured). */
export function agreementLines(q: QualityData): string[] {
  const s = q.agreement.stability;
  const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(3));
  return [
    s
      ? `Stability: mean adjusted Rand index ${f(s.mean_ari)} (min ${f(s.min_ari)}, max ${f(s.max_ari)}) between the categorization and its re-runs in other batch orders, ${s.partitions} categorizations in all; 1 is the same grouping of runs, about 0 what chance gives. It measures sensitivity to batch order, not correctness.`
      : 'Stability: not measured (run categorize with `--stability N` to re-categorize in N other batch orders and compare the groupings by adjusted Rand index).',
    heldOutLine(q.agreement.held_out),
  ];
}

/** The held-out re-assignment in one line: its figures, then what each measures (categorize/heldout-render.ts says it). */
function heldOutLine(h: QualityData['agreement']['held_out']): string {
  if (h === null) return 'Held-out agreement: not measured (this categorization has no heldout.json).';
  if (!h.enabled) return `Held-out agreement: not measured. ${h.explanations.join(' ')}`;
  const p = (x: number | null) => (x === null ? 'n/a' : `${(x * 100).toFixed(1)}%`);
  return `Held-out agreement: ${p(h.agreement)} (${h.agreed} of ${h.sampled_runs} sampled runs, ${h.categories_sampled} of ${h.categories} categories), ` +
    `Cohen's kappa ${h.kappa === null ? 'n/a' : h.kappa.toFixed(3)}, none fits ${p(h.none_fits_rate)}; re-assigned by ${h.analyzer}. ${h.explanations.join(' ')}`;
}
