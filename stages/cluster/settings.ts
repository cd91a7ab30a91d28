// cluster's settings: the LLM fields, its prompt and the chunking threshold.
import { z } from 'zod';
import { llmDefaults, llmFields, llmSlice, nonEmpty, resolveLlm } from '../llm/settings.ts';
import { pick } from '../stage-settings.ts';
import type { StageSettings } from '../stage-settings.ts';
import type { LlmSettings } from '../llm/types.ts';

export const CLUSTER_PROMPT = 'prompts/cluster.md';
export const CLUSTER_BUILTIN: LlmSettings = llmDefaults(64000);

const section = z.strictObject({
  ...llmFields,
  prompt: nonEmpty.optional(),
  max_prompt_chars: z.int().positive().optional()
    .describe('Above this prompt size the categories are clustered in chunks, then the chunk clusters are merged.'),
});

export type ClusterSettings = LlmSettings & { prompt: string; max_prompt_chars: number };

export const clusterSettings: StageSettings<typeof section, ClusterSettings> = {
  section,
  resolve: (layers) => ({
    ...resolveLlm('cluster', CLUSTER_BUILTIN, layers),
    prompt: pick(layers, 'prompt') ?? CLUSTER_PROMPT,
    max_prompt_chars: pick(layers, 'max_prompt_chars') ?? 300_000,
  }),
  // Cluster's calls depend on each other: no batch mode, nothing of it in the slice.
  slice: (s) => ({ ...llmSlice(s), prompt: s.prompt, max_prompt_chars: s.max_prompt_chars }),
  promptFiles: (s) => [s.prompt],
  otherFiles: () => [],
  paths: (s) => [{ key: 'stages.cluster.prompt', path: s.prompt, kind: 'file', what: 'a prompt template' }],
};
