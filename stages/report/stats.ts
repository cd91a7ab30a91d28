// The numbers of the cluster report, computed exactly as the reference report
// computes them (see docs: seed-formats-details.md, section 5), plus a few
// diagnostics the reference does not give (duplicate names, unknown members,
// categories in several clusters). Pure: no I/O, no clock.
//
// Rules reproduced on purpose, because readers of existing reports rely on them:
// - categories are looked up by name; a repeated name keeps the LAST entry, and
//   "total categories" counts distinct names; total perturbations sums the
//   example counts of those distinct entries;
// - a cluster's "categories" is the number of member entries as listed (unknown
//   names and repeats included); its perturbations sum the example counts of its
//   member names (an unknown name counts 0), so a category in two clusters counts
//   twice and shares can add up to more than 100%;
// - percent = perturbations / total * 100 (0 when the total is 0), printed with
//   Python's '.1f';
// - clusters are ranked by perturbations, descending, ties in input order;
//   members by example count, descending, ties in listed order;
// - unclustered categories are sorted by code point;
// - cumulative rows sum member entries and perturbations rank by rank.

import type { Category, CategoryExample, Cluster, ClusterMember } from '../formats.ts';
import { compareCodePoints } from '../util/order.ts';
import { formatFixed } from '../util/pyformat.ts';

/** A categorization file as written by the categorize stage (or the reference). */
export interface CategorizationDocument {
  categorization: { categories: Category[] };
  statistics?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
}

/** A clusters file as written by the cluster stage (or the reference). */
export interface ClustersDocument {
  clusters: Cluster[];
  statistics?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
}

export interface CategoryCount {
  name: string;
  perturbations: number;
}

export interface MemberStat {
  name: string;
  /** Example count of the category with this name, 0 when the name is unknown. */
  perturbations: number;
  /** Whether the categorization has a category with this name. */
  known: boolean;
  /** The cluster's justification for this member ('' when absent). */
  justification: string;
  /** The examples of the (last) category with this name; [] when unknown. */
  examples: CategoryExample[];
}

export interface ClusterStat {
  /** 1-based position in the ranking. */
  rank: number;
  /** Position in the clusters file. */
  inputIndex: number;
  name: string;
  definition: string;
  anchorPhrases: string;
  /** Number of member entries as listed, unknown and repeated names included. */
  memberEntries: number;
  perturbations: number;
  /** perturbations / total * 100, or 0 when the total is 0. */
  percent: number;
  /** `percent` as the reference prints it ('.1f', no % sign). */
  percentText: string;
  /** Members sorted by example count, descending; ties keep the listed order. */
  members: MemberStat[];
}

export interface CumulativeRow {
  topN: number;
  memberEntries: number;
  perturbations: number;
  percent: number;
  percentText: string;
}

export interface ClusterMembership {
  name: string;
  /** Cluster names (in ranking order) that list this category, one per listing. */
  clusters: string[];
}

export interface ReportStats {
  /** Distinct category names in the categorization. */
  totalCategories: number;
  /** Sum of example counts over the distinct categories. */
  totalPerturbations: number;
  clusterCount: number;
  /** Clusters in ranking order. */
  clusters: ClusterStat[];
  /** Categories named by no cluster member, sorted by code point. */
  unclustered: CategoryCount[];
  cumulative: CumulativeRow[];
  /** Category names that occur more than once in the categorization (code-point order). */
  duplicateCategoryNames: string[];
  /** Member names that match no category, distinct, code-point order. */
  unknownMemberNames: string[];
  /** Categories listed more than once across all clusters (code-point order). */
  multiplyClustered: ClusterMembership[];
}

/** Python's `len(s)`: the number of code points. */
export function codePointLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/**
 * The summary-table form of a cluster name: names longer than `max` code points
 * are cut to `max` code points followed by '...'.
 */
export function cutName(name: string, max = 50): string {
  const points = Array.from(name);
  return points.length > max ? `${points.slice(0, max).join('')}...` : name;
}

/** Percent as the reference computes it: part / total * 100, or 0 for an empty total. */
export function percentOf(part: number, total: number): number {
  return total > 0 ? (part / total) * 100 : 0;
}

function stableSortDesc<T>(items: T[], key: (item: T) => number): T[] {
  return items
    .map((item, index) => ({ item, index }))
    .sort((x, y) => key(y.item) - key(x.item) || x.index - y.index)
    .map(({ item }) => item);
}

interface LookupEntry {
  examples: CategoryExample[];
}

