// Runs the offline analyzer on the 117 AutoElicit benchmark records and prints
// its categories and clusters for a human to judge, plus the adjusted Rand
// index of the offline categories (and, as a baseline, of the raw
// elicitation_strategy labels) against the hand labels in
// bench/mechanism-labels.json.
//
//   npx node bench/offline-quality.ts [--json]

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CategorizeItem, Category } from '../stages/formats.ts';
import { offlineCategorize } from '../stages/offline/categorize.ts';
import { offlineCluster } from '../stages/offline/cluster.ts';
import { adjustedRandIndex } from '../stages/offline/metrics.ts';
import { offlineSummarize } from '../stages/offline/summarize.ts';

/** One record of examples/autoelicit-bench/records.json. */
export interface BenchRecord {
  example_id?: string;
  task_id: string;
  perturbed_id: string;
  refinement_model: string;
  execution_agent: string;
  severity: string | null;
  perturbed_instruction: string;
  original_instruction: string | null;
  elicitation_strategy: string;
  behavior_elicitation_score?: number;
  execution_iterations_required?: number;
  harmful_actions_observed?: string[];
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const candidates = [join(root, 'examples/autoelicit-bench/records.json')];
const recordsPath = candidates.find((p) => existsSync(p));
if (!recordsPath) {
  console.error(`No records.json found (looked in ${candidates.join(', ')})`);
  process.exit(1);
}
const records = JSON.parse(readFileSync(recordsPath, 'utf8')) as BenchRecord[];

/** Lower case, spaces to _, drop a free-text explanation after " – ". */
function normalizeStrategy(s: string): string {
  return (s.split(/\s+[\u2013\u2014]\s+/u)[0] ?? s).trim().toLowerCase().replace(/\s+/g, '_');
}

const items: CategorizeItem[] = records.map((r) => {
  const id = `${r.task_id}:${r.perturbed_id}:${r.refinement_model}:${r.execution_agent}`;
  const harmful = r.harmful_actions_observed ?? [];
  const summary = offlineSummarize({
    original_instruction: r.original_instruction ?? '',
    history: [],
    successful: {
      execution_iteration: Math.max(0, (r.execution_iterations_required ?? 1) - 1),
      perturbed_instruction: r.perturbed_instruction,
      elicitation_strategy: r.elicitation_strategy,
      trajectory_evaluation: {
        ...(typeof r.behavior_elicitation_score === 'number' ? { behavior_elicitation_score: r.behavior_elicitation_score } : {}),
        ...(r.severity ? { severity_assessment: r.severity } : {}),
        harmful_actions_observed: harmful,
        recommendation: 'COLLECT',
      },
    },
  });
  return {
    id,
    original_instruction: r.original_instruction ?? '',
    perturbed_instruction: r.perturbed_instruction,
    summary,
    harmful_actions: harmful,
    elicitation_strategy: r.elicitation_strategy,
    severity: r.severity,
  };
});

const { categories } = offlineCategorize(items);
const { clusters } = offlineCluster(categories, items);

const print = (s = ''): void => console.log(s);
print(`Offline analyzer on ${items.length} runs from ${recordsPath}`);
print(`\n=== ${categories.length} categories (${categories.filter((c) => c.examples.length === 1).length} singletons) ===`);
for (const c of categories) {
  print(`\n[${c.examples.length}] ${c.category_name}`);
  print(`    ${c.definition}`);
  for (const ex of c.examples.slice(0, 3)) print(`    - "${ex.trigger_phrase}"`);
}
print(`\n=== ${clusters.length} clusters ===`);
const size = new Map(categories.map((c) => [c.category_name, c.examples.length]));
for (const cl of clusters) {
  const runs = cl.member_categories.reduce((s, m) => s + (size.get(m.category_name) ?? 0), 0);
  print(`\n[${runs} runs] ${cl.cluster_name}`);
  print(`    ${cl.definition}`);
  print(`    anchors: ${cl.anchor_phrases}`);
  for (const m of cl.member_categories) print(`    * ${m.category_name} (${size.get(m.category_name) ?? 0})`);
}

// Agreement with the hand labels.
const labelsPath = join(root, 'bench/mechanism-labels.json');
const labels = JSON.parse(readFileSync(labelsPath, 'utf8')) as Record<string, string>;
const categoryOf = new Map<string, string>();
for (const c of categories) for (const ex of c.examples) categoryOf.set(ex.id, c.category_name);
const strategyOf = new Map(items.map((it) => [it.id, normalizeStrategy(it.elicitation_strategy)]));
const ids = Object.keys(labels)
  .filter((k) => !k.startsWith('_') && categoryOf.has(k))
  .sort();
const hand = ids.map((k) => labels[k] ?? '');
const ours = ids.map((k) => categoryOf.get(k) ?? '');
const strat = ids.map((k) => strategyOf.get(k) ?? '');
print(`\n=== agreement with ${ids.length} hand labels (${new Set(hand).size} mechanisms) ===`);
print(`ARI offline categories vs hand labels:      ${adjustedRandIndex(ours, hand).toFixed(3)}`);
print(`ARI elicitation_strategy vs hand labels:    ${adjustedRandIndex(strat, hand).toFixed(3)}`);
const clusterOf = new Map<string, string>();
for (const cl of clusters) for (const m of cl.member_categories) clusterOf.set(m.category_name, cl.cluster_name);
print(`ARI offline clusters vs hand labels:        ${adjustedRandIndex(ours.map((c) => clusterOf.get(c) ?? ''), hand).toFixed(3)}`);

// Ablations: the same clustering with only one kind of feature, and at other cuts.
const ariFor = (cats: readonly Category[]): number => {
  const of = new Map<string, string>();
  for (const c of cats) for (const ex of c.examples) of.set(ex.id, c.category_name);
  return adjustedRandIndex(
    ids.map((k) => of.get(k) ?? ''),
    hand,
  );
};
// TF-IDF alone needs a looser cut to form groups at all: report its best cut (generous to it).
let termsOnly: Category[] = [];
let termsCut = 0;
for (const t of [0.6, 0.7, 0.8, 0.85, 0.9, 0.95]) {
  const cats = offlineCategorize(items, { threshold: t, weights: { terms: 1, cues: 0, harm: 0 } }).categories;
  if (termsOnly.length === 0 || ariFor(cats) > ariFor(termsOnly)) {
    termsOnly = cats;
    termsCut = t;
  }
}
const cuesOnly = offlineCategorize(items, { weights: { terms: 0 } }).categories;
print(`ablation, TF-IDF terms only (best cut ${termsCut}): ${ariFor(termsOnly).toFixed(3)} (${termsOnly.length} categories)`);
print(`ablation, cue families only:                ${ariFor(cuesOnly).toFixed(3)} (${cuesOnly.length} categories)`);
for (const t of [0.45, 0.5, 0.55, 0.65, 0.7]) {
  const cats = offlineCategorize(items, { threshold: t }).categories;
  print(`threshold ${t.toFixed(2)}:                            ${ariFor(cats).toFixed(3)} (${cats.length} categories)`);
}

if (process.argv.includes('--disagreements')) {
  print('\n=== hand label -> offline categories ===');
  const byLabel = new Map<string, Map<string, number>>();
  ids.forEach((k, i) => {
    const m = byLabel.get(hand[i] ?? '') ?? new Map<string, number>();
    m.set(ours[i] ?? '', (m.get(ours[i] ?? '') ?? 0) + 1);
    byLabel.set(hand[i] ?? '', m);
  });
  for (const [l, m] of [...byLabel].sort()) print(`${l}: ${[...m].map(([c, n]) => `${n}x ${c}`).join(' | ')}`);
}
