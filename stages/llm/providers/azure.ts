// Azure OpenAI: the chat logic of openai.ts over an AzureOpenAI client. The
// model setting is the deployment name. Accepts the reference's variable names
// (AZURE_API_KEY, AZURE_ENDPOINT, AZURE_API_VERSION) and the SDK's own
// (AZURE_OPENAI_API_KEY, AZURE_OPENAI_ENDPOINT, OPENAI_API_VERSION). Every value
// is passed explicitly: the SDK refuses to start when it finds OPENAI_BASE_URL
// next to an endpoint, and reading process.env behind our back would ignore .env.
import { chatProvider } from './openai.ts';
import type { ChatClientHandle } from './openai.ts';
import { lazy, requireEnv, sdkTransport } from './shared.ts';
import type { ProviderFactory, ProviderSpec } from './shared.ts';
import { AZURE_ENDPOINT_VARS, azureApiVersion, azureBaseURL, azureEndpoint } from './endpoints.ts';

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
  noBatch:
    'Azure OpenAI batches need a separate Global-Batch deployment, whose name (the model) would change every request hash, ' +
    'so batched answers could never serve a normal run; not supported, normal calls are used',
};
