// The cluster report as Markdown. Same sections and the same numbers as the
// reference report (see stats.ts for the counting rules), with our own wording,
// and three deliberate differences:
// - no clock: whatever generation info the caller passes is printed, nothing else;
// - every piece of text that comes from data (names, definitions, phrases) is
//   escaped, so a `|`, `*`, `<` or newline in a category name cannot break a table
//   or inject markup, and a NUL, ESC, U+2028 or bidi override shows as its
//   `\uXXXX` escape instead of hiding in the text;
// - optional sections the reference does not have: provenance, coverage of runs,
//   and a per-agent slice.

import type { CategoryExample } from '../formats.ts';
import { pct } from '../util/pyformat.ts';
import { plural } from '../util/words.ts';
import { computeReportStats, cutName, percentOf } from './stats.ts';
import { compareCodePoints } from '../util/order.ts';
import { charEscape, HIDDEN_CHARS, showHidden } from '../util/controls.ts';
import { fallbackClusters } from './quality/placement.ts';
import type { ClustersForPlacement } from './quality/placement.ts';
import type { CategorizationDocument, ClusterStat, ClustersDocument, MemberStat, ReportStats } from './stats.ts';

/** A value shown in provenance lines. Arrays are shown comma-separated. */
export type ProvenanceValue = string | number | boolean | null | string[];

/** How one stage's output was produced. Every field is optional except `stage`. */
export interface StageProvenance {
  /** Stage name, e.g. 'summarize', 'categorize', 'cluster'. */
  stage: string;
  /** 'llm', 'offline', ... ; 'offline' marks the deterministic lexical analyzer. */
  analyzer?: string;
  /** Provider id, e.g. 'openai', 'anthropic_bedrock', 'offline'. */
  provider?: string;
  model?: string;
  /** Prompt template name -> content hash. */
  prompts?: Record<string, string>;
  /** Any other settings worth showing (temperature, batch sizes, cost, ...). */
  settings?: Record<string, ProvenanceValue>;
}

export interface ReportProvenance {
  /** Shown as given; the renderer never reads a clock. */
  generated_at?: string;
  /** Name of the analysis (pipeline.yaml entry). */
  analysis?: string;
  stages?: StageProvenance[];
  /** Task filters applied (domain, agent, baseline filter file, ...). */
  filters?: Record<string, ProvenanceValue>;
  /** Free-form lines, printed as a list. */
  notes?: string[];
}

export interface RunFailure {
  run_id: string;
  stage: string;
  reason: string;
}

export interface UnassignedRun {
  run_id: string;
  /** Stage at which the run ended up without a category or cluster. */
  stage?: string;
  reason?: string;
}

/** How the runs of the task list went through the stages. */
/** A run found in the tree but not selected, or another problem met in the tree, from the task-list ledger. */
export interface TreeProblem {
  file: string;
  field?: string;
  reason: string;
}

export interface RunCoverage {
  /** Runs found in the tree: the task list plus those dropped at selection (absent in reports imported from reference files). */
  found_in_tree?: number;
  /** Runs dropped at selection (a run file that cannot be read or has no valid success), with the file, the field and the reason. */
  dropped?: TreeProblem[];
  /** Other problems met in the tree or the filter files (not runs). */
  tree_problems?: TreeProblem[];
  in_task_list: number;
  summarized: number;
  categorized: number;
  clustered: number;
  failed: RunFailure[];
  unassigned?: UnassignedRun[];
}

/** One agent's share of the analysis. */
export interface AgentSlice {
  /** Runs of this agent in the task list. */
  runs: number;
  /** Category name -> number of this agent's perturbations in that category. */
  categories?: Record<string, number>;
}

export interface ReportInput {
  categorization: CategorizationDocument;
  clusters: ClustersDocument;
  /** Trigger phrases shown per category (default 3, as the reference). */
  maxExamples?: number;
  provenance?: ReportProvenance;
  coverage?: RunCoverage;
  byAgent?: Record<string, AgentSlice>;
  /** Paths of the input files; only their base names are printed. */
  files?: { clusters: string; categorization: string };
}

export const DEFAULT_MAX_EXAMPLES = 3;

// ---------------------------------------------------------------------------
// Escaping

