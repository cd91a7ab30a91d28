// A provider is said once: its module's spec, registered by one line in
// stages/llm/providers/index.ts, its endpoint rules in
// stages/llm/providers/endpoints.ts, named in PROVIDER_NAMES. What the pipeline
// knows of providers (endpoint variables and identity, batch support,
// factories, pipeline.yaml's enum) is derived from these.
import { describe, expect, it } from 'vitest';
import { BATCH_UNSUPPORTED } from '../stages/llm/batch/backend.ts';
import { ENDPOINT_ENV_VARS } from '../stages/llm/endpoint.ts';
import { PROVIDER_ENDPOINTS } from '../stages/llm/providers/endpoints.ts';
import { PROVIDER_FACTORIES, PROVIDER_SPECS } from '../stages/llm/providers/index.ts';
import { BATCH_PROVIDERS, PROVIDER_NAMES } from '../stages/llm/types.ts';
import { pipelineJsonSchema } from '../stages/config.ts';

describe('the provider registry', () => {
  it('has a spec for every network provider name, and derives the rest from them', () => {
    const network = PROVIDER_NAMES.filter((p) => p !== 'offline');
    expect(Object.keys(PROVIDER_SPECS).sort()).toEqual([...network].sort());
    expect(Object.keys(PROVIDER_FACTORIES).sort()).toEqual([...network].sort());
    expect(Object.keys(PROVIDER_ENDPOINTS).sort()).toEqual([...network].sort());
    for (const p of network) expect(ENDPOINT_ENV_VARS[p]).toBe(PROVIDER_ENDPOINTS[p].envVars);
    expect(ENDPOINT_ENV_VARS.offline).toEqual([]);
  });

  it('says batch support once: no reason exactly for the providers whose batch API the engine speaks', () => {
    for (const [name, spec] of Object.entries(PROVIDER_SPECS)) {
      expect(spec.noBatch === null, name).toBe((BATCH_PROVIDERS as readonly string[]).includes(name));
      expect(BATCH_UNSUPPORTED[name as keyof typeof BATCH_UNSUPPORTED] ?? null).toBe(spec.noBatch);
    }
  });

  it('offers every provider in pipeline.yaml\'s schema', () => {
    const schema = pipelineJsonSchema();
    for (const p of PROVIDER_NAMES) expect(schema).toContain(`"${p}"`);
  });
});
