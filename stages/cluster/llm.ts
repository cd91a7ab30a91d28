// Step 4 with a language model: clustering categories into themes at any
// size, with every category in exactly one cluster. Pure orchestration over
// an injected, store-backed `complete`.
//
// When the rendered categories fit `maxPromptChars`, one call clusters them
// all. Otherwise they are cut into chunks (in input order, each as large as
// fits), each chunk is clustered, and the first-round clusters are clustered
// again as pseudo-categories (repeated while they still do not fit and the
// number of groups keeps shrinking); final clusters list the original member
// categories. Each answer is checked: names must be among the ones shown,
// each exactly once. Problems are stated in a follow-up request (bounded);
// categories still not placed become single-category clusters and are listed
// in `unclustered` with the reason, so nothing is lost.
import { z } from 'zod';
import type { ZodType } from 'zod';
import type { Category, Cluster, ClusterMember } from '../formats.ts';
import type { Complete } from '../llm/answer.ts';
import { askWithRepairs, problemsMessage, repairCount, repairLimit, repairRecord } from '../llm/repair.ts';
import type { RepairRecord } from '../llm/repair.ts';
import { restrictedString } from '../llm/schema.ts';
import { newAccounting } from '../llm/usage.ts';
import type { Accounting } from '../llm/usage.ts';
import { normalizeName } from '../util/names.ts';
import { fillTemplate } from '../util/template.ts';

export interface ClusterAnswer {
  clusters: {
    cluster_name: string;
    definition: string;
    anchor_phrases: string;
    member_categories: { category_name: string; category_definition: string; justification: string }[];
  }[];
}

/** The cluster answer; member names restricted to `names` (an enum) when given and small enough. */
export function clusterAnswerSchema(names: readonly string[]): ZodType<ClusterAnswer> {
  return z.object({
    clusters: z.array(
      z.object({
        cluster_name: z.string(),
        definition: z.string(),
        anchor_phrases: z.string(),
        member_categories: z.array(
          z.object({
            category_name: restrictedString(names),
            category_definition: z.string(),
            justification: z.string(),
          }),
        ),
      }),
    ),
  });
}

const lenientSchema = clusterAnswerSchema([]);

function renderCategory(c: Category, n: number, maxExamples: number): string {
  const lines = [`Category ${n}: ${c.category_name}`, `Definition: ${c.definition}`, `Examples (${c.examples.length}):`];
  for (const e of c.examples.slice(0, maxExamples)) {
    lines.push(`  - Trigger phrase: "${e.trigger_phrase ?? ''}"`);
    lines.push(`    Justification: ${e.justification ?? ''}`);
  }
  if (c.examples.length > maxExamples) lines.push(`  ... and ${c.examples.length - maxExamples} more examples`);
  return lines.join('\n');
}

/** Categories as the cluster prompt shows them: name, definition, up to `maxExamples` examples. */
export function renderCategoriesForClustering(categories: readonly Category[], maxExamples = 5): string {
  return categories.map((c, i) => renderCategory(c, i + 1, maxExamples)).join('\n\n');
}

/** A first-round cluster shown as a category in a later round. */
function renderPseudo(c: Cluster, n: number, maxExamples: number): string {
  const lines = [`Category ${n}: ${c.cluster_name}`, `Definition: ${c.definition}`];
  if (c.anchor_phrases.trim() !== '') lines.push(`Anchor phrases: ${c.anchor_phrases}`);
  const shown = c.member_categories.slice(0, maxExamples).map((m) => m.category_name);
  if (c.member_categories.length > maxExamples) shown.push(`... and ${c.member_categories.length - maxExamples} more`);
  lines.push(`Member categories (${c.member_categories.length}): ${shown.join('; ')}`);
  return lines.join('\n');
}

/** What one call clusters: a category (round 1) or a cluster of an earlier round. */
interface Unit {
  name: string;
  render: (n: number) => string;
  /** Final members when this unit is placed. */
  members: (justification: string) => ClusterMember[];
  /** The cluster this unit stands for when it ends up alone. */
  alone: Cluster;
  /** Whether some model call placed this unit (or what it is made of) next to other categories. */
  compared: boolean;
  /** The category names inside. */
  categories: string[];
}

