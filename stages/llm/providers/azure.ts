// Azure OpenAI: the chat logic of openai.ts over an AzureOpenAI client. The
// model setting is the deployment name. Accepts the reference's variable names
// (AZURE_API_KEY, AZURE_ENDPOINT, AZURE_API_VERSION) and the SDK's own
// (AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT, OPENAI_API_VERSION). Every value
// is passed explicitly: the SDK refuses to start when it finds OPENAI_BASE_URL
// next to an endpoint, and reading process.env behind our back would ignore .env.
import type { EnvLookup } from '../env.ts';
import type { LlmSettings } from '../types.ts';
import { chatProvider } from './openai.ts';
import type { ChatClientHandle } from './openai.ts';
import { lazy, requireEnv, sdkTransport } from './shared.ts';
import type { ProviderFactory, ProviderSpec } from './shared.ts';
import { endpointUrl } from '../endpoint-url.ts';

export const DEFAULT_AZURE_API_VERSION = '2024-02-15-preview';

/** `https://res.openai.azure.com/` -> `https://res.openai.azure.com/openai` (kept when already there). */
export function azureBaseURL(endpoint: string): string {
  const trimmed = endpoint.replace(/\/+$/, '');
  return /\/openai$/.test(trimmed) ? trimmed : `${trimmed}/openai`;
}

export const AZURE_ENDPOINT_VARS = ['AZURE_ENDPOINT', 'AZURE_OPENAI_ENDPOINT'] as const;
export const AZURE_API_VERSION_VARS = ['AZURE_API_VERSION', 'OPENAI_API_VERSION'] as const;

/** The resource endpoint: base_url, else the first endpoint variable set (undefined: none). */
export function azureEndpoint(settings: LlmSettings, env: EnvLookup): string | undefined {
  return settings.base_url ?? AZURE_ENDPOINT_VARS.map((n) => env(n)).find((v) => v !== undefined);
}

export function azureApiVersion(env: EnvLookup): string {
  return AZURE_API_VERSION_VARS.map((n) => env(n)).find((v) => v !== undefined) ?? DEFAULT_AZURE_API_VERSION;
}

export const createAzureProvider: ProviderFactory = (settings, opts) => {
  const getClient = lazy(async (): Promise<ChatClientHandle> => {
    const keyVars = settings.api_key_env ? [settings.api_key_env] : ['AZURE_API_KEY', 'AZURE_OPENAI_API_KEY'];
    const apiKey = requireEnv(opts.env, 'azure', keyVars);
    const endpoint = azureEndpoint(settings, opts.env) ?? requireEnv(opts.env, 'azure', AZURE_ENDPOINT_VARS, 'or set base_url');
    const apiVersion = azureApiVersion(opts.env);
    const { AzureOpenAI } = await import('openai');
    const client = new AzureOpenAI({
      apiKey,
      baseURL: azureBaseURL(endpoint),
      apiVersion,
      deployment: settings.model,
      organization: null,
      project: null,
      ...sdkTransport(settings, opts),
    });
    return { client, secrets: [apiKey] };
  });
  return chatProvider({ name: 'azure', settings, getClient });
};

export const azureSpec: ProviderSpec = {
  create: createAzureProvider,
  endpointEnvVars: [...AZURE_ENDPOINT_VARS, ...AZURE_API_VERSION_VARS],
  // No default resource: the endpoint is always part of the identity.
  endpoint: (settings, env) => {
    const endpoint = azureEndpoint(settings, env);
    return { ...(endpoint !== undefined ? { base_url: endpointUrl(azureBaseURL(endpoint)) } : {}), api_version: azureApiVersion(env) };
  },
  noBatch:
    'Azure OpenAI batches need a separate Global-Batch deployment, whose name (the model) would change every request hash, ' +
    'so batched answers could never serve a normal run; not supported, normal calls are used',
};