const INLINE_SPECIALS = /[\\`*_[\]<>|#~&$]/g;

/** Newlines become single spaces (text is always inline here). */
function oneLine(text: string): string {
  return text.replace(/\r\n|[\r\n]/g, ' ');
}

/**
 * Escape data text for inline Markdown (paragraphs, headings, list items and
 * table cells alike): line breaks become spaces, every character that could
 * start markup, an HTML tag or entity, a table cell boundary, math or a heading's
 * closing sequence gets a backslash, and a control, separator or bidi character
 * (util/controls.ts) is shown as its escape in a code span: NUL as `\u0000`.
 */
export function escapeMarkdown(text: string): string {
  return oneLine(text)
    .replace(INLINE_SPECIALS, (ch) => `\\${ch}`)
    .replace(HIDDEN_CHARS, (ch) => `\`${charEscape(ch)}\``);
}

/** Undo `escapeMarkdown` (line breaks stay spaces). For tests and round trips. */
export function unescapeMarkdown(text: string): string {
  return text.replace(/\\([\\`*_[\]<>|#~&$])|`\\u([0-9a-f]{4})`/g, (_all, special: string | undefined, hex: string | undefined) =>
    special ?? String.fromCharCode(parseInt(hex as string, 16)),
  );
}

/** A code span that survives any content; `inTable` also protects `|`. */
export function codeSpan(text: string, inTable = false): string {
  let body = showHidden(oneLine(text));
  let longest = 0;
  for (const run of body.match(/`+/g) ?? []) longest = Math.max(longest, run.length);
  const fence = '`'.repeat(longest + 1);
  if (body.startsWith('`') || body.endsWith('`') || (body.startsWith(' ') && body.endsWith(' ') && body.trim())) {
    body = ` ${body} `;
  }
  if (inTable) body = body.replace(/\|/g, '\\|');
  return `${fence}${body}${fence}`;
}

function baseName(path: string): string {
  const parts = path.split(/[\\/]/);
  return parts[parts.length - 1] || path;
}

function showValue(value: ProvenanceValue): string {
  if (Array.isArray(value)) return value.length ? value.map((v) => escapeMarkdown(v)).join(', ') : '(none)';
  if (value === null) return '(none)';
  return escapeMarkdown(String(value));
}

function table(header: string[], align: ('l' | 'r')[], rows: string[][]): string[] {
  const line = (cells: string[]): string => `| ${cells.join(' | ')} |`;
  return [line(header), line(align.map((a) => (a === 'r' ? '---:' : '---'))), ...rows.map(line)];
}

// ---------------------------------------------------------------------------
// Sections

function isOffline(stage: StageProvenance): boolean {
  return stage.provider?.toLowerCase() === 'offline' || stage.analyzer?.toLowerCase() === 'offline';
}

function renderGeneration(input: ReportInput): string[] {
  const out: string[] = [];
  const p = input.provenance;
  const facts: string[] = [];
  if (p?.analysis !== undefined) facts.push(`- Analysis: ${escapeMarkdown(p.analysis)}`);
  if (p?.generated_at !== undefined) facts.push(`- Generated: ${escapeMarkdown(p.generated_at)}`);
  if (input.files) {
    facts.push(`- Clusters file: ${codeSpan(baseName(input.files.clusters))}`);
    facts.push(`- Categorization file: ${codeSpan(baseName(input.files.categorization))}`);
  }
  const stages = p?.stages ?? [];
  const filters = Object.entries(p?.filters ?? {});
  const notes = p?.notes ?? [];
  if (!facts.length && !stages.length && !filters.length && !notes.length) return out;

  out.push('## How this report was produced', '');
  if (facts.length) out.push(...facts, '');

  const offline = stages.filter(isOffline).map((s) => s.stage);
  if (offline.length) {
    out.push(
      `> **Offline analyzer:** the ${offline.map((s) => escapeMarkdown(s)).join(', ')} ` +
        `${offline.length === 1 ? 'stage was' : 'stages were'} produced by the deterministic lexical analyzer, ` +
        'not by a language model. It groups runs by the wording the perturbation added (a word diff matched ' +
        'against a lexicon of mechanism cues, TF-IDF and agglomerative clustering): a fast first pass over the data, ' +
        'not an explanation of why the agent acted. Switch the provider in pipeline.yaml for an LLM analysis.',
      '',
    );
  }

  if (stages.length) {
    const rows = stages.map((s) => [
      escapeMarkdown(s.stage),
      escapeMarkdown(s.analyzer ?? '-'),
      escapeMarkdown(s.provider ?? '-'),
      escapeMarkdown(s.model ?? '-'),
      Object.entries(s.prompts ?? {})
        .map(([name, hash]) => `${escapeMarkdown(name)}: ${codeSpan(hash, true)}`)
        .join('<br>') || '-',
      Object.entries(s.settings ?? {})
        .map(([key, value]) => `${escapeMarkdown(key)}: ${showValue(value)}`)
        .join('<br>') || '-',
    ]);
    out.push(...table(['Stage', 'Analyzer', 'Provider', 'Model', 'Prompts', 'Settings'], ['l', 'l', 'l', 'l', 'l', 'l'], rows), '');
  }
  if (filters.length) {
    out.push('Filters applied to the runs:', '');
    for (const [key, value] of filters) out.push(`- ${escapeMarkdown(key)}: ${showValue(value)}`);
    out.push('');
  }
  if (notes.length) {
    out.push('Notes:', '');
    for (const note of notes) out.push(`- ${escapeMarkdown(note)}`);
    out.push('');
  }
  return out;
}

/** Share of trigger phrases found in their run's perturbed instruction, when the categorization records it. */
export function verifiedShare(categorization: CategorizationDocument): { verified: number; total: number } | null {
  let verified = 0;
  let total = 0;
  for (const c of categorization.categorization?.categories ?? []) {
    for (const e of c.examples ?? []) {
      const flag = (e as unknown as Record<string, unknown>)['trigger_phrase_verified'];
      if (typeof flag !== 'boolean') continue;
      total += 1;
      if (flag) verified += 1;
    }
  }
  return total > 0 ? { verified, total } : null;
}

function renderOverall(stats: ReportStats, categorization: CategorizationDocument): string[] {
  const share = verifiedShare(categorization);
  const out = [
    '## Overall statistics',
    '',
    `- Categories in the taxonomy: ${stats.totalCategories}`,
    `- Perturbations (examples over those categories): ${stats.totalPerturbations}`,
    `- Clusters: ${stats.clusterCount}`,
    ...(share
      ? [`- Trigger phrases found verbatim in their run's perturbed instruction: ${share.verified} of ${share.total} (${pct(percentOf(share.verified, share.total))}); the others are marked below`]
      : []),
    '',
  ];
  const warnings: string[] = [];
  if (stats.duplicateCategoryNames.length) {
    warnings.push(
      `- Category names that occur more than once in the categorization; only the last entry of each is counted: ${stats.duplicateCategoryNames
        .map((n) => escapeMarkdown(n))
        .join('; ')}`,
    );
  }
  if (stats.unknownMemberNames.length) {
    warnings.push(
      `- Cluster members that name no category (counted as members with 0 perturbations): ${stats.unknownMemberNames
        .map((n) => escapeMarkdown(n))
        .join('; ')}`,
    );
  }
  if (stats.multiplyClustered.length) {
    warnings.push(
      `- Categories listed more than once across clusters (counted every time, so shares can add up to more than 100%): ${stats.multiplyClustered
        .map((m) => `${escapeMarkdown(m.name)} (${m.clusters.map((c) => escapeMarkdown(c)).join('; ')})`)
        .join('; ')}`,
    );
  }
  if (warnings.length) out.push('Data issues:', '', ...warnings, '');
  return out;
}

/** " (fallback)" after a cluster the LLM clusterer formed by fallback around a category the model never placed. */
const fallbackMark = (fallback: Set<string>, name: string) => (fallback.has(name) ? ' (fallback)' : '');

function renderRanking(stats: ReportStats, fallback: Set<string>): string[] {
  const rows = stats.clusters.map((c) => [
    String(c.rank),
    escapeMarkdown(cutName(c.name)) + fallbackMark(fallback, c.name),
    String(c.memberEntries),
    String(c.perturbations),
    pct(c.percent),
  ]);
  return [
    '## Clusters ranked by perturbations',
    '',
    ...table(['Rank', 'Cluster', 'Categories', 'Perturbations', 'Share'], ['r', 'l', 'r', 'r', 'r'], rows),
    '',
  ];
}

function triggerText(example: CategoryExample | unknown): string {
  const record = example !== null && typeof example === 'object' ? (example as Record<string, unknown>) : {};
  const phrase = record['trigger_phrase'];
  if (phrase === undefined || phrase === null) return '_(no trigger phrase recorded)_';
  const unverified = record['trigger_phrase_verified'] === false ? ' _(not found in the perturbed instruction)_' : '';
  return `"${escapeMarkdown(typeof phrase === 'string' ? phrase : JSON.stringify(phrase))}"${unverified}`;
}

function renderMember(member: MemberStat, maxExamples: number): string[] {
  const unknown = member.known ? '' : ' (not in the categorization)';
  const out = [`**${escapeMarkdown(member.name)}**: ${plural(member.perturbations, 'perturbation', 'perturbations')}${unknown}`, ''];
  if (member.justification) out.push(`*Why it belongs here:* ${escapeMarkdown(member.justification)}`, '');
  const examples = member.examples;
  if (examples.length) {
    const shown = examples.slice(0, maxExamples);
    if (shown.length) {
      out.push('*Trigger phrases:*', '');
      shown.forEach((ex, i) => out.push(`${i + 1}. ${triggerText(ex)}`));
      out.push('');
    }
    const hidden = examples.length - shown.length;
    if (hidden > 0) out.push(`_... and ${hidden} more trigger ${hidden === 1 ? 'phrase' : 'phrases'}_`, '');
  }
  return out;
}

function renderDetails(stats: ReportStats, maxExamples: number, fallback: Set<string>): string[] {
  const out = ['## Clusters in detail', ''];
  for (const c of stats.clusters) {
    out.push(`### ${c.rank}. ${escapeMarkdown(c.name)}${fallbackMark(fallback, c.name)}`, '');
    if (fallback.has(c.name)) out.push('_Placed by fallback: the cluster model did not place this category, so it stands alone (see Placement in clusters)._', '');
    out.push(`**Definition:** ${escapeMarkdown(c.definition)}`, '');
    out.push(`**Anchor phrases:** ${escapeMarkdown(c.anchorPhrases)}`, '');
    out.push(
      `- Categories: ${c.memberEntries}`,
      `- Perturbations: ${c.perturbations}`,
      `- Share of all perturbations: ${pct(c.percent)}`,
      '',
    );
    out.push('#### Categories in this cluster, largest first', '');
    if (!c.members.length) out.push('_This cluster lists no categories._', '');
    for (const member of c.members) out.push(...renderMember(member, maxExamples));
  }
  return out;
}

function renderCategoryCoverage(stats: ReportStats): string[] {
  const out = ['## Coverage of categories', ''];
  if (stats.unclustered.length) {
    out.push(`Categories that no cluster lists (${stats.unclustered.length}):`, '');
    for (const u of stats.unclustered) {
      out.push(`- ${escapeMarkdown(u.name)}: ${plural(u.perturbations, 'perturbation', 'perturbations')}`);
    }
    out.push('');
  } else {
    out.push('Every category is listed by at least one cluster.', '');
  }
  out.push('### Cumulative coverage', '');
  if (stats.totalPerturbations > 0 && stats.cumulative.some((r) => r.percent > 100)) {
    out.push('Some categories are counted in more than one cluster, so the running share passes 100%.', '');
  }
  const rows = stats.cumulative.map((r) => [String(r.topN), String(r.memberEntries), String(r.perturbations), pct(r.percent)]);
  out.push(
    ...table(['Top clusters', 'Categories', 'Perturbations', 'Cumulative share'], ['r', 'r', 'r', 'r'], rows),
    '',
  );
  return out;
}

function renderRunCoverage(coverage: RunCoverage): string[] {
  const total = coverage.in_task_list;
  const share = (n: number): string => (total > 0 ? pct(percentOf(n, total)) : '-');
  const out = ['## Coverage of runs', ''];
  out.push(
    ...table(
      ['Step', 'Runs', 'Share of task list'],
      ['l', 'r', 'r'],
      [
        ...(coverage.found_in_tree !== undefined
          ? [['Found in the tree', String(coverage.found_in_tree), '-'], ['Dropped at selection', String(coverage.dropped?.length ?? 0), '-']]
          : []),
        ['In the task list', String(total), share(total)],
        ['Summarized', String(coverage.summarized), share(coverage.summarized)],
        ['Categorized', String(coverage.categorized), share(coverage.categorized)],
        ['In a cluster', String(coverage.clustered), share(coverage.clustered)],
        ['Failed', String(coverage.failed.length), share(coverage.failed.length)],
        ...(coverage.unassigned ? [['Unassigned', String(coverage.unassigned.length), share(coverage.unassigned.length)]] : []),
      ],
    ),
    '',
  );
  const accounted = new Set<string>([...coverage.failed.map((f) => f.run_id), ...(coverage.unassigned ?? []).map((u) => u.run_id)]);
  const missing = total - coverage.clustered - accounted.size;
  if (missing > 0) {
    out.push(
      `**Warning:** ${plural(missing, 'run of the task list is', 'runs of the task list are')} neither clustered nor listed as failed or unassigned.`,
      '',
    );
  }
  const problemTable = (title: string, rows: TreeProblem[]): void => {
    out.push(`### ${title} (${rows.length})`, '');
    out.push(
      ...table(
        ['File', 'Field', 'Reason'],
        ['l', 'l', 'l'],
        rows.map((p) => [codeSpan(p.file, true), escapeMarkdown(p.field ?? '-'), escapeMarkdown(p.reason)]),
      ),
      '',
    );
  };
  if (coverage.dropped?.length) problemTable('Runs dropped at selection', coverage.dropped);
  if (coverage.tree_problems?.length) problemTable('Other problems in the tree', coverage.tree_problems);
  if (coverage.failed.length) {
    out.push(`### Failed runs (${coverage.failed.length})`, '');
    out.push(
      ...table(
        ['Run', 'Stage', 'Reason'],
        ['l', 'l', 'l'],
        coverage.failed.map((f) => [codeSpan(f.run_id, true), escapeMarkdown(f.stage), escapeMarkdown(f.reason)]),
      ),
      '',
    );
  }
  if (coverage.unassigned?.length) {
    out.push(`### Unassigned runs (${coverage.unassigned.length})`, '');
    out.push(
      ...table(
        ['Run', 'Stage', 'Reason'],
        ['l', 'l', 'l'],
        coverage.unassigned.map((u) => [
          codeSpan(u.run_id, true),
          escapeMarkdown(u.stage ?? '-'),
          escapeMarkdown(u.reason ?? '-'),
        ]),
      ),
      '',
    );
  }
  return out;
}

function renderByAgent(byAgent: Record<string, AgentSlice>, stats: ReportStats): string[] {
  const agents = Object.keys(byAgent).sort(compareCodePoints);
  if (!agents.length) return [];
  const totalOf = (slice: AgentSlice): number | undefined =>
    slice.categories ? Object.values(slice.categories).reduce((a, b) => a + b, 0) : undefined;
  const out = ['## By agent', ''];
  out.push(
    ...table(
      ['Agent', 'Runs', 'Perturbations', 'Categories'],
      ['l', 'r', 'r', 'r'],
      agents.map((agent) => {
        const slice = byAgent[agent] as AgentSlice;
        const total = totalOf(slice);
        const used = slice.categories ? Object.values(slice.categories).filter((n) => n > 0).length : undefined;
        return [escapeMarkdown(agent), String(slice.runs), total === undefined ? '-' : String(total), used === undefined ? '-' : String(used)];
      }),
    ),
    '',
  );
  const withCategories = agents.filter((agent) => (byAgent[agent] as AgentSlice).categories);
  if (withCategories.length && stats.clusters.length) {
    out.push('### Clusters by agent', '');
    out.push("Each cell: the agent's perturbations in the cluster (share of that agent's perturbations).", '');
    const rows = stats.clusters.map((c: ClusterStat) => {
      const cells = withCategories.map((agent) => {
        const slice = byAgent[agent] as AgentSlice;
        const categories = slice.categories as Record<string, number>;
        let n = 0;
        for (const member of c.members) n += categories[member.name] ?? 0;
        return `${n} (${pct(percentOf(n, totalOf(slice) ?? 0))})`;
      });
      return [String(c.rank), escapeMarkdown(cutName(c.name)), ...cells];
    });
    out.push(
      ...table(
        ['Rank', 'Cluster', ...withCategories.map((a) => escapeMarkdown(a))],
        ['r', 'l', ...withCategories.map((): 'r' => 'r')],
        rows,
      ),
      '',
    );
  }
  return out;
}

// ---------------------------------------------------------------------------

export function renderMarkdownReport(input: ReportInput): string {
  const maxExamples = input.maxExamples ?? DEFAULT_MAX_EXAMPLES;
  if (!Number.isSafeInteger(maxExamples) || maxExamples < 0) {
    throw new RangeError(`maxExamples must be a non-negative integer, got ${String(maxExamples)}`);
  }
  const stats = computeReportStats(input.categorization, input.clusters);
  const doc = input.clusters as unknown as Partial<ClustersForPlacement>;
  const fallback = Array.isArray(doc.clusters) && Array.isArray(doc.unclustered_categories) ? fallbackClusters(doc as ClustersForPlacement) : new Set<string>();
  const lines = [
    '# Cluster report',
    '',
    ...renderGeneration(input),
    ...renderOverall(stats, input.categorization),
    ...renderRanking(stats, fallback),
    ...renderDetails(stats, maxExamples, fallback),
    ...renderCategoryCoverage(stats),
    ...(input.coverage ? renderRunCoverage(input.coverage) : []),
    ...(input.byAgent ? renderByAgent(input.byAgent, stats) : []),
  ];
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  return `${lines.join('\n')}\n`;
}
