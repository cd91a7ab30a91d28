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
import type { EndpointIdentity } from './endpoint-url.ts';
import { PROVIDER_ENDPOINTS } from './providers/endpoints.ts';
import type { LlmSettings, ProviderName } from './types.ts';

export { endpointUrl };
export type { EndpointIdentity };

/**
 * Per provider, the non-secret environment variables that decide where its
 * calls go (and so enter its request hash and its stage's key): each
 * provider's endpoint rules say them (providers/endpoints.ts). base_url from
 * pipeline.yaml is not here: it is a setting. Keys, tokens,
 * OPENAI_ORG_ID / OPENAI_PROJECT_ID (billing, not the server) and AWS_PROFILE
 * (credentials) are not either.
 */
export const ENDPOINT_ENV_VARS: Readonly<Record<ProviderName, readonly string[]>> = Object.fromEntries([
  ['offline', []],
  ...Object.entries(PROVIDER_ENDPOINTS).map(([name, endpoint]) => [name, endpoint.envVars]),
]) as Record<ProviderName, readonly string[]>;

/**
 * The endpoint identity of a provider's calls, read the way the provider
 * reads it (settings first, then `env`); null for the default endpoint (and
 * for the offline analyzer, and for an unknown provider, which fails when it
 * is created).
 */
export function endpointIdentity(settings: LlmSettings, env: EnvLookup): EndpointIdentity | null {
  const name = settings.provider;
  return name !== 'offline' && Object.hasOwn(PROVIDER_ENDPOINTS, name) ? PROVIDER_ENDPOINTS[name].identity(settings, env) : null;
}