export interface ClusterCall extends RepairRecord {
  round: number;
  /** 0-based chunk within the round. */
  chunk: number;
  names: string[];
}

export interface ClusterOptions {
  /** The cluster prompt, with {CATEGORIES}. */
  template: string;
  complete: Complete;
  /** Longest prompt (characters) one call may get. */
  maxPromptChars: number;
  /** Follow-up requests per call that state problems (default 2). */
  maxRepairs?: number;
  /** Examples shown per category (default 5). */
  maxExamples?: number;
  onCall?: (call: ClusterCall) => void;
}

export interface ClusterResult extends Accounting {
  clusters: Cluster[];
  /** Categories no model call placed, kept as single-category clusters, with the reason. */
  unclustered: { category_name: string; reason: string }[];
  calls: ClusterCall[];
  /** Rounds that made model calls (1 when one call was enough). */
  rounds: number;
}

interface CheckedCluster {
  cluster_name: string;
  definition: string;
  anchor_phrases: string;
  units: { unit: number; justification: string }[];
}

export interface ClusterCheck {
  problems: string[];
  clusters: CheckedCluster[];
  /** Units no cluster holds. */
  missing: number[];
}

/** Checks a cluster answer against the names shown (resolved exactly, else case-insensitively). */
export function checkClusterAnswer(answer: ClusterAnswer, names: readonly string[]): ClusterCheck {
  const exact = new Map<string, number>();
  names.forEach((n, i) => {
    if (!exact.has(n)) exact.set(n, i);
  });
  const loose = new Map<string, number | null>();
  names.forEach((n, i) => {
    const k = normalizeName(n);
    loose.set(k, loose.has(k) ? null : i);
  });
  const resolve = (name: string): number | undefined => exact.get(name) ?? loose.get(normalizeName(name)) ?? undefined;

  const problems: string[] = [];
  const placedIn = new Map<number, string[]>();
  const out: CheckedCluster[] = [];
  const byName = new Map<string, CheckedCluster>();
  const unknown: string[] = [];

  answer.clusters.forEach((c, ci) => {
    let name = c.cluster_name.replace(/\s+/g, ' ').trim();
    if (name === '') {
      problems.push(`Cluster ${ci + 1} has an empty cluster_name: give every cluster a name.`);
      name = '';
    }
    const key = normalizeName(name);
    let target = key === '' ? undefined : byName.get(key);
    if (!target) {
      target = { cluster_name: name, definition: c.definition, anchor_phrases: c.anchor_phrases, units: [] };
      out.push(target);
      if (key !== '') byName.set(key, target);
    }
    for (const m of c.member_categories) {
      const u = resolve(m.category_name);
      if (u === undefined) {
        if (!unknown.includes(m.category_name)) unknown.push(m.category_name);
        continue;
      }
      const list = placedIn.get(u) ?? [];
      list.push(name || `cluster ${ci + 1}`);
      placedIn.set(u, list);
      if (list.length === 1) target.units.push({ unit: u, justification: m.justification });
    }
  });
  for (const n of unknown) problems.push(`"${n}" is not one of the categories listed: use the category names exactly as given.`);
  const missing: number[] = [];
  names.forEach((n, i) => {
    const list = placedIn.get(i) ?? [];
    if (list.length === 0) {
      missing.push(i);
      problems.push(`Category "${n}" is in no cluster: place it in exactly one cluster (alone, if it has no partner).`);
    } else if (list.length > 1) {
      problems.push(`Category "${n}" is placed ${list.length} times (in ${list.map((l) => `"${l}"`).join(', ')}): place it in exactly one cluster.`);
    }
  });
  // A nameless cluster takes the name of its first member; clusters without a valid member are dropped.
  const clusters = out.filter((c) => c.units.length > 0).map((c) => (c.cluster_name === '' ? { ...c, cluster_name: names[c.units[0]!.unit]! } : c));
  return { problems, clusters, missing };
}

/** The follow-up message that states each problem of a cluster answer. */
export function clusterRepairMessage(problems: readonly string[], names: readonly string[]): string {
  return problemsMessage(problems, [
    `The categories to place are: ${names.map((n) => `"${n}"`).join(', ')}. Each must appear in exactly one cluster.`,
    'Reply with the corrected, complete JSON answer, and nothing else.',
  ]);
}

