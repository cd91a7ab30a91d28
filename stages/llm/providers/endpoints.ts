// Where each provider's calls go: its base URL (base_url, then its variables,
// then its default), Azure's API version, Bedrock's region. A provider builds
// its client from these rules and endpoint.ts hashes them, so the two can
// never disagree. They live apart from the provider implementations because
// much more code needs the endpoint than sends a request: the plugin on every
// nx command, a stage's key script, every executor's input check. Those load
// this file, not the providers (about 0.1 s of TypeScript per process).
import type { EnvLookup } from '../env.ts';
import { endpointUrl, orNull, unlessDefault } from '../endpoint-url.ts';
import type { EndpointIdentity } from '../endpoint-url.ts';
import type { LlmSettings, ProviderName } from '../types.ts';

export interface ProviderEndpoint {
  /**
   * The non-secret environment variables that decide where its calls go (and
   * so enter its request hash and its stage's key). base_url from
   * pipeline.yaml is a setting, not here; keys, tokens and billing ids never.
   */
  envVars: readonly string[];
  /** The endpoint identity of its calls, read the way it reads them (settings, then `env`); null for its default endpoint. */
  identity(settings: LlmSettings, env: EnvLookup): EndpointIdentity | null;
}

export const DEFAULT_OPENAI_BASE_URL = 'https://api.openai.com/v1';

/** Where OpenAI calls go: base_url, else OPENAI_BASE_URL, else the public API. */
export function openaiBaseURL(settings: LlmSettings, env: EnvLookup): string {
  return settings.base_url ?? env('OPENAI_BASE_URL') ?? DEFAULT_OPENAI_BASE_URL;
}

export const DEFAULT_ANTHROPIC_BASE_URL = 'https://api.anthropic.com';

/** Where Anthropic calls go: base_url, else ANTHROPIC_BASE_URL, else the public API. */
export function anthropicBaseURL(settings: LlmSettings, env: EnvLookup): string {
  return settings.base_url ?? env('ANTHROPIC_BASE_URL') ?? DEFAULT_ANTHROPIC_BASE_URL;
}

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

export const DEFAULT_BEDROCK_REGION = 'us-east-1';

export function bedrockRegion(env: EnvLookup): string {
  return env('AWS_DEFAULT_REGION') ?? env('AWS_REGION') ?? DEFAULT_BEDROCK_REGION;
}

export function defaultBedrockBaseURL(region: string): string {
  return `https://bedrock-runtime.${region}.amazonaws.com`;
}

/** Where Bedrock calls go: base_url, else ANTHROPIC_BEDROCK_BASE_URL, else the region's runtime endpoint. */
export function bedrockBaseURL(settings: LlmSettings, env: EnvLookup, region: string): string {
  return settings.base_url ?? env('ANTHROPIC_BEDROCK_BASE_URL') ?? defaultBedrockBaseURL(region);
}

/** Per network provider (the compiler asks for each one in PROVIDER_NAMES). */
export const PROVIDER_ENDPOINTS: Readonly<Record<Exclude<ProviderName, 'offline'>, ProviderEndpoint>> = {
  openai: {
    envVars: ['OPENAI_BASE_URL'],
    identity: (settings, env) => orNull(unlessDefault(openaiBaseURL(settings, env), DEFAULT_OPENAI_BASE_URL)),
  },
  azure: {
    envVars: [...AZURE_ENDPOINT_VARS, ...AZURE_API_VERSION_VARS],
    // No default resource: the endpoint is always part of the identity.
    identity: (settings, env) => {
      const endpoint = azureEndpoint(settings, env);
      return { ...(endpoint !== undefined ? { base_url: endpointUrl(azureBaseURL(endpoint)) } : {}), api_version: azureApiVersion(env) };
    },
  },
  anthropic: {
    envVars: ['ANTHROPIC_BASE_URL'],
    identity: (settings, env) => orNull(unlessDefault(anthropicBaseURL(settings, env), DEFAULT_ANTHROPIC_BASE_URL)),
  },
  anthropic_bedrock: {
    envVars: ['AWS_DEFAULT_REGION', 'AWS_REGION', 'ANTHROPIC_BEDROCK_BASE_URL'],
    identity: (settings, env) => {
      const region = bedrockRegion(env);
      return orNull({
        ...(region !== DEFAULT_BEDROCK_REGION ? { region } : {}),
        ...unlessDefault(bedrockBaseURL(settings, env, region), defaultBedrockBaseURL(region)),
      });
    },
  },
  openai_compatible: {
    // base_url is a setting (and required: the provider refuses to start without it).
    envVars: [],
    identity: (settings) => (settings.base_url ? { base_url: endpointUrl(settings.base_url) } : null),
  },
};
