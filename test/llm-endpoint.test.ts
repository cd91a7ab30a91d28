// Which server answers is part of every request hash: base_url (settings or
// environment), the Azure resource and API version, the Bedrock region. Keys
// never are. The default endpoint adds nothing, so keys stored before
// endpoints were hashed stay valid.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { canonicalRequest, createLlmClient, schemaJson } from '../stages/llm/client.ts';
import { ENDPOINT_ENV_VARS, endpointIdentity, endpointUrl } from '../stages/llm/endpoint.ts';
import { createEnvLookup } from '../stages/llm/env.ts';
import { canonicalJson, openStore, requestHash } from '../stages/llm/store.ts';
import type { LlmRequest, LlmSettings, ProviderName } from '../stages/llm/types.ts';
import { PROVIDER_NAMES } from '../stages/llm/types.ts';
import { startFakeProviderServer } from './helpers/fake-provider-server.ts';
import type { FakeProviderServer } from './helpers/fake-provider-server.ts';
import { testLlmSettings } from './helpers/llm-over-fake.ts';

const SECRETS = {
  OPENAI_API_KEY: 'sk-secret-openai-0123456789',
  ANTHROPIC_API_KEY: 'sk-ant-secret-0123456789',
  AZURE_API_KEY: 'azure-secret-key-0123456789',
  AZURE_OPENAI_API_KEY: 'azure-openai-secret-0123456789',
  AWS_ACCESS_KEY_ID: 'AKIASECRETSECRET',
  AWS_SECRET_ACCESS_KEY: 'aws-secret-access-0123456789',
  AWS_SESSION_TOKEN: 'aws-session-token-0123456789',
  AWS_BEARER_TOKEN_BEDROCK: 'bedrock-bearer-0123456789',
  COMPAT_KEY: 'compat-secret-0123456789',
};

function settings(provider: ProviderName, extra: Partial<LlmSettings> = {}): LlmSettings {
  return testLlmSettings(provider, provider === 'anthropic_bedrock' ? 'us.anthropic.claude-opus-4-6-v1' : 'gpt-5-mini', extra);
}

const req: LlmRequest = { step: 't', messages: [{ role: 'user', content: 'Summarize this run.' }] };
const env = (vars: Record<string, string>) => createEnvLookup({ env: vars, workspaceRoot: '/nonexistent-workspace' });
const hash = (s: LlmSettings, vars: Record<string, string> = {}) => requestHash(canonicalRequest(s, req, endpointIdentity(s, env(vars))));

/** The canonical request exactly as it was hashed before endpoints entered the key. */
function legacyHash(s: LlmSettings, r: LlmRequest = req): string {
  return requestHash({
    provider: s.provider,
    model: s.model,
    temperature: s.temperature,
    max_tokens: s.max_tokens,
    messages: r.messages.map((m) => ({ role: m.role, content: m.content })),
    schema: r.schema ? schemaJson(r.schema.zod) : null,
  });
}

