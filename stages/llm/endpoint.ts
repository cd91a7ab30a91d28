// Which server answers: part of every request hash. Two servers behind the
// same provider name and model name (a vLLM box and an Ollama box, a proxy and
// the public API, two Azure resources, two Bedrock regions) are different
// models as far as a stored answer is concerned.
//
// The identity holds only what decides the endpoint: the base URL (with any
// user:password and secret-looking query parameters removed), the Azure API
// version, the Bedrock region. Never a key or token. A provider talking to its
// default endpoint has no identity at all (null), so the keys of answers
// stored before endpoints were hashed stay valid where nothing changed.
import type { EnvLookup } from './env.ts';
import { endpointUrl } from './endpoint-url.ts';

export { endpointUrl };
import { bedrockBaseURL, bedrockRegion, DEFAULT_BEDROCK_REGION, defaultBedrockBaseURL } from './providers/anthropic-bedrock.ts';
import { anthropicBaseURL, DEFAULT_ANTHROPIC_BASE_URL } from './providers/anthropic.ts';
import { AZURE_API_VERSION_VARS, AZURE_ENDPOINT_VARS, azureApiVersion, azureBaseURL, azureEndpoint } from './providers/azure.ts';
import { DEFAULT_OPENAI_BASE_URL, openaiBaseURL } from './providers/openai.ts';
import type { LlmSettings, ProviderName } from './types.ts';

/** The endpoint part of a canonical request: `base_url`, `api_version`, `region` (only those that apply and differ from the default). */
export type EndpointIdentity = Record<string, string>;

/**
 * Per provider, the non-secret environment variables that decide where its
 * calls go (and so enter its request hash). The Nx plugin lists them as
 * `{ env: NAME }` inputs of the LLM targets. base_url from pipeline.yaml is
 * not here: it is a setting. Keys, tokens, OPENAI_ORG_ID / OPENAI_PROJECT_ID
 * (billing, not the server) and AWS_PROFILE (credentials) are not either.
 */
export const ENDPOINT_ENV_VARS: Readonly<Record<ProviderName, readonly string[]>> = {
  offline: [],
  openai: ['OPENAI_BASE_URL'],
  azure: [...AZURE_ENDPOINT_VARS, ...AZURE_API_VERSION_VARS],
  anthropic: ['ANTHROPIC_BASE_URL'],
  anthropic_bedrock: ['AWS_DEFAULT_REGION', 'AWS_REGION', 'ANTHROPIC_BEDROCK_BASE_URL'],
  openai_compatible: [],
};

function unlessDefault(url: string, defaultUrl: string): EndpointIdentity {
  const u = endpointUrl(url);
  return u === endpointUrl(defaultUrl) ? {} : { base_url: u };
}

const orNull = (id: EndpointIdentity): EndpointIdentity | null => (Object.keys(id).length > 0 ? id : null);

/**
 * The endpoint identity of a provider's calls, read the way the provider
 * reads it (settings first, then `env`); null for the default endpoint.
 */
export function endpointIdentity(settings: LlmSettings, env: EnvLookup): EndpointIdentity | null {
  switch (settings.provider) {
    case 'offline':
      return null;
    case 'openai':
      return orNull(unlessDefault(openaiBaseURL(settings, env), DEFAULT_OPENAI_BASE_URL));
    case 'anthropic':
      return orNull(unlessDefault(anthropicBaseURL(settings, env), DEFAULT_ANTHROPIC_BASE_URL));
    case 'openai_compatible':
      // base_url is required (the provider refuses to start without it).
      return settings.base_url ? { base_url: endpointUrl(settings.base_url) } : null;
    case 'azure': {
      // No default resource: the endpoint is always part of the identity.
      const endpoint = azureEndpoint(settings, env);
      return { ...(endpoint !== undefined ? { base_url: endpointUrl(azureBaseURL(endpoint)) } : {}), api_version: azureApiVersion(env) };
    }
    case 'anthropic_bedrock': {
      const region = bedrockRegion(env);
      return orNull({
        ...(region !== DEFAULT_BEDROCK_REGION ? { region } : {}),
        ...unlessDefault(bedrockBaseURL(settings, env, region), defaultBedrockBaseURL(region)),
      });
    }
    default:
      // An unknown provider fails when it is created; it has no endpoint to name.
      return null;
  }
}
