// "What changed" between a committed baseline (the analysis' taxonomy lock) and
// the current report: which runs came and went, which categories appeared,
// disappeared, grew or shrank, and which clusters gained or lost members.
// Categories and clusters are matched by id (the pipeline derives ids from
// names, so a renamed category shows up as one removed and one new). A baseline
// without cluster information (a taxonomy lock has none) leaves the clusters
// uncompared, and says so. The baseline is never a previous output of the
// report: a cached report must be right for everyone who shares the cache.
// Pure and deterministic: every list is sorted.

import { escapeMarkdown } from './markdown.ts';
import { compareCodePoints } from '../util/order.ts';

export interface SnapshotCategory {
  category_id: string;
  category_name: string;
  /** Number of examples (perturbations) in the category. */
  size: number;
}

export interface SnapshotCluster {
  cluster_id: string;
  cluster_name: string;
  /** Category ids of the members. */
  members: string[];
}

/** What a report shows, in the terms a comparison needs. */
export interface ReportSnapshot {
  /** Run ids in the report. */
  runs: string[];
  categories: SnapshotCategory[];
  /** null: no cluster information (a taxonomy lock has none), so clusters are not compared. */
  clusters: SnapshotCluster[] | null;
}

/** What the report is compared with: a snapshot, and where it was read from. */
export interface ReportBaseline extends ReportSnapshot {
  /** What the baseline is, as the section names it, e.g. "the taxonomy lock". */
  label: string;
  /** Workspace-relative file it was read from (posix), e.g. "analyses/a/taxonomy.lock.json". */
  source: string;
  /** Category id of each run, where the baseline knows it (a taxonomy lock does): runs that moved are listed. */
  run_categories?: Readonly<Record<string, string>>;
}

/** A run in another category than the baseline's. */
export interface MovedRun {
  run_id: string;
  from: CategoryRef;
  to: CategoryRef;
}

export interface CategoryRef {
  category_id: string;
  category_name: string;
}

export interface CategorySizeChange {
  category_id: string;
  category_name: string;
  before: number;
  after: number;
}

export interface ClusterRef {
  cluster_id: string;
  cluster_name: string;
  /** Members, resolved to names (against the snapshot the cluster comes from). */
  members: CategoryRef[];
}

export interface ClusterMembershipChange {
  cluster_id: string;
  cluster_name: string;
  /** The name in the previous report when it differs, else null. */
  previous_name: string | null;
  /** Members that are new in this cluster (names from the current report). */
  added_members: CategoryRef[];
  /** Members that left this cluster (names from the previous report). */
  removed_members: CategoryRef[];
}

export interface ChangeTotals {
  runs: number;
  categories: number;
  /** null when that side has no cluster information. */
  clusters: number | null;
}

/** Cluster lists sorted by name, then id. */
export interface ClusterChanges {
  new_clusters: ClusterRef[];
  removed_clusters: ClusterRef[];
  changed_clusters: ClusterMembershipChange[];
}

export interface ChangeSummary {
  /** What was compared with: the baseline's label and file. */
  baseline: { label: string; source: string };
  before: ChangeTotals;
  after: ChangeTotals;
  /** Run ids, code-point order. */
  new_runs: string[];
  removed_runs: string[];
  /** Runs in both whose category differs (when the baseline knows each run's category), by run id. */
  moved_runs: MovedRun[];
  /** Category lists sorted by name, then id. */
  new_categories: SnapshotCategory[];
  removed_categories: SnapshotCategory[];
  /** Largest growth first, then by name, then id. */
  grown_categories: CategorySizeChange[];
  /** Largest loss first, then by name, then id. */
  shrunk_categories: CategorySizeChange[];
  /** null when either side has no cluster information: clusters are not compared. */
  clusters: ClusterChanges | null;
}

function byNameThenId<T>(name: (t: T) => string, id: (t: T) => string): (a: T, b: T) => number {
  return (a, b) => compareCodePoints(name(a), name(b)) || compareCodePoints(id(a), id(b));
}

const categoryOrder = byNameThenId<CategoryRef>(
  (c) => c.category_name,
  (c) => c.category_id,
);
const clusterOrder = byNameThenId<{ cluster_id: string; cluster_name: string }>(
  (c) => c.cluster_name,
  (c) => c.cluster_id,
);

