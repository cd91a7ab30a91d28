// summarize's settings: the LLM fields and its prompt.
import { z } from 'zod';
import { batchedSlice, llmDefaults, llmFields, llmSlice, nonEmpty, resolveLlm } from '../llm/settings.ts';
import { pick } from '../stage-settings.ts';
import type { StageSettings } from '../stage-settings.ts';
import type { LlmSettings } from '../llm/types.ts';

export const SUMMARIZE_PROMPT = 'prompts/summarize.md';
export const SUMMARIZE_BUILTIN: LlmSettings = llmDefaults(32768);

const section = z.strictObject({
  ...llmFields,
  prompt: nonEmpty.optional().describe('Prompt template (Markdown, {PLACEHOLDER} style), relative to the workspace.'),
});

export type SummarizeSettings = LlmSettings & { prompt: string };

export const summarizeSettings: StageSettings<typeof section, SummarizeSettings> = {
  section,
  resolve: (layers) => ({ ...resolveLlm('summarize', SUMMARIZE_BUILTIN, layers), prompt: pick(layers, 'prompt') ?? SUMMARIZE_PROMPT }),
  slice: (s) => ({ ...llmSlice(s), ...batchedSlice(s), prompt: s.prompt }),
  promptFiles: (s) => [s.prompt],
  otherFiles: () => [],
  paths: (s) => [{ key: 'stages.summarize.prompt', path: s.prompt, kind: 'file', what: 'a prompt template' }],
};
