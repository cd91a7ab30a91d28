// The LLM settings every answered stage has (provider, model, sampling,
// throughput, budget, batch mode): their pipeline.yaml fields, the built-in
// defaults (the reference pipeline's, with the offline provider so a first run
// needs no key), how `defaults`, `stages.<stage>` and an analysis' own section
// resolve, and the part of them a stage's key covers. The stages' settings
// modules (stages/<stage>/settings.ts) add their own fields to these.
import { z } from 'zod';
import { ConfigError } from '../config-error.ts';
import type { SectionLayers } from '../stage-settings.ts';
import { endpointUrl } from './endpoint-url.ts';
import { BATCH_PROVIDERS, batchSupported, PROVIDER_NAMES } from './types.ts';
import type { LlmSettings, ProviderName } from './types.ts';

export const nonEmpty = z.string().min(1);

/** LLM settings any stage may set; every field optional, filled from `defaults` then built-ins. */
export const llmFields = {
  provider: z.enum(PROVIDER_NAMES).optional()
    .describe(`Who answers: offline (deterministic lexical analyzer, no network), ${PROVIDER_NAMES.filter((p) => p !== 'offline').join(', ')}.`),
  model: nonEmpty.optional().describe('Model id (for azure: the deployment name).'),
  temperature: z.number().min(0).max(2).optional(),
  max_tokens: z.int().positive().optional().describe('Upper bound on answer tokens.'),
  concurrency: z.int().positive().max(256).optional().describe('Calls in flight at once for this stage.'),
  base_url: z.string().url().nullable().optional().describe('Endpoint for openai_compatible servers (vLLM, Ollama, LM Studio) or a proxy.'),
  api_key_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/).nullable().optional()
    .describe('Name of the environment variable holding the key, when not the provider default.'),
  timeout_s: z.number().positive().optional().describe('Seconds before one HTTP attempt is abandoned.'),
  max_retries: z.int().min(0).max(20).optional().describe('Retries of a call after 408/409/429/5xx or a timeout.'),
  max_cost_usd: z.number().positive().nullable().optional().describe('Stop the stage before it would spend more than this.'),
  batch: z.boolean().optional()
    .describe('Send the stage\'s independent requests (summaries; categorize\'s parallel assignment) through the provider\'s batch API: about half price, results within the provider\'s 24-hour window. openai and anthropic only; cluster\'s calls depend on each other and stay normal calls.'),
  batch_poll_seconds: z.number().positive().optional().describe('Batch mode: seconds between two status checks of a running batch (default 30).'),
  batch_wait_minutes: z.number().min(0).optional()
    .describe('Batch mode: minutes to wait for a running batch before the stage ends as pending, not cached (default 30; the next run polls the same batch).'),
};

/** pipeline.yaml's `defaults` section: the LLM fields alone. */
export const LlmDefaults = z.strictObject(llmFields);
export type LlmOverride = z.infer<typeof LlmDefaults>;

/** The built-in LLM settings of a stage (the reference pipeline's, with the offline provider). */
export function llmDefaults(maxTokens: number): LlmSettings {
  return {
    provider: 'offline',
    model: 'gpt-5-2025-08-07',
    temperature: 1.0,
    max_tokens: maxTokens,
    concurrency: 10,
    base_url: null,
    api_key_env: null,
    timeout_s: 600,
    max_retries: 4,
    max_cost_usd: null,
    batch: false,
    batch_poll_seconds: 30,
    batch_wait_minutes: 30,
  };
}

/** The LLM fields each layer sets, the last one winning. */
function pickLlm(...layers: (object | undefined)[]): LlmOverride {
  const out: Record<string, unknown> = {};
  for (const layer of layers) {
    if (!layer) continue;
    for (const key of Object.keys(llmFields)) {
      const v = (layer as Record<string, unknown>)[key];
      if (v !== undefined) out[key] = v;
    }
  }
  return out as LlmOverride;
}

/** A stage's LLM settings: built-ins, then `defaults`, `stages.<stage>` and the analysis' own section. */
export function resolveLlm(stage: string, builtin: LlmSettings, layers: SectionLayers<object>): LlmSettings {
  const merged = { ...builtin, ...pickLlm(layers.defaults, layers.top, layers.own) } as LlmSettings;
  if (merged.batch && merged.provider !== 'offline' && !batchSupported(merged.provider)) {
    throw new ConfigError('pipeline.yaml', [
      `stages.${stage}.batch: true (set there, in an analysis' stages or in defaults) needs a provider with a batch API we support ` +
        `(${BATCH_PROVIDERS.join(', ')}); this stage uses ${merged.provider}. Remove batch for it or choose another provider.`,
    ]);
  }
  return merged;
}

/** The LLM settings that can change an answer: who answers (base_url without any user:password), and how. */
export function llmSlice(s: LlmSettings): Record<string, unknown> {
  return { provider: s.provider, model: s.model, temperature: s.temperature, max_tokens: s.max_tokens, base_url: s.base_url === null ? null : endpointUrl(s.base_url) };
}

/** Batch mode prices answers at the batch price (the outputs' costs change); in a slice only where it applies, so other keys stay as they were. */
export function batchedSlice(s: LlmSettings): Record<string, unknown> {
  return s.batch && s.provider !== 'offline' ? { batch: true } : {};
}

/** The keys of the LLM fields, for tools that say where each setting comes from. */
export const LLM_FIELD_NAMES = Object.keys(llmFields) as (keyof LlmSettings)[];
