// The provider registry: one line per provider, its spec (providers/<name>.ts:
// factory, batch support; its endpoint is in providers/endpoints.ts). Factories are
// cheap (no SDK import, no key lookup); each imports its SDK and reads its key
// on the first call. The compiler asks for a spec for every name in
// PROVIDER_NAMES (llm/types.ts).
import { LlmConfigError } from '../errors.ts';
import type { LlmSettings, ProviderName } from '../types.ts';
import { anthropicBedrockSpec } from './anthropic-bedrock.ts';
import { anthropicSpec } from './anthropic.ts';
import { azureSpec } from './azure.ts';
import { openaiCompatibleSpec } from './openai-compatible.ts';
import { openaiSpec } from './openai.ts';
import type { NetworkProvider, ProviderFactory, ProviderOptions, ProviderSpec } from './shared.ts';

export type NetworkProviderName = Exclude<ProviderName, 'offline'>;

export const PROVIDER_SPECS: Readonly<Record<NetworkProviderName, ProviderSpec>> = {
  openai: openaiSpec,
  azure: azureSpec,
  anthropic: anthropicSpec,
  anthropic_bedrock: anthropicBedrockSpec,
  openai_compatible: openaiCompatibleSpec,
};

/** A network provider's spec, or undefined (offline, or a name no spec has). */
export function providerSpec(name: string): ProviderSpec | undefined {
  return name !== 'offline' && Object.hasOwn(PROVIDER_SPECS, name) ? PROVIDER_SPECS[name as NetworkProviderName] : undefined;
}

export const PROVIDER_FACTORIES: Readonly<Record<NetworkProviderName, ProviderFactory>> = Object.fromEntries(
  Object.entries(PROVIDER_SPECS).map(([name, spec]) => [name, spec.create]),
) as Record<NetworkProviderName, ProviderFactory>;

export function createProvider(settings: LlmSettings, opts: ProviderOptions): NetworkProvider {
  const name = settings.provider as string;
  if (name === 'offline') {
    throw new LlmConfigError('the offline provider does not answer prompts through the LLM client; the stage computes its answer itself');
  }
  const spec = providerSpec(name);
  if (!spec) {
    throw new LlmConfigError(`unknown LLM provider "${name}"; accepted: offline, ${Object.keys(PROVIDER_SPECS).join(', ')}`);
  }
  return spec.create(settings, opts);
}

export type { NetworkProvider, ProviderAnswer, ProviderFactory, ProviderOptions, ProviderSpec } from './shared.ts';
