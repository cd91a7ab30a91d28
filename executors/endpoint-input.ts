// Prints the endpoint identity of a provider as its calls would see it
// (settings, then the environment, then the workspace's .env), sanitized: no
// keys, no user:password. Used as an Nx `runtime` input of the LLM targets so
// that pointing a provider at another server through an environment variable
// (OPENAI_BASE_URL, AZURE_OPENAI_ENDPOINT, AWS_REGION, ...) invalidates them,
// without any secret entering a hash.
//   node executors/endpoint-input.ts <provider> [<base_url>]
import { endpointIdentity } from '../stages/llm/endpoint.ts';
import { createEnvLookup } from '../stages/llm/env.ts';
import type { LlmSettings, ProviderName } from '../stages/llm/types.ts';

const [provider, baseUrl] = process.argv.slice(2);
const settings = { provider: provider as ProviderName, base_url: baseUrl ?? null } as LlmSettings;
console.log(JSON.stringify({ provider, endpoint: endpointIdentity(settings, createEnvLookup({ workspaceRoot: process.cwd() })) }));