/** Last entry wins for repeated ids, as for repeated names in the report statistics. */
function indexBy<T>(items: readonly T[], key: (t: T) => string): Map<string, T> {
  const map = new Map<string, T>();
  for (const item of items) map.set(key(item), item);
  return map;
}

function distinctSorted(ids: Iterable<string>): string[] {
  return [...new Set(ids)].sort(compareCodePoints);
}

function resolve(ids: Iterable<string>, categories: Map<string, SnapshotCategory>): CategoryRef[] {
  return distinctSorted(ids)
    .map((id) => ({ category_id: id, category_name: categories.get(id)?.category_name ?? id }))
    .sort(categoryOrder);
}

function totals(s: ReportSnapshot): ChangeTotals {
  return {
    runs: new Set(s.runs).size,
    categories: new Set(s.categories.map((c) => c.category_id)).size,
    clusters: s.clusters === null ? null : new Set(s.clusters.map((c) => c.cluster_id)).size,
  };
}

/**
 * Differences between the baseline and the current snapshot; null when there
 * is no baseline. An unchanged pair gives a summary whose lists are all empty
 * (see `hasChanges`). When either side has no clusters, `clusters` is null.
 */
export function summarizeChanges(baseline: ReportBaseline | null, current: ReportSnapshot, currentRunCategories: ReadonlyMap<string, string> = new Map()): ChangeSummary | null {
  if (baseline === null) return null;
  const previous = baseline;

  const prevRuns = new Set(previous.runs);
  const curRuns = new Set(current.runs);
  const new_runs = distinctSorted(current.runs.filter((r) => !prevRuns.has(r)));
  const removed_runs = distinctSorted(previous.runs.filter((r) => !curRuns.has(r)));

  const prevCats = indexBy(previous.categories, (c) => c.category_id);
  const curCats = indexBy(current.categories, (c) => c.category_id);
  const copy = (c: SnapshotCategory): SnapshotCategory => ({
    category_id: c.category_id,
    category_name: c.category_name,
    size: c.size,
  });
  const new_categories = [...curCats.values()].filter((c) => !prevCats.has(c.category_id)).map(copy).sort(categoryOrder);
  const removed_categories = [...prevCats.values()]
    .filter((c) => !curCats.has(c.category_id))
    .map(copy)
    .sort(categoryOrder);

  const moved_runs: MovedRun[] = [];
  const ref = (id: string, cats: Map<string, SnapshotCategory>): CategoryRef => ({ category_id: id, category_name: cats.get(id)?.category_name ?? id });
  for (const [run, was] of Object.entries(previous.run_categories ?? {})) {
    const now = currentRunCategories.get(run);
    if (now !== undefined && now !== was) moved_runs.push({ run_id: run, from: ref(was, prevCats), to: ref(now, curCats) });
  }
  moved_runs.sort((a, b) => compareCodePoints(a.run_id, b.run_id));

  const grown_categories: CategorySizeChange[] = [];
  const shrunk_categories: CategorySizeChange[] = [];
  for (const cur of curCats.values()) {
    const prev = prevCats.get(cur.category_id);
    if (!prev || prev.size === cur.size) continue;
    const change = { category_id: cur.category_id, category_name: cur.category_name, before: prev.size, after: cur.size };
    (cur.size > prev.size ? grown_categories : shrunk_categories).push(change);
  }
  grown_categories.sort((a, b) => b.after - b.before - (a.after - a.before) || categoryOrder(a, b));
  shrunk_categories.sort((a, b) => b.before - b.after - (a.before - a.after) || categoryOrder(a, b));

  return {
    baseline: { label: baseline.label, source: baseline.source },
    before: totals(previous),
    after: totals(current),
    new_runs,
    removed_runs,
    moved_runs,
    new_categories,
    removed_categories,
    grown_categories,
    shrunk_categories,
    clusters: previous.clusters === null || current.clusters === null ? null : clusterChanges(previous.clusters, current.clusters, prevCats, curCats),
  };
}

