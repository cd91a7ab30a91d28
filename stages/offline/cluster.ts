// Offline clustering: merges categories into coarser clusters with the same
// average-linkage method as categorization, at a coarser cut, over category
// centroid vectors in which the family *group* (tidy-up, durable enforcement,
// claimed obstacles, pressure, scope drift; see lexicon.ts) carries most of the
// weight. A category's centroid is the mean of its runs' vectors when the runs
// are given; otherwise its trigger phrases stand in for the runs' inserted
// wording. Every category ends up in exactly one cluster.

import type { CategorizeItem, Category, Cluster, ClusterMember } from '../formats.ts';
import {
  itemAnalyzer,
  buildCorpus,
  centroid,
  CLUSTER_WEIGHTS,
  cosine,
  itemVector,
  type Corpus,
  type FeatureWeights,
  type ItemAnalysis,
  type SparseVector,
} from './features.ts';
import { cueCounts, meanFamilies, sortItems } from './categorize.ts';
import { FAMILY_BY_ID, FAMILY_GROUPS, GROUP_BY_ID, type FamilyGroupId } from './lexicon.ts';
import { averageLinkage } from './linkage.ts';
import { compareStrings, OFFLINE_MARK, titleCase } from './text.ts';

export interface OfflineClusterOptions {
  /** Average-linkage cut (cosine distance) between category centroids. Default 0.55. */
  threshold?: number;
  /** Stop merging at this many clusters (when there are at least that many categories). Default 3. */
  minClusters?: number;
  weights?: Partial<FeatureWeights>;
  /** Most anchor phrases per cluster. Default 6. */
  maxAnchors?: number;
}

export interface OfflineClusterResult {
  clusters: Cluster[];
}

interface CategoryView {
  category: Category;
  members: ItemAnalysis[];
  vector: SparseVector;
  families: [string, number][];
  groups: [FamilyGroupId, number][];
  size: number;
}

/** Mean family value below which a family does not characterise a category. */
const MIN_FAMILY_VALUE = 0.25;

const GROUP_ORDER = new Map(FAMILY_GROUPS.map((g, i) => [g.id, i]));

function pseudoItem(id: string, text: string): CategorizeItem {
  return {
    id,
    original_instruction: '',
    perturbed_instruction: text,
    summary: '',
    harmful_actions: [],
    elicitation_strategy: '',
    severity: null,
  };
}

function groupValues(families: readonly [string, number][]): [FamilyGroupId, number][] {
  const acc = new Map<FamilyGroupId, number>();
  for (const [f, v] of families) {
    const g = FAMILY_BY_ID.get(f)?.group;
    if (g) acc.set(g, (acc.get(g) ?? 0) + v);
  }
  return [...acc.entries()].sort((x, y) => y[1] - x[1] || (GROUP_ORDER.get(x[0]) ?? 0) - (GROUP_ORDER.get(y[0]) ?? 0));
}

function quoteList(xs: readonly string[]): string {
  return xs.map((x) => `'${x}'`).join(', ');
}

/** Builds one view per category: its runs (real or stand-in) and centroid. */
function buildViews(categories: readonly Category[], items: readonly CategorizeItem[] | undefined, w: FeatureWeights): CategoryView[] {
  const sortedCats = [...categories].sort(
    (a, b) => compareStrings(a.category_name, b.category_name) || compareStrings(a.definition, b.definition),
  );
  const byId = new Map<string, CategorizeItem[]>();
  for (const it of sortItems(items ?? [])) {
    const list = byId.get(it.id) ?? [];
    list.push(it);
    byId.set(it.id, list);
  }
  // Members per category: the runs named by its examples, else a stand-in built from the trigger phrase.
  const memberItems: CategorizeItem[][] = sortedCats.map((c, ci) => {
    const out: CategorizeItem[] = [];
    const used = new Map<string, number>();
    for (const ex of c.examples ?? []) {
      const list = byId.get(ex.id);
      const k = used.get(ex.id) ?? 0;
      used.set(ex.id, k + 1);
      const real = list?.[Math.min(k, list.length - 1)];
      if (real) out.push(real);
      else if (ex.trigger_phrase) out.push(pseudoItem(`${ci}:${ex.id}`, ex.trigger_phrase));
    }
    if (out.length === 0) out.push(pseudoItem(`${ci}:definition`, `${c.category_name}. ${c.definition}`));
    return out;
  });
  const analyze = itemAnalyzer();
  const analysesPerCat = memberItems.map((list) => list.map((item) => analyze(item)));
  const corpus: Corpus = buildCorpus(analysesPerCat.flat());
  return sortedCats.map((category, i) => {
    const members = analysesPerCat[i] ?? [];
    const vector = centroid(members.map((a) => itemVector(a, corpus, w)));
    // Families too weak to characterise the category (e.g. a residual one) are ignored.
    const families = meanFamilies(members, corpus, w).filter(([, v]) => v >= MIN_FAMILY_VALUE);
    return { category, members, vector, families, groups: groupValues(families), size: category.examples?.length ?? 0 };
  });
}

/** Most frequent cues of each member category's dominant family (then its second family), pooled. */
function anchorsOf(views: readonly CategoryView[], max: number): string[] {
  const acc = new Map<string, number>();
  for (const pass of [0, 1]) {
    for (const v of views) {
      const f = v.families[pass]?.[0];
      if (!f) continue;
      for (const [cue, n] of cueCounts(v.members, f).slice(0, 3)) {
        // Second-family cues only fill up; they never outrank a dominant cue.
        if (!acc.has(cue)) acc.set(cue, pass === 0 ? n : n / 100);
        else if (pass === 0) acc.set(cue, (acc.get(cue) ?? 0) + n);
      }
    }
  }
  return [...acc.entries()]
    .sort((x, y) => y[1] - x[1] || compareStrings(x[0], y[0]))
    .slice(0, max)
    .map(([c]) => c);
}