describe('endpoint identity in the request hash', () => {
  it('keeps the old key for a provider at its default endpoint', () => {
    for (const p of ['openai', 'anthropic', 'anthropic_bedrock'] as const) {
      expect(endpointIdentity(settings(p), env({})), p).toBeNull();
      expect(hash(settings(p), SECRETS), p).toBe(legacyHash(settings(p)));
    }
    // Naming the default explicitly changes nothing either.
    expect(hash(settings('openai', { base_url: 'https://api.openai.com/v1/' }))).toBe(legacyHash(settings('openai')));
    expect(hash(settings('anthropic_bedrock'), { AWS_REGION: 'us-east-1' })).toBe(legacyHash(settings('anthropic_bedrock')));
    const schema = { name: 'x', zod: z.object({ a: z.string() }) };
    const s = settings('openai');
    expect(requestHash(canonicalRequest(s, { ...req, schema }, null))).toBe(legacyHash(s, { ...req, schema }));
  });

  it('openai: base_url (setting or OPENAI_BASE_URL) changes the key', () => {
    const a = hash(settings('openai', { base_url: 'http://proxy-a.internal/v1' }));
    const b = hash(settings('openai', { base_url: 'http://proxy-b.internal/v1' }));
    expect(a).not.toBe(b);
    expect(a).not.toBe(legacyHash(settings('openai')));
    expect(hash(settings('openai'), { OPENAI_BASE_URL: 'http://proxy-a.internal/v1' })).toBe(a);
    // The setting wins over the variable, as in the provider.
    expect(hash(settings('openai', { base_url: 'http://proxy-b.internal/v1' }), { OPENAI_BASE_URL: 'http://proxy-a.internal/v1' })).toBe(b);
    // Cosmetic differences are not different servers.
    expect(hash(settings('openai', { base_url: 'HTTP://Proxy-A.internal/v1/' }))).toBe(a);
  });

  it('openai_compatible: base_url changes the key', () => {
    const vllm = hash(settings('openai_compatible', { base_url: 'http://localhost:8000/v1' }));
    const ollama = hash(settings('openai_compatible', { base_url: 'http://localhost:11434/v1' }));
    expect(vllm).not.toBe(ollama);
    expect(hash(settings('openai_compatible', { base_url: 'http://localhost:8000/v1', api_key_env: 'COMPAT_KEY' }), SECRETS)).toBe(vllm);
  });

  it('anthropic: base_url or ANTHROPIC_BASE_URL changes the key', () => {
    const base = hash(settings('anthropic'));
    expect(hash(settings('anthropic', { base_url: 'http://gateway.internal' }))).not.toBe(base);
    expect(hash(settings('anthropic'), { ANTHROPIC_BASE_URL: 'http://gateway.internal' })).toBe(hash(settings('anthropic', { base_url: 'http://gateway.internal' })));
  });

  it('azure: the resource endpoint and the API version change the key; keys do not', () => {
    const s = settings('azure');
    const a = hash(s, { AZURE_ENDPOINT: 'https://res-a.openai.azure.com/' });
    expect(hash(s, { AZURE_ENDPOINT: 'https://res-b.openai.azure.com/' })).not.toBe(a);
    expect(hash(s, { AZURE_OPENAI_ENDPOINT: 'https://res-a.openai.azure.com' })).toBe(a);
    expect(hash(settings('azure', { base_url: 'https://res-a.openai.azure.com/openai' }))).toBe(a);
    expect(hash(s, { AZURE_ENDPOINT: 'https://res-a.openai.azure.com/', AZURE_API_VERSION: '2025-01-01-preview' })).not.toBe(a);
    expect(hash(s, { AZURE_ENDPOINT: 'https://res-a.openai.azure.com/', OPENAI_API_VERSION: '2025-01-01-preview' }))
      .toBe(hash(s, { AZURE_ENDPOINT: 'https://res-a.openai.azure.com/', AZURE_API_VERSION: '2025-01-01-preview' }));
    expect(hash(s, { ...SECRETS, AZURE_ENDPOINT: 'https://res-a.openai.azure.com/' })).toBe(a);
    expect(endpointIdentity(s, env({ AZURE_ENDPOINT: 'https://res-a.openai.azure.com/' }))).toEqual({
      base_url: 'https://res-a.openai.azure.com/openai',
      api_version: '2024-02-15-preview',
    });
  });

  it('anthropic_bedrock: the region (AWS_DEFAULT_REGION before AWS_REGION) and the base URL change the key; credentials do not', () => {
    const s = settings('anthropic_bedrock');
    const east = hash(s);
    const west = hash(s, { AWS_REGION: 'eu-west-1' });
    expect(west).not.toBe(east);
    expect(hash(s, { AWS_DEFAULT_REGION: 'eu-central-1', AWS_REGION: 'eu-west-1' })).toBe(hash(s, { AWS_REGION: 'eu-central-1' }));
    expect(hash(s, { ANTHROPIC_BEDROCK_BASE_URL: 'http://vpc-endpoint.internal' })).not.toBe(east);
    expect(hash(s, { AWS_REGION: 'eu-west-1', ...SECRETS, AWS_PROFILE: 'dev' })).toBe(west);
    expect(endpointIdentity(s, env({ AWS_REGION: 'eu-west-1' }))).toEqual({ region: 'eu-west-1' });
  });

  it('everything else stays out: timeouts, retries, concurrency, budget, api_key_env', () => {
    for (const p of PROVIDER_NAMES) {
      const s = settings(p, p === 'openai_compatible' ? { base_url: 'http://localhost:8000/v1' } : {});
      expect(hash({ ...s, timeout_s: 99, max_retries: 9, concurrency: 32, max_cost_usd: 5, api_key_env: 'COMPAT_KEY' }, SECRETS), p).toBe(hash(s, SECRETS));
    }
  });

  it('ENDPOINT_ENV_VARS lists exactly the variables that move a provider to another endpoint', () => {
    const candidates = [...new Set([...Object.values(ENDPOINT_ENV_VARS).flat(), ...Object.keys(SECRETS), 'AWS_PROFILE', 'OPENAI_ORG_ID', 'OPENAI_PROJECT_ID'])];
    for (const p of PROVIDER_NAMES) {
      const s = settings(p, p === 'openai_compatible' ? { base_url: 'http://localhost:8000/v1' } : {});
      const base = hash(s);
      const moving = candidates.filter((name) => hash(s, { [name]: name.includes('REGION') ? 'ap-south-1' : name.includes('VERSION') ? '2030-01-01' : 'http://other.internal/v9' }) !== base);
      expect(moving.sort(), p).toEqual([...ENDPOINT_ENV_VARS[p]].sort());
    }
  });

  it('strips credentials from a URL before it is hashed', () => {
    expect(endpointUrl('https://user:pa55@proxy.internal/v1/?api-key=SECRET&deployment=x&sig=abc#frag')).toBe('https://proxy.internal/v1?deployment=x');
    expect(endpointUrl('http://LOCALHOST:8000/v1/')).toBe('http://localhost:8000/v1');
    expect(endpointUrl('https://api.anthropic.com')).toBe('https://api.anthropic.com');
    expect(endpointUrl('not a url://me:pw@host/x/')).not.toContain('pw');
    const id = endpointIdentity(settings('openai_compatible', { base_url: 'https://bob:hunter2@llm.internal/v1?token=t0k3n' }), env({}));
    expect(id).toEqual({ base_url: 'https://llm.internal/v1' });
  });

  it('no key or token appears in any canonical request', () => {
    const urlWithSecrets = `https://u:${SECRETS.COMPAT_KEY}@host.internal/v1?api_key=${SECRETS.OPENAI_API_KEY}`;
    for (const p of PROVIDER_NAMES) {
      for (const base_url of [null, urlWithSecrets]) {
        const s = settings(p, { base_url, api_key_env: 'COMPAT_KEY' });
        const text = canonicalJson(canonicalRequest(s, req, endpointIdentity(s, env({ ...SECRETS, OPENAI_BASE_URL: urlWithSecrets, AZURE_ENDPOINT: urlWithSecrets }))));
        for (const secret of Object.values(SECRETS)) expect(text, `${p} ${base_url}`).not.toContain(secret);
      }
    }
  });
});