function clusterChanges(
  previous: SnapshotCluster[],
  current: SnapshotCluster[],
  prevCats: Map<string, SnapshotCategory>,
  curCats: Map<string, SnapshotCategory>,
): ClusterChanges {
  const prevClusters = indexBy(previous, (c) => c.cluster_id);
  const curClusters = indexBy(current, (c) => c.cluster_id);
  const clusterRef = (c: SnapshotCluster, cats: Map<string, SnapshotCategory>): ClusterRef => ({
    cluster_id: c.cluster_id,
    cluster_name: c.cluster_name,
    members: resolve(c.members, cats),
  });
  const new_clusters = [...curClusters.values()]
    .filter((c) => !prevClusters.has(c.cluster_id))
    .map((c) => clusterRef(c, curCats))
    .sort(clusterOrder);
  const removed_clusters = [...prevClusters.values()]
    .filter((c) => !curClusters.has(c.cluster_id))
    .map((c) => clusterRef(c, prevCats))
    .sort(clusterOrder);

  const changed_clusters: ClusterMembershipChange[] = [];
  for (const cur of curClusters.values()) {
    const prev = prevClusters.get(cur.cluster_id);
    if (!prev) continue;
    const before = new Set(prev.members);
    const after = new Set(cur.members);
    const added = resolve(
      [...after].filter((m) => !before.has(m)),
      curCats,
    );
    const removed = resolve(
      [...before].filter((m) => !after.has(m)),
      prevCats,
    );
    const renamed = prev.cluster_name !== cur.cluster_name;
    if (!added.length && !removed.length && !renamed) continue;
    changed_clusters.push({
      cluster_id: cur.cluster_id,
      cluster_name: cur.cluster_name,
      previous_name: renamed ? prev.cluster_name : null,
      added_members: added,
      removed_members: removed,
    });
  }
  changed_clusters.sort(clusterOrder);
  return { new_clusters, removed_clusters, changed_clusters };
}

/** Whether any list of the summary is non-empty. */
export function hasChanges(changes: ChangeSummary): boolean {
  return (
    changes.new_runs.length > 0 ||
    changes.removed_runs.length > 0 ||
    changes.moved_runs.length > 0 ||
    changes.new_categories.length > 0 ||
    changes.removed_categories.length > 0 ||
    changes.grown_categories.length > 0 ||
    changes.shrunk_categories.length > 0 ||
    (changes.clusters !== null &&
      (changes.clusters.new_clusters.length > 0 || changes.clusters.removed_clusters.length > 0 || changes.clusters.changed_clusters.length > 0))
  );
}

// ---------------------------------------------------------------------------
// Markdown

export interface ChangesMarkdownOptions {
  /** Longest list of run ids printed per heading before "... and N more" (default 50). */
  maxRuns?: number;
  /** Heading level of the section (default 2). */
  level?: number;
}

function signed(n: number): string {
  return n > 0 ? `+${n}` : n < 0 ? `\u2212${-n}` : '\u00b10';
}

function countLine(label: string, before: number, after: number): string {
  return `- ${label}: ${before} \u2192 ${after} (${signed(after - before)})`;
}

/** At most `max` lines, then "... and N more". */
function capped(lines: string[], max: number): string[] {
  const shown = lines.slice(0, max);
  if (lines.length > max) shown.push(`- _... and ${lines.length - max} more_`);
  return shown;
}

function runList(ids: string[], max: number): string[] {
  return capped(ids.map((id) => `- ${escapeMarkdown(id)}`), max);
}

function movedList(moved: MovedRun[], max: number): string[] {
  return capped(moved.map((m) => `- ${escapeMarkdown(m.run_id)}: ${escapeMarkdown(m.from.category_name)} \u2192 ${escapeMarkdown(m.to.category_name)}`), max);
}

function memberNames(refs: CategoryRef[]): string {
  return refs.map((r) => escapeMarkdown(r.category_name)).join('; ');
}

/** The line that says what the report is compared with. */
export function comparedWith(changes: ChangeSummary): string {
  return `Compared with ${changes.baseline.label} (${changes.baseline.source}).`;
}

/** Why clusters are not compared (when `changes.clusters` is null). */
export function clustersNotCompared(changes: ChangeSummary): string {
  const missing = changes.before.clusters === null ? changes.baseline.label : 'this report';
  return `Clusters are not compared: ${missing} has no cluster information.`;
}

