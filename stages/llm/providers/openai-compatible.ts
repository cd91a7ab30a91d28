// OpenAI-compatible servers (vLLM, Ollama, LM Studio, proxies): the chat logic
// of openai.ts at settings.base_url. The key is optional (api_key_env names
// it). Many such servers lack json_schema support: the provider tries it, and
// on a 400/422 that names the format steps down to JSON mode and then to a
// prompt instruction, remembering the step for later calls; the client
// extracts and validates the JSON either way.
import { LlmConfigError } from '../errors.ts';
import { chatProvider } from './openai.ts';
import type { ChatClientHandle } from './openai.ts';
import { lazy, requireEnv, sdkTransport } from './shared.ts';
import type { ProviderFactory, ProviderSpec } from './shared.ts';

export const createOpenAICompatibleProvider: ProviderFactory = (settings, opts) => {
  const getClient = lazy(async (): Promise<ChatClientHandle> => {
    if (!settings.base_url) {
      throw new LlmConfigError('openai_compatible: base_url is required (e.g. http://localhost:8000/v1 for vLLM, http://localhost:11434/v1 for Ollama)');
    }
    const apiKey = settings.api_key_env ? requireEnv(opts.env, 'openai_compatible', [settings.api_key_env]) : null;
    const { OpenAI } = await import('openai');
    const client = new OpenAI({
      // Local servers usually ignore the key; the SDK still wants one.
      apiKey: apiKey ?? 'not-needed',
      baseURL: settings.base_url,
      organization: null,
      project: null,
      ...sdkTransport(settings, opts),
    });
    return { client, secrets: apiKey ? [apiKey] : [] };
  });
  return chatProvider({ name: 'openai_compatible', settings, getClient });
};

export const openaiCompatibleSpec: ProviderSpec = {
  create: createOpenAICompatibleProvider,
  noBatch: 'OpenAI-compatible servers (vLLM, Ollama, LM Studio, proxies) have no common batch API; not supported, normal calls are used',
};
