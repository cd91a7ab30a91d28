// What the task-list target selects, in one place for the executor and for its
// cache fingerprint (the data part of its key record: stages/input-record.ts), and which command-line overrides the
// fingerprint covers.
//
// The target is cached. Its key holds the selection settings, the code, and
// a fingerprint of everything the configured selection reads (the crawl of
// stages/task-list/crawl.ts). An override on the command line (--agent,
// --domain, ...) is part of the key too, as Nx hashes a task's overrides, but
// the fingerprint is computed from pipeline.yaml alone: it cannot see a
// folder, filter or tree an override points at. Such an override, and
// --output (a file outside the target's outputs, which a cache hit would not
// write), therefore run only with Nx's cache skipped (--skip-nx-cache), never
// into a cache entry whose key would miss a change. With any selection
// override the executor never writes the analysis' own outputs (the ledger
// later stages account against): it writes the --output copy or prints the
// selection, and under Nx it first checks that the outputs folder holds the
// analysis' current selection, which is what Nx then stores under the
// override's key (restoring it is harmless).
import type { AnalysisCommon, StageSettings } from '../stage-settings.ts';
import type { AnalysisSelectionOptions } from './analysis.ts';
import { DATA_ROOT_IGNORE_FILES } from './data-root-files.ts';

/**
 * task-list's settings: no section of its own in pipeline.yaml; it reads the
 * analysis' selection (agents, domains, refinement models, the data root and
 * filters) and names the data root and the filter files.
 */
export const taskListSettings: StageSettings<null, Record<string, never>> = {
  section: null,
  resolve: () => ({}),
  slice: (_own, a) => ({ agents: a.agents, domains: a.domains, refinement_models: a.refinement_models, data: a.data, allow_empty_selection: a.allow_empty_selection }),
  promptFiles: () => [],
  // The ignore files are read for the hint about keeping the data out of Nx's file map (task-list/data-root.ts): its words are in the replayed log.
  otherFiles: (_own, a) => [...[a.data.baseline_harm_filter, a.data.human_annotation_filter].filter((f): f is string => f !== null), ...DATA_ROOT_IGNORE_FILES],
  paths: (_own, a) => [
    { key: 'data.root', path: a.data.root, kind: 'folder', what: 'the elicitation output tree (perturbed_queries)' },
    ...(a.data.baseline_harm_filter ? [{ key: 'data.filters.baseline_harm', path: a.data.baseline_harm_filter, kind: 'file' as const, what: 'a baseline-harm filter JSON file' }] : []),
    ...(a.data.human_annotation_filter ? [{ key: 'data.filters.human_annotation', path: a.data.human_annotation_filter, kind: 'file' as const, what: 'a human-annotation decisions JSON file' }] : []),
  ],
};

/** The reference script's flags, as the task-list executor accepts them. */
export interface SelectionOverrides {
  base_dir?: string;
  domain?: string;
  agent?: string;
  perturbation_model?: string;
  refinement_model?: string;
  data_filter?: string;
  human_annotation_filter?: string;
  output?: string;
}

/** The selection settings of an analysis as pipeline.yaml gives them (what its key description carries). */
export interface SelectionSettings {
  root: string;
  agents: string[];
  domains: string[] | 'all';
  refinement_models: string[] | 'all';
  perturbation_model: string;
  baseline_harm_filter: string | null;
  human_annotation_filter: string | null;
}

export function selectionSettings(a: AnalysisCommon): SelectionSettings {
  return {
    root: a.data.root,
    agents: [...a.agents],
    domains: a.domains === 'all' ? 'all' : [...a.domains],
    refinement_models: a.refinement_models === 'all' ? 'all' : [...a.refinement_models],
    perturbation_model: a.data.perturbation_model,
    baseline_harm_filter: a.data.baseline_harm_filter,
    human_annotation_filter: a.data.human_annotation_filter,
  };
}

/** The options of `selectAnalysis` for these settings and overrides. */
export function selectionOptions(s: SelectionSettings, o: SelectionOverrides, resolve: (p: string) => string): AnalysisSelectionOptions {
  return {
    baseDir: o.base_dir ?? s.root,
    resolve,
    agents: o.agent ? [o.agent] : s.agents,
    domains: o.domain ? [o.domain] : s.domains === 'all' ? ['all'] : s.domains,
    refinementModels: o.refinement_model ? [o.refinement_model] : s.refinement_models === 'all' ? [null] : s.refinement_models,
    perturbationModel: o.perturbation_model ?? s.perturbation_model,
    dataFilter: o.data_filter ?? s.baseline_harm_filter,
    humanAnnotationFilter: o.human_annotation_filter ?? s.human_annotation_filter,
  };
}

const isAll = (d: string) => d === '' || d.toLowerCase() === 'all';

/**
 * The overrides whose reads the configured fingerprint does not cover, with
 * the reason (empty: the run may be cached). An override that only narrows
 * the configured selection (an agent it lists, a domain or refinement model
 * it walks, the same paths) is covered.
 */
export function uncoveredOverrides(s: SelectionSettings, o: SelectionOverrides): string[] {
  const out: string[] = [];
  if (o.output !== undefined) out.push('--output writes a file outside the target\'s outputs, which a cache hit would not write');
  if (o.base_dir !== undefined && o.base_dir !== s.root) out.push('--base_dir points at a tree the fingerprint of pipeline.yaml\'s data.root does not cover');
  if (o.perturbation_model !== undefined && o.perturbation_model !== s.perturbation_model) out.push('--perturbation_model selects folders the fingerprint does not cover');
  // An empty --agent, --domain or --refinement_model means "as configured" (see selectionOptions).
  if (o.agent && !s.agents.includes(o.agent)) out.push('--agent names an agent the analysis does not list');
  // With every domain configured, the fingerprint holds the data root's listing: any one domain is covered.
  if (o.domain && s.domains !== 'all' && (isAll(o.domain) || !s.domains.includes(o.domain))) {
    out.push('--domain selects a domain the analysis does not list');
  }
  if (o.refinement_model) {
    const rm = o.refinement_model;
    // Discovery skips *_attempt_* folders; an explicit model reads them.
    const covered = s.refinement_models === 'all' ? !rm.includes('_attempt_') : s.refinement_models.includes(rm);
    if (!covered) out.push('--refinement_model selects folders the fingerprint does not cover');
  }
  for (const [flag, given, configured] of [
    ['--data_filter', o.data_filter, s.baseline_harm_filter],
    ['--human_annotation_filter', o.human_annotation_filter, s.human_annotation_filter],
  ] as const) {
    // No filter ("") reads less; another file is not covered.
    if (given !== undefined && given !== '' && given !== configured) out.push(`${flag} names a file the fingerprint does not cover`);
  }
  return out;
}