/** The sentence for a comparison that found no difference. */
export function nothingChanged(changes: ChangeSummary): string {
  return changes.clusters === null
    ? `Nothing changed: the same runs in the same categories as ${changes.baseline.label}.`
    : `Nothing changed: the same runs in the same categories, and the same clusters, as ${changes.baseline.label}.`;
}

/** The "What changed" section of the Markdown report; ends with a single newline. */
export function renderChangesMarkdown(changes: ChangeSummary, options: ChangesMarkdownOptions = {}): string {
  const maxRuns = options.maxRuns ?? 50;
  const level = options.level ?? 2;
  if (!Number.isSafeInteger(maxRuns) || maxRuns < 0) throw new RangeError(`maxRuns must be a non-negative integer`);
  if (!Number.isSafeInteger(level) || level < 1 || level > 5) throw new RangeError(`level must be 1..5`);
  const h = '#'.repeat(level);
  const sub = `${h}#`;
  const out: string[] = [`${h} What changed`, '', escapeMarkdown(comparedWith(changes)), ''];
  out.push(countLine('Runs', changes.before.runs, changes.after.runs), countLine('Categories', changes.before.categories, changes.after.categories));
  const clusters = changes.clusters;
  if (clusters === null || changes.before.clusters === null || changes.after.clusters === null) {
    out.push(`- Clusters: ${changes.after.clusters ?? 'unknown'} now, not compared`);
  } else {
    out.push(countLine('Clusters', changes.before.clusters, changes.after.clusters));
  }
  out.push('');
  if (!hasChanges(changes)) {
    out.push(escapeMarkdown(nothingChanged(changes)));
    if (clusters === null) out.push('', escapeMarkdown(clustersNotCompared(changes)));
    return `${out.join('\n')}\n`;
  }
  const section = (title: string, n: number, body: string[]): void => {
    if (n === 0) return;
    out.push(`${sub} ${title} (${n})`, '', ...body, '');
  };
  section('New runs', changes.new_runs.length, runList(changes.new_runs, maxRuns));
  section('Removed runs', changes.removed_runs.length, runList(changes.removed_runs, maxRuns));
  section('Runs in another category', changes.moved_runs.length, movedList(changes.moved_runs, maxRuns));
  section(
    'New categories',
    changes.new_categories.length,
    changes.new_categories.map((c) => `- ${escapeMarkdown(c.category_name)}: ${c.size}`),
  );
  section(
    'Removed categories',
    changes.removed_categories.length,
    changes.removed_categories.map((c) => `- ${escapeMarkdown(c.category_name)}: had ${c.size}`),
  );
  section(
    'Categories that grew',
    changes.grown_categories.length,
    changes.grown_categories.map((c) => `- ${escapeMarkdown(c.category_name)}: ${c.before} \u2192 ${c.after} (${signed(c.after - c.before)})`),
  );
  section(
    'Categories that shrank',
    changes.shrunk_categories.length,
    changes.shrunk_categories.map((c) => `- ${escapeMarkdown(c.category_name)}: ${c.before} \u2192 ${c.after} (${signed(c.after - c.before)})`),
  );
  if (clusters === null) {
    out.push(escapeMarkdown(clustersNotCompared(changes)), '');
  } else {
    section(
      'New clusters',
      clusters.new_clusters.length,
      clusters.new_clusters.map((c) => `- ${escapeMarkdown(c.cluster_name)}${c.members.length ? `: ${memberNames(c.members)}` : ''}`),
    );
    section(
      'Removed clusters',
      clusters.removed_clusters.length,
      clusters.removed_clusters.map((c) => `- ${escapeMarkdown(c.cluster_name)}${c.members.length ? `: had ${memberNames(c.members)}` : ''}`),
    );
    section(
      'Clusters with changed membership',
      clusters.changed_clusters.length,
      clusters.changed_clusters.map((c) => {
        const parts: string[] = [];
        if (c.previous_name !== null) parts.push(`renamed from ${escapeMarkdown(c.previous_name)}`);
        if (c.added_members.length) parts.push(`gained ${memberNames(c.added_members)}`);
        if (c.removed_members.length) parts.push(`lost ${memberNames(c.removed_members)}`);
        return `- ${escapeMarkdown(c.cluster_name)}: ${parts.join('; ')}`;
      }),
    );
  }
  while (out.length && out[out.length - 1] === '') out.pop();
  return `${out.join('\n')}\n`;
}
