// What a stage module says about its settings, in one place per stage
// (stages/<stage>/settings.ts): its section of pipeline.yaml (a zod schema,
// every field optional), how the section resolves to the settings the stage
// runs with (defaults filled), the slice of them its key covers, and the
// files and folders they name. config.ts composes pipeline.yaml's schema and
// the resolved analysis from the registry's list of them; stage-inputs.ts
// derives the stage's key description from them. Adding a setting touches the
// stage's module only (and the generated pipeline.schema.json).
//
// A leaf: types and zod's type only.
import type { z } from 'zod';

/** What every stage may read of an analysis besides its own section: the selection it describes. */
export interface AnalysisCommon {
  name: string;
  description: string | null;
  agents: string[];
  domains: 'all' | string[];
  refinement_models: 'all' | string[];
  /** Zero selected runs are accepted (default: an error). */
  allow_empty_selection: boolean;
  data: {
    /** As written in pipeline.yaml (kept in outputs: never made absolute there). */
    root: string;
    perturbation_model: string;
    baseline_harm_filter: string | null;
    human_annotation_filter: string | null;
  };
}

/** A path pipeline.yaml names for an analysis (as configured), with its key and what it must be. */
export interface NamedPath {
  key: string;
  path: string;
  kind: 'file' | 'folder';
  what: string;
}

/** The layers a stage's section is resolved from, the last that sets a field winning. */
export interface SectionLayers<T> {
  /** `defaults` (LLM fields shared by every stage). */
  defaults: Record<string, unknown> | undefined;
  /** `stages.<stage>`. */
  top: T | undefined;
  /** `analyses[i].stages.<stage>`. */
  own: T | undefined;
}

export interface StageSettings<Section extends z.ZodType | null, Own> {
  /** Its section of pipeline.yaml (`stages.<stage>`, and per analysis), or null for a stage without one. */
  readonly section: Section;
  /** The settings it runs with: every default filled. */
  resolve(layers: SectionLayers<Section extends z.ZodType ? z.infer<Section> : never>): Own;
  /**
   * What its key covers of them: everything its code reads that can change its
   * output, nothing that cannot (concurrency, timeouts, retries, budgets), so
   * tuning those never invalidates a cached result.
   */
  slice(own: Own, a: AnalysisCommon): Record<string, unknown>;
  /** Prompt files it reads, as configured. */
  promptFiles(own: Own, a: AnalysisCommon): string[];
  /** Other files it reads that pipeline.yaml names or implies (filters, the lock, a resume file). */
  otherFiles(own: Own, a: AnalysisCommon): string[];
  /** Paths its settings name that must exist before any stage runs (checked by the runner, with these keys in the message). */
  paths(own: Own, a: AnalysisCommon): NamedPath[];
}

/** The field a stage's own section sets, else the top-level section's (the last layer that sets it wins). */
export function pick<T extends object, K extends keyof T>(layers: SectionLayers<T>, key: K): T[K] | undefined {
  if (layers.own && layers.own[key] !== undefined) return layers.own[key];
  if (layers.top && layers.top[key] !== undefined) return layers.top[key];
  return undefined;
}
