// The provider registry: name -> factory. Factories are cheap (no SDK import,
// no key lookup); each imports its SDK and reads its key on the first call.
import { LlmConfigError } from '../errors.ts';
import type { LlmSettings, ProviderName } from '../types.ts';
import { createAnthropicBedrockProvider } from './anthropic-bedrock.ts';
import { createAnthropicProvider } from './anthropic.ts';
import { createAzureProvider } from './azure.ts';
import { createOpenAICompatibleProvider } from './openai-compatible.ts';
import { createOpenAIProvider } from './openai.ts';
import type { NetworkProvider, ProviderFactory, ProviderOptions } from './shared.ts';

export type NetworkProviderName = Exclude<ProviderName, 'offline'>;

export const PROVIDER_FACTORIES: Readonly<Record<NetworkProviderName, ProviderFactory>> = {
  openai: createOpenAIProvider,
  azure: createAzureProvider,
  anthropic: createAnthropicProvider,
  anthropic_bedrock: createAnthropicBedrockProvider,
  openai_compatible: createOpenAICompatibleProvider,
};

export function createProvider(settings: LlmSettings, opts: ProviderOptions): NetworkProvider {
  const name = settings.provider as string;
  if (name === 'offline') {
    throw new LlmConfigError('the offline provider does not answer prompts through the LLM client; the stage computes its answer itself');
  }
  const factory = Object.hasOwn(PROVIDER_FACTORIES, name) ? PROVIDER_FACTORIES[name as NetworkProviderName] : undefined;
  if (!factory) {
    throw new LlmConfigError(`unknown LLM provider "${name}"; accepted: offline, ${Object.keys(PROVIDER_FACTORIES).join(', ')}`);
  }
  return factory(settings, opts);
}

export type { NetworkProvider, ProviderAnswer, ProviderFactory, ProviderOptions } from './shared.ts';