describe('endpoint identity through the real SDKs and the store', () => {
  let server: FakeProviderServer;
  let dir: string;
  beforeAll(async () => {
    server = await startFakeProviderServer();
  });
  afterEach(() => {
    server.reset();
    rmSync(dir, { recursive: true, force: true });
  });
  afterAll(async () => {
    await server.close();
  });

  function storedTexts(root: string): string[] {
    return readdirSync(root, { recursive: true, withFileTypes: true })
      .filter((d) => d.isFile())
      .map((d) => readFileSync(join(d.parentPath, d.name), 'utf8'));
  }

  it('another server is a store miss; a key never reaches the store', async () => {
    dir = mkdtempSync(join(tmpdir(), 'llm-endpoint-'));
    const storeDir = join(dir, 'store');
    const other = server.url.replace('127.0.0.1', 'localhost'); // the same fake, under another name: another server as far as the key knows
    const cases: { s: LlmSettings; vars: Record<string, string>; firstCached: boolean }[] = [
      { s: settings('openai', { base_url: `${server.url}/v1` }), vars: SECRETS, firstCached: false },
      // OPENAI_BASE_URL naming the same server (trailing slash aside): the same key.
      { s: settings('openai'), vars: { ...SECRETS, OPENAI_BASE_URL: `${server.url}/v1/` }, firstCached: true },
      { s: settings('openai', { base_url: `${other}/v1` }), vars: SECRETS, firstCached: false },
      { s: settings('openai_compatible', { base_url: `${server.url}/v1`, api_key_env: 'COMPAT_KEY' }), vars: SECRETS, firstCached: false },
      { s: settings('openai_compatible', { base_url: `${other}/v1`, api_key_env: 'COMPAT_KEY' }), vars: SECRETS, firstCached: false },
      { s: settings('azure'), vars: { ...SECRETS, AZURE_ENDPOINT: server.url }, firstCached: false },
      { s: settings('azure'), vars: { ...SECRETS, AZURE_ENDPOINT: server.url, AZURE_API_VERSION: '2025-01-01-preview' }, firstCached: false },
      { s: settings('anthropic', { base_url: server.url }), vars: SECRETS, firstCached: false },
      { s: settings('anthropic_bedrock', { base_url: server.url }), vars: { ...SECRETS, AWS_REGION: 'eu-west-1' }, firstCached: false },
      { s: settings('anthropic_bedrock', { base_url: server.url }), vars: { ...SECRETS, AWS_REGION: 'eu-central-1' }, firstCached: false },
    ];
    for (const { s, vars, firstCached } of cases) {
      const c = () => createLlmClient(s, { store: openStore(storeDir), env: vars, workspaceRoot: dir });
      const label = `${s.provider} ${s.base_url} ${vars['AZURE_API_VERSION'] ?? vars['AWS_REGION'] ?? ''}`;
      expect((await c().complete(req)).cached, label).toBe(firstCached);
      expect((await c().complete(req)).cached, label).toBe(true);
    }
    // The same prompt at nine distinct endpoints: nine answers bought, nine entries.
    expect(server.requests).toHaveLength(9);
    const texts = storedTexts(storeDir);
    expect(texts).toHaveLength(9);
    for (const t of texts) for (const secret of Object.values(SECRETS)) expect(t).not.toContain(secret);
  });
});