function categoryUnit(c: Category, maxExamples: number): Unit {
  const anchors = c.examples
    .map((e) => e.trigger_phrase)
    .filter((p): p is string => typeof p === 'string' && p.trim() !== '')
    .slice(0, 3)
    .join(', ');
  return {
    name: c.category_name,
    render: (n) => renderCategory(c, n, maxExamples),
    members: (justification) => [{ category_name: c.category_name, category_definition: c.definition, justification }],
    alone: {
      cluster_name: c.category_name,
      definition: c.definition,
      anchor_phrases: anchors,
      member_categories: [{ category_name: c.category_name, category_definition: c.definition, justification: 'Single-category cluster.' }],
    },
    compared: false,
    categories: [c.category_name],
  };
}

function clusterUnit(cluster: Cluster, name: string, compared: boolean, categories: string[], maxExamples: number): Unit {
  return {
    name,
    render: (n) => renderPseudo({ ...cluster, cluster_name: name }, n, maxExamples),
    members: () => cluster.member_categories.map((m) => ({ ...m })),
    alone: cluster,
    compared,
    categories,
  };
}

/**
 * Cuts units into chunks whose prompt fits, in input order: each chunk takes
 * the next units while they fit. A unit too large even alone gets a chunk of
 * its own and does not break the run of the others.
 */