/** Offline clustering of categories. Pure and deterministic; every category lands in exactly one cluster. */
export function offlineCluster(
  categories: readonly Category[],
  items?: readonly CategorizeItem[],
  opts: OfflineClusterOptions = {},
): OfflineClusterResult {
  const w: FeatureWeights = { ...CLUSTER_WEIGHTS, ...opts.weights };
  const threshold = opts.threshold ?? 0.55;
  const maxAnchors = opts.maxAnchors ?? 6;
  const views = buildViews(categories, items, w);
  const minClusters = Math.min(views.length, Math.max(1, opts.minClusters ?? 3));
  const groups = averageLinkage(views.length, (i, j) => 1 - cosine(views[i]?.vector ?? new Map(), views[j]?.vector ?? new Map()), {
    threshold,
    minClusters,
  });

  const built = groups.map((g) => {
    const members = g.map((i) => views[i] as CategoryView);
    const runs = members.reduce((s, v) => s + v.size, 0);
    const groupAcc = new Map<FamilyGroupId, number>();
    for (const v of members) for (const [gid, x] of v.groups) groupAcc.set(gid, (groupAcc.get(gid) ?? 0) + x * Math.max(1, v.size));
    const ranked = [...groupAcc.entries()].sort(
      (x, y) => y[1] - x[1] || (GROUP_ORDER.get(x[0]) ?? 0) - (GROUP_ORDER.get(y[0]) ?? 0),
    );
    const lead = ranked[0] ? GROUP_BY_ID.get(ranked[0][0]) : undefined;
    // Member family short names, largest categories first, each once.
    const famShorts: string[] = [];
    for (const v of [...members].sort((a, b) => b.size - a.size || compareStrings(a.category.category_name, b.category.category_name))) {
      const f = v.families[0]?.[0];
      const s = f ? FAMILY_BY_ID.get(f)?.short : undefined;
      if (s && !famShorts.includes(s)) famShorts.push(s);
    }
    return { members, runs, lead, famShorts, anchors: anchorsOf(members, maxAnchors) };
  });

  // Groups without a lead cue group share exactly that (no catalogued cue):
  // they form one "Uncatalogued Rewording" cluster rather than several of that name.
  const unled = built.filter((b) => !b.lead);
  if (unled.length > 1) {
    const members = unled.flatMap((b) => b.members);
    const merged = { members, runs: members.reduce((n, v) => n + v.size, 0), lead: undefined, famShorts: [...new Set(unled.flatMap((b) => b.famShorts))], anchors: anchorsOf(members, maxAnchors) };
    built.splice(0, built.length, ...built.filter((b) => b.lead), merged);
  }

  const clusters: Cluster[] = built.map((b) => {
    const title = b.lead ? b.lead.title : 'Uncatalogued Rewording';
    const shorts = b.famShorts.slice(0, 3).map((s) => titleCase(s));
    const cluster_name = shorts.length ? `${title}: ${shorts.join(', ')}` : title;
    const definition =
      `${OFFLINE_MARK} ${b.members.length === 1 ? 'Holds a single category' : `Merges ${b.members.length} categories`} (${b.runs} runs) in which ` +
      `${b.lead ? b.lead.description : 'the inserted wording matches no cue family of the lexicon'}` +
      `${b.anchors.length ? `; recurring cues: ${quoteList(b.anchors.slice(0, 4))}` : ''}.`;
    const member_categories: ClusterMember[] = [...b.members]
      .sort((x, y) => y.size - x.size || compareStrings(x.category.category_name, y.category.category_name))
      .map((v) => {
        const others = b.members.filter((o) => o !== v);
        const fam = v.families[0] ? FAMILY_BY_ID.get(v.families[0][0]) : undefined;
        const grp = fam ? GROUP_BY_ID.get(fam.group) : undefined;
        let why: string;
        if (others.length === 0) {
          let best = '';
          let bestSim = -1;
          for (const o of views) {
            if (o === v) continue;
            const s = cosine(v.vector, o.vector);
            if (s > bestSim) {
              bestSim = s;
              best = o.category.category_name;
            }
          }
          why = best
            ? `stands alone: its nearest category, "${best}", is only at cosine similarity ${bestSim.toFixed(2)}, beyond the merge cut`
            : 'stands alone: it is the only category';
        } else {
          const rest = centroid(others.map((o) => o.vector));
          const cues = anchorsOf([v], 3);
          why =
            `cosine similarity ${cosine(v.vector, rest).toFixed(2)} to the other members' centroid` +
            `${cues.length ? `; cues ${quoteList(cues)}` : ''}`;
        }
        const famText = fam && grp ? `Its dominant cue family, ${fam.title.toLowerCase()}, belongs to the group "${grp.title}"; ` : '';
        return {
          category_name: v.category.category_name,
          category_definition: v.category.definition,
          justification: `${OFFLINE_MARK} ${famText}${why}.`,
        };
      });
    return { cluster_name, definition, anchor_phrases: b.anchors.join(', '), member_categories };
  });

  // Unique names, then order by size (runs) and name.
  const seen = new Map<string, number>();
  for (const c of clusters) {
    const k = (seen.get(c.cluster_name) ?? 0) + 1;
    seen.set(c.cluster_name, k);
    if (k > 1) c.cluster_name = `${c.cluster_name} (${k})`;
  }
  const runsOf = new Map(clusters.map((c, i) => [c, built[i]?.runs ?? 0]));
  clusters.sort((a, b) => (runsOf.get(b) ?? 0) - (runsOf.get(a) ?? 0) || compareStrings(a.cluster_name, b.cluster_name));
  return { clusters };
}