/** Read the categories of a categorization document, tolerating a reference error file. */
function categoriesOf(doc: CategorizationDocument): Category[] {
  const inner = doc.categorization as { categories?: Category[] } | undefined;
  return inner?.categories ?? [];
}

function membersOf(cluster: Cluster): ClusterMember[] {
  return (cluster.member_categories as ClusterMember[] | undefined) ?? [];
}

export function computeReportStats(
  categorization: CategorizationDocument,
  clustersDoc: ClustersDocument,
): ReportStats {
  // Name lookup, last entry wins (the position of a name stays where it first
  // appeared, which matters nowhere: sums are order-free and listings sort).
  const lookup = new Map<string, LookupEntry>();
  const seen = new Map<string, number>();
  for (const category of categoriesOf(categorization)) {
    const name = category.category_name;
    lookup.set(name, { examples: (category.examples as CategoryExample[] | undefined) ?? [] });
    seen.set(name, (seen.get(name) ?? 0) + 1);
  }

  let totalPerturbations = 0;
  for (const entry of lookup.values()) totalPerturbations += entry.examples.length;

  const clusters = (clustersDoc.clusters as Cluster[] | undefined) ?? [];
  const unranked = clusters.map((cluster, inputIndex) => {
    const members: MemberStat[] = membersOf(cluster).map((member) => {
      const name = (member.category_name as string | undefined) ?? '';
      const entry = lookup.get(name);
      return {
        name,
        perturbations: entry ? entry.examples.length : 0,
        known: entry !== undefined,
        justification: (member.justification as string | undefined | null) ?? '',
        examples: entry ? entry.examples : [],
      };
    });
    const perturbations = members.reduce((sum, m) => sum + m.perturbations, 0);
    const percent = percentOf(perturbations, totalPerturbations);
    return {
      rank: 0,
      inputIndex,
      name: (cluster.cluster_name as string | undefined) ?? 'Unnamed',
      definition: (cluster.definition as string | undefined) ?? '',
      anchorPhrases: (cluster.anchor_phrases as string | undefined) ?? '',
      memberEntries: members.length,
      perturbations,
      percent,
      percentText: formatFixed(percent, 1),
      members: stableSortDesc(members, (m) => m.perturbations),
    } satisfies ClusterStat;
  });

  const ranked = stableSortDesc(unranked, (c) => c.perturbations).map((c, i) => ({ ...c, rank: i + 1 }));

  const listedNames = new Set<string>();
  const listings = new Map<string, string[]>();
  for (const cluster of ranked) {
    for (const member of cluster.members) {
      listedNames.add(member.name);
    }
  }
  // Membership in ranking order, member entries in listed order.
  for (const cluster of ranked) {
    const original = clusters[cluster.inputIndex] as Cluster;
    for (const member of membersOf(original)) {
      const name = (member.category_name as string | undefined) ?? '';
      const list = listings.get(name) ?? [];
      list.push(cluster.name);
      listings.set(name, list);
    }
  }

  const unclustered: CategoryCount[] = [...lookup.entries()]
    .filter(([name]) => !listedNames.has(name))
    .map(([name, entry]) => ({ name, perturbations: entry.examples.length }))
    .sort((a, b) => compareCodePoints(a.name, b.name));

  const cumulative: CumulativeRow[] = [];
  let runningEntries = 0;
  let runningPerturbations = 0;
  for (const cluster of ranked) {
    runningEntries += cluster.memberEntries;
    runningPerturbations += cluster.perturbations;
    const percent = percentOf(runningPerturbations, totalPerturbations);
    cumulative.push({
      topN: cluster.rank,
      memberEntries: runningEntries,
      perturbations: runningPerturbations,
      percent,
      percentText: formatFixed(percent, 1),
    });
  }

  const byCodePoint = (a: string, b: string): number => compareCodePoints(a, b);
  return {
    totalCategories: lookup.size,
    totalPerturbations,
    clusterCount: clusters.length,
    clusters: ranked,
    unclustered,
    cumulative,
    duplicateCategoryNames: [...seen.entries()]
      .filter(([, n]) => n > 1)
      .map(([name]) => name)
      .sort(byCodePoint),
    unknownMemberNames: [...listedNames].filter((name) => !lookup.has(name)).sort(byCodePoint),
    multiplyClustered: [...listings.entries()]
      .filter(([name, list]) => list.length > 1 && lookup.has(name))
      .map(([name, list]) => ({ name, clusters: list }))
      .sort((a, b) => compareCodePoints(a.name, b.name)),
  };
}