function chunkUnits(units: readonly Unit[], template: string, maxPromptChars: number): Unit[][] {
  const overhead = fillTemplate(template, { CATEGORIES: '' }).length;
  const chunks: Unit[][] = [];
  let current: Unit[] = [];
  let size = overhead;
  for (const u of units) {
    if (overhead + u.render(1).length > maxPromptChars) {
      chunks.push([u]);
      continue;
    }
    const block = () => u.render(current.length + 1).length + (current.length > 0 ? 2 : 0);
    if (current.length > 0 && size + block() > maxPromptChars) {
      chunks.push(current);
      current = [];
      size = overhead;
    }
    size += block();
    current.push(u);
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

function promptOf(template: string, units: readonly Unit[]): string {
  return fillTemplate(template, { CATEGORIES: units.map((u, i) => u.render(i + 1)).join('\n\n') });
}

/** Unique display names for units (a repeated cluster name gets " (2)", " (3)"...). */
function uniqueNames(names: readonly string[]): string[] {
  const seen = new Map<string, number>();
  return names.map((n) => {
    const k = normalizeName(n);
    const count = (seen.get(k) ?? 0) + 1;
    seen.set(k, count);
    return count === 1 ? n : `${n} (${count})`;
  });
}

/**
 * Calls a clustering makes without repairs: none for a single category, one when the categories fit one
 * prompt, else about one per chunk plus a merge round (the plan and the
 * progress line use it; the exact chunking is decided by clusterCategories).
 */
export function estimateClusterCalls(categories: readonly Category[], template: string, maxPromptChars: number): number {
  // A single category is its own cluster: no call.
  if (new Set(categories.map((c) => c.category_name)).size <= 1) return 0;
  const chars = renderCategoriesForClustering(categories).length + template.length;
  return chars <= maxPromptChars ? 1 : Math.ceil(chars / maxPromptChars) + 1;
}

export async function clusterCategories(categories: readonly Category[], opts: ClusterOptions): Promise<ClusterResult> {
  const maxRepairs = repairLimit(opts.maxRepairs);
  const maxExamples = opts.maxExamples ?? 5;
  if (!(opts.maxPromptChars > 0)) throw new Error(`cluster: maxPromptChars must be positive, got ${opts.maxPromptChars}`);
  const acc = newAccounting();
  const calls: ClusterCall[] = [];
  const unclustered: { category_name: string; reason: string }[] = [];

  // One unit per distinct name (a repeated name is one category, as readers of the format treat it).
  const seen = new Set<string>();
  let units: Unit[] = [];
  for (const c of categories) {
    if (seen.has(c.category_name)) continue;
    seen.add(c.category_name);
    units.push(categoryUnit(c, maxExamples));
  }
  const total = units.length;
  let round = 0;
  let rounds = 0;

  /** Clusters one group of units; returns the new units (one per resulting cluster). */
  const clusterGroup = async (group: Unit[], chunk: number): Promise<Unit[]> => {
    if (group.length === 1) return [clusterUnit(group[0]!.alone, group[0]!.alone.cluster_name, group[0]!.compared, group[0]!.categories, maxExamples)];
    const names = group.map((u) => u.name);
    const out = await askWithRepairs<ClusterAnswer, ClusterCheck>(
      {
        step: 'cluster',
        messages: [{ role: 'user', content: promptOf(opts.template, group) }],
        schema: { name: 'cluster_categories', zod: clusterAnswerSchema(names) },
        lenient: lenientSchema,
        check: (value) => {
          const check = checkClusterAnswer(value, names);
          return { problems: check.problems, score: names.length - check.missing.length, check };
        },
        repairText: (problems) => clusterRepairMessage(problems, names),
      },
      opts.complete,
      maxRepairs,
      acc,
    );
    const call: ClusterCall = { round, chunk, names, ...repairRecord(out) };
    calls.push(call);
    opts.onCall?.(call);

    const { best, failure, repairs } = out;
    const afterRepairs = repairs > 0 ? ` after ${repairCount(repairs)}` : '';
    const missingReason = failure ?? `the model did not place it in any cluster${afterRepairs}`;
    const next: { cluster: Cluster; compared: boolean; categories: string[] }[] = [];
    for (const c of best?.clusters ?? []) {
      const members = c.units.map((p) => group[p.unit]!);
      if (members.length === 1 && round > 1) {
        // A group that found no partner keeps its own description.
        next.push({ cluster: members[0]!.alone, compared: true, categories: members[0]!.categories });
        continue;
      }
      next.push({
        cluster: {
          cluster_name: c.cluster_name,
          definition: c.definition,
          anchor_phrases: c.anchor_phrases,
          member_categories: c.units.flatMap((p) => group[p.unit]!.members(p.justification)),
        },
        compared: true,
        categories: members.flatMap((m) => m.categories),
      });
    }
    const missing = best ? best.missing : group.map((_, i) => i);
    for (const i of missing) {
      const u = group[i]!;
      // A category the model never placed is flagged; an earlier-round cluster stays as it was.
      if (round === 1 || (!u.compared && u.categories.length === 1)) {
        unclustered.push({ category_name: u.categories[0] ?? u.name, reason: missingReason });
        next.push({ cluster: u.alone, compared: true, categories: u.categories });
      } else {
        next.push({ cluster: u.alone, compared: u.compared, categories: u.categories });
      }
    }
    const display = uniqueNames(next.map((n) => n.cluster.cluster_name));
    return next.map((n, i) => clusterUnit(n.cluster, display[i]!, n.compared, n.categories, maxExamples));
  };

  while (units.length > 0) {
    round += 1;
    if (units.length === 1 || promptOf(opts.template, units).length <= opts.maxPromptChars) {
      if (units.length > 1) rounds += 1;
      units = await clusterGroup(units, 0);
      break;
    }
    const chunks = chunkUnits(units, opts.template, opts.maxPromptChars);
    const next: Unit[] = [];
    let called = false;
    for (const [i, chunk] of chunks.entries()) {
      if (chunk.length > 1) called = true;
      next.push(...(await clusterGroup(chunk, i)));
    }
    if (called) rounds += 1;
    if (next.length >= units.length) {
      // No group merged: another round cannot fit either; keep what there is.
      units = next;
      break;
    }
    units = uniqueUnits(next, maxExamples);
  }

  // Categories that no call could show next to others (too large for maxPromptChars).
  if (total > 1) {
    for (const u of units) {
      if (!u.compared && u.categories.length === 1) {
        unclustered.push({ category_name: u.categories[0]!, reason: `its description does not fit next to other categories within maxPromptChars (${opts.maxPromptChars} characters)` });
      }
    }
  }

  const names = uniqueNames(units.map((u) => u.alone.cluster_name));
  return { clusters: units.map((u, i) => ({ ...u.alone, cluster_name: names[i]! })), unclustered, calls, rounds, ...acc };
}

/** Units with unique names across chunks (two chunks may name a cluster alike). */
function uniqueUnits(units: readonly Unit[], maxExamples: number): Unit[] {
  const names = uniqueNames(units.map((u) => u.alone.cluster_name));
  return units.map((u, i) => clusterUnit(u.alone, names[i]!, u.compared, u.categories, maxExamples));
}
