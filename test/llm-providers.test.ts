// Each provider, with its real SDK client, against the loopback fake server:
// the exact request body, auth, structured answers, key handling.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { z } from 'zod';
import { createLlmClient } from '../stages/llm/client.ts';
import { LlmConfigError, MissingCredentialsError, ProviderError } from '../stages/llm/errors.ts';
import { azureBaseURL } from '../stages/llm/providers/endpoints.ts';
import { schemaName, usesMaxCompletionTokens, usesResponsesApi } from '../stages/llm/providers/openai.ts';
import type { LlmSettings, ProviderName } from '../stages/llm/types.ts';
import { startFakeProviderServer } from './helpers/fake-provider-server.ts';
import type { FakeProviderServer } from './helpers/fake-provider-server.ts';
import { fakeBaseUrl, testLlmSettings } from './helpers/llm-over-fake.ts';

const Answer = z.object({ label: z.string(), tags: z.array(z.string()) });
const schema = { name: 'label answer', zod: Answer };
const GOOD = '{"label":"navigation","tags":["a","b"]}';
const messages = [
  { role: 'system' as const, content: 'You label runs.' },
  { role: 'user' as const, content: 'Label this run.' },
];

const KEYS = {
  OPENAI_API_KEY: 'sk-test-openai-0123456789',
  ANTHROPIC_API_KEY: 'sk-ant-test-0123456789',
  AZURE_API_KEY: 'azure-test-key-0123456789',
  AWS_ACCESS_KEY_ID: 'AKIAFAKEFAKEFAKE',
  AWS_SECRET_ACCESS_KEY: 'aws-secret-test-0123456789',
  COMPAT_KEY: 'compat-test-key-0123456789',
};

let server: FakeProviderServer;
let root: string;

beforeAll(async () => {
  server = await startFakeProviderServer();
  root = mkdtempSync(join(tmpdir(), 'llm-providers-'));
});
afterEach(() => {
  server.reset();
  vi.unstubAllEnvs();
});
afterAll(async () => {
  await server.close();
  rmSync(root, { recursive: true, force: true });
});

function settings(provider: ProviderName, model: string, extra: Partial<LlmSettings> = {}): LlmSettings {
  return testLlmSettings(provider, model, { temperature: 0.2, concurrency: 4, base_url: fakeBaseUrl(server, provider), ...extra });
}

function client(s: LlmSettings, env: NodeJS.ProcessEnv = KEYS) {
  return createLlmClient(s, { store: null, env, workspaceRoot: root });
}

describe('openai', () => {
  it('sends max_completion_tokens and a strict json_schema for gpt-5 models, and parses the answer', async () => {
    server.reply({ text: GOOD, usage: { input: 100, output: 20 } });
    const res = await client(settings('openai', 'gpt-5-mini')).complete({ step: 't', messages, schema });
    expect(res.value).toEqual({ label: 'navigation', tags: ['a', 'b'] });
    expect(res.usage).toEqual({ input_tokens: 100, output_tokens: 20, total_tokens: 120 });
    expect(res.costUsd).toBeCloseTo((100 * 0.25 + 20 * 2) / 1e6, 12);
    const req = server.requests[0]!;
    expect(req.path).toBe('/v1/chat/completions');
    expect(req.headers.authorization).toBe(`Bearer ${KEYS.OPENAI_API_KEY}`);
    expect(req.body).toMatchInlineSnapshot(`
      {
        "max_completion_tokens": 1000,
        "messages": [
          {
            "content": "You label runs.",
            "role": "system",
          },
          {
            "content": "Label this run.",
            "role": "user",
          },
        ],
        "model": "gpt-5-mini",
        "response_format": {
          "json_schema": {
            "name": "label_answer",
            "schema": {
              "$schema": "http://json-schema.org/draft-07/schema#",
              "additionalProperties": false,
              "properties": {
                "label": {
                  "type": "string",
                },
                "tags": {
                  "items": {
                    "type": "string",
                  },
                  "type": "array",
                },
              },
              "required": [
                "label",
                "tags",
              ],
              "type": "object",
            },
            "strict": true,
          },
          "type": "json_schema",
        },
        "temperature": 0.2,
      }
    `);
  });

  it('sends max_tokens (not max_completion_tokens) for other models, and no response_format without a schema', async () => {
    server.reply({ text: 'a summary' });
    const res = await client(settings('openai', 'gpt-4o')).complete({ step: 't', messages });
    expect(res.text).toBe('a summary');
    expect(res.value).toBeUndefined();
    expect(server.requests[0]!.body).toMatchInlineSnapshot(`
      {
        "max_tokens": 1000,
        "messages": [
          {
            "content": "You label runs.",
            "role": "system",
          },
          {
            "content": "Label this run.",
            "role": "user",
          },
        ],
        "model": "gpt-4o",
        "temperature": 0.2,
      }
    `);
  });

  it('uses the Responses API with max_output_tokens and text.format for gpt-5-pro', async () => {
    server.reply({ text: GOOD, usage: { input: 7, output: 3 } });
    const res = await client(settings('openai', 'gpt-5-pro')).complete({ step: 't', messages, schema });
    expect(res.value).toEqual({ label: 'navigation', tags: ['a', 'b'] });
    expect(res.usage).toEqual({ input_tokens: 7, output_tokens: 3, total_tokens: 10 });
    const req = server.requests[0]!;
    expect(req.path).toBe('/v1/responses');
    expect(req.body).toMatchInlineSnapshot(`
      {
        "input": [
          {
            "content": "You label runs.",
            "role": "system",
          },
          {
            "content": "Label this run.",
            "role": "user",
          },
        ],
        "max_output_tokens": 1000,
        "model": "gpt-5-pro",
        "temperature": 0.2,
        "text": {
          "format": {
            "name": "label_answer",
            "schema": {
              "$schema": "http://json-schema.org/draft-07/schema#",
              "additionalProperties": false,
              "properties": {
                "label": {
                  "type": "string",
                },
                "tags": {
                  "items": {
                    "type": "string",
                  },
                  "type": "array",
                },
              },
              "required": [
                "label",
                "tags",
              ],
              "type": "object",
            },
            "strict": true,
            "type": "json_schema",
          },
        },
      }
    `);
  });

  it('picks the token parameter by model name (o1/o3 fixed relative to the reference)', () => {
    for (const m of ['gpt-5', 'GPT-5-mini', 'gpt-5-2025-08-07', 'o4-mini', 'o3', 'o3-mini', 'o1-preview', 'o1']) {
      expect(usesMaxCompletionTokens(m), m).toBe(true);
    }
    for (const m of ['gpt-4o', 'gpt-4.1', 'llama-3-70b', 'claude-opus-4-5', 'foo1', 'o10']) {
      expect(usesMaxCompletionTokens(m), m).toBe(false);
    }
    expect(usesResponsesApi('gpt-5-pro-2025-10-06')).toBe(true);
    expect(usesResponsesApi('gpt-5')).toBe(false);
    expect(schemaName('label answer/v2')).toBe('label_answer_v2');
  });

  it('reads the key from the workspace .env file when the environment lacks it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'llm-dotenv-'));
    try {
      writeFileSync(join(dir, '.env'), '# keys\nexport OPENAI_API_KEY="sk-from-dotenv-file"\n');
      server.reply({ text: 'x' });
      await createLlmClient(settings('openai', 'gpt-4o'), { store: null, env: {}, workspaceRoot: dir }).complete({ step: 't', messages });
      expect(server.requests[0]!.headers.authorization).toBe('Bearer sk-from-dotenv-file');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('honours api_key_env', async () => {
    server.reply({ text: 'x' });
    await client(settings('openai', 'gpt-4o', { api_key_env: 'COMPAT_KEY' })).complete({ step: 't', messages });
    expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${KEYS.COMPAT_KEY}`);
  });
});

describe('azure', () => {
  it('calls the deployment with the api-version, the api-key header and max_tokens, even with OPENAI_BASE_URL set', async () => {
    vi.stubEnv('OPENAI_BASE_URL', 'http://127.0.0.1:9/should-not-be-used');
    server.reply({ text: GOOD });
    const res = await client(settings('azure', 'my-gpt4o-deployment')).complete({ step: 't', messages, schema });
    expect(res.value).toEqual({ label: 'navigation', tags: ['a', 'b'] });
    const req = server.requests[0]!;
    expect(req.path).toBe('/openai/deployments/my-gpt4o-deployment/chat/completions');
    expect(req.query).toEqual({ 'api-version': '2024-02-15-preview' });
    expect(req.headers['api-key']).toBe(KEYS.AZURE_API_KEY);
    expect(res.costUsd).toBeNull(); // a deployment name is not a priced model id
    expect(req.body).toMatchInlineSnapshot(`
      {
        "max_tokens": 1000,
        "messages": [
          {
            "content": "You label runs.",
            "role": "system",
          },
          {
            "content": "Label this run.",
            "role": "user",
          },
        ],
        "model": "my-gpt4o-deployment",
        "response_format": {
          "json_schema": {
            "name": "label_answer",
            "schema": {
              "$schema": "http://json-schema.org/draft-07/schema#",
              "additionalProperties": false,
              "properties": {
                "label": {
                  "type": "string",
                },
                "tags": {
                  "items": {
                    "type": "string",
                  },
                  "type": "array",
                },
              },
              "required": [
                "label",
                "tags",
              ],
              "type": "object",
            },
            "strict": true,
          },
          "type": "json_schema",
        },
        "temperature": 0.2,
      }
    `);
  });

  it('accepts AZURE_ENDPOINT and AZURE_API_VERSION (the reference names)', async () => {
    server.reply({ text: 'x' });
    const env = { AZURE_API_KEY: KEYS.AZURE_API_KEY, AZURE_ENDPOINT: `${server.url}/`, AZURE_API_VERSION: '2025-01-01-preview' };
    await client(settings('azure', 'dep', { base_url: null }), env).complete({ step: 't', messages });
    expect(server.requests[0]!.url).toBe('/openai/deployments/dep/chat/completions?api-version=2025-01-01-preview');
    expect(azureBaseURL('https://x.openai.azure.com/')).toBe('https://x.openai.azure.com/openai');
    expect(azureBaseURL('https://x.openai.azure.com/openai')).toBe('https://x.openai.azure.com/openai');
  });

  it('names the missing endpoint variable', async () => {
    const c = client(settings('azure', 'dep', { base_url: null }), { AZURE_OPENAI_API_KEY: 'k-0123456789' });
    await expect(c.complete({ step: 't', messages })).rejects.toMatchObject({
      name: 'MissingCredentialsError',
      variable: 'AZURE_ENDPOINT or AZURE_OPENAI_ENDPOINT',
    });
  });
});

describe('anthropic', () => {
  it('sends system apart, output_config.format from zodOutputFormat, and parses parsed_output', async () => {
    server.reply({ text: GOOD, usage: { input: 50, output: 10 } });
    const res = await client(settings('anthropic', 'claude-opus-4-6')).complete({ step: 't', messages, schema });
    expect(res.value).toEqual({ label: 'navigation', tags: ['a', 'b'] });
    expect(res.costUsd).toBeCloseTo((50 * 5 + 10 * 25) / 1e6, 12);
    const req = server.requests[0]!;
    expect(req.path).toBe('/v1/messages');
    const auth = req.headers['x-api-key'] ?? req.headers.authorization;
    expect(auth).toContain(KEYS.ANTHROPIC_API_KEY);
    expect(req.body).toMatchInlineSnapshot(`
      {
        "max_tokens": 1000,
        "messages": [
          {
            "content": "Label this run.",
            "role": "user",
          },
        ],
        "model": "claude-opus-4-6",
        "output_config": {
          "format": {
            "schema": {
              "additionalProperties": false,
              "properties": {
                "label": {
                  "type": "string",
                },
                "tags": {
                  "items": {
                    "type": "string",
                  },
                  "type": "array",
                },
              },
              "required": [
                "label",
                "tags",
              ],
              "type": "object",
            },
            "type": "json_schema",
          },
        },
        "system": "You label runs.",
        "temperature": 0.2,
      }
    `);
  });

  it('accepts a large max_tokens without "Streaming is required" (explicit timeout)', async () => {
    server.reply({ text: 'long answer' });
    const res = await client(settings('anthropic', 'claude-opus-4-6', { max_tokens: 64000 })).complete({ step: 't', messages });
    expect(res.text).toBe('long answer');
    expect(server.requests[0]!.body.max_tokens).toBe(64000);
  });

  it('counts cache reads and writes as input tokens', async () => {
    server.reply({
      json: {
        id: 'msg_1', type: 'message', role: 'assistant', model: 'claude-opus-4-6', stop_reason: 'end_turn', stop_sequence: null,
        content: [{ type: 'text', text: 'hi' }],
        usage: { input_tokens: 10, output_tokens: 4, cache_read_input_tokens: 100, cache_creation_input_tokens: 5 },
      },
    });
    const res = await client(settings('anthropic', 'claude-opus-4-6')).complete({ step: 't', messages });
    expect(res.usage).toEqual({ input_tokens: 115, output_tokens: 4, total_tokens: 119 });
  });
});

describe('anthropic_bedrock', () => {
  it('signs with static AWS keys and posts to /model/<id>/invoke in the default region', async () => {
    server.reply({ text: GOOD });
    const model = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';
    const res = await client(settings('anthropic_bedrock', model)).complete({ step: 't', messages, schema });
    expect(res.value).toEqual({ label: 'navigation', tags: ['a', 'b'] });
    expect(res.costUsd).toBeCloseTo((10 * 3 + 5 * 15) / 1e6, 12);
    const req = server.requests[0]!;
    expect(req.path).toBe(`/model/${model}/invoke`);
    expect(req.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIAFAKEFAKEFAKE\/\d{8}\/us-east-1\/bedrock\/aws4_request/);
    expect(req.headers.authorization).not.toContain(KEYS.AWS_SECRET_ACCESS_KEY);
    const { anthropic_version, ...rest } = req.body;
    expect(typeof anthropic_version).toBe('string');
    expect(rest).toMatchInlineSnapshot(`
      {
        "max_tokens": 1000,
        "messages": [
          {
            "content": "Label this run.",
            "role": "user",
          },
        ],
        "output_config": {
          "format": {
            "schema": {
              "additionalProperties": false,
              "properties": {
                "label": {
                  "type": "string",
                },
                "tags": {
                  "items": {
                    "type": "string",
                  },
                  "type": "array",
                },
              },
              "required": [
                "label",
                "tags",
              ],
              "type": "object",
            },
            "type": "json_schema",
          },
        },
        "system": "You label runs.",
        "temperature": 0.2,
      }
    `);
  });

  it('takes the region from AWS_DEFAULT_REGION before AWS_REGION', async () => {
    server.reply({ text: 'x' });
    const env = { ...KEYS, AWS_REGION: 'eu-west-1', AWS_DEFAULT_REGION: 'eu-central-1' };
    await client(settings('anthropic_bedrock', 'anthropic.claude-haiku-4-5-20251001-v1:0'), env).complete({ step: 't', messages });
    expect(server.requests[0]!.headers.authorization).toContain('/eu-central-1/bedrock/');
    server.reply({ text: 'x' });
    await client(settings('anthropic_bedrock', 'anthropic.claude-haiku-4-5-20251001-v1:0'), { ...KEYS, AWS_REGION: 'eu-west-1' }).complete({ step: 't', messages });
    expect(server.requests[1]!.headers.authorization).toContain('/eu-west-1/bedrock/');
  });

  it('without AWS keys fails at the first call naming the variable, before any network access', async () => {
    vi.stubEnv('AWS_PROFILE', '');
    const c = client(settings('anthropic_bedrock', 'us.anthropic.claude-opus-4-6-v1'), {});
    const err = await c.complete({ step: 't', messages }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MissingCredentialsError);
    expect((err as MissingCredentialsError).variable).toBe('AWS_ACCESS_KEY_ID');
    expect(server.requests).toHaveLength(0);
  });
});

describe('openai_compatible', () => {
  it('needs no key, tries json_schema, then steps down to JSON mode for good when the server rejects it', async () => {
    server.reply(
      { status: 400, error: "Invalid 'response_format': json_schema is not supported by this server" },
      { text: `Sure! ${GOOD}` },
      { text: GOOD },
    );
    const c = client(settings('openai_compatible', 'llama3.1:8b'), {});
    const first = await c.complete({ step: 't', messages, schema });
    expect(first.value).toEqual({ label: 'navigation', tags: ['a', 'b'] });
    expect(first.attempts).toBe(2);
    expect(first.costUsd).toBeNull();
    expect(server.requests[0]!.body.response_format.type).toBe('json_schema');
    const second = server.requests[1]!.body;
    expect(second.response_format).toEqual({ type: 'json_object' });
    expect(second.messages.at(-1).role).toBe('system');
    expect(second.messages.at(-1).content).toContain('JSON Schema');
    // The next call starts in JSON mode directly.
    await c.complete({ step: 't', messages: [{ role: 'user', content: 'again' }], schema });
    expect(server.requests[2]!.body.response_format).toEqual({ type: 'json_object' });
    expect(c.totals().unknownCostAnswers).toBe(2);
  });

  it('falls back to the prompt alone when JSON mode is rejected too', async () => {
    server.reply(
      { status: 400, error: 'response_format json_schema unsupported' },
      { status: 422, error: "'response_format.type' must be 'json_schema' or 'text' (json_object)" },
      { text: '```json\n' + GOOD + '\n```' },
    );
    const res = await client(settings('openai_compatible', 'lmstudio-model'), {}).complete({ step: 't', messages, schema });
    expect(res.value).toEqual({ label: 'navigation', tags: ['a', 'b'] });
    expect(res.attempts).toBe(3);
    expect(server.requests[2]!.body.response_format).toBeUndefined();
  });

  it('requires base_url and uses the api_key_env key when named', async () => {
    await expect(client(settings('openai_compatible', 'm', { base_url: null }), {}).complete({ step: 't', messages })).rejects.toBeInstanceOf(
      LlmConfigError,
    );
    server.reply({ text: 'x' });
    await client(settings('openai_compatible', 'm', { api_key_env: 'COMPAT_KEY' })).complete({ step: 't', messages });
    expect(server.requests[0]!.headers.authorization).toBe(`Bearer ${KEYS.COMPAT_KEY}`);
    const missing = client(settings('openai_compatible', 'm', { api_key_env: 'VLLM_KEY' }), {});
    await expect(missing.complete({ step: 't', messages })).rejects.toMatchObject({ variable: 'VLLM_KEY' });
  });
});

describe('credentials', () => {
  const cases: [ProviderName, string, string][] = [
    ['openai', 'gpt-5', 'OPENAI_API_KEY'],
    ['anthropic', 'claude-opus-4-6', 'ANTHROPIC_API_KEY'],
    ['azure', 'dep', 'AZURE_API_KEY or AZURE_OPENAI_API_KEY'],
  ];
  for (const [provider, model, variable] of cases) {
    it(`${provider}: a missing key fails at the first call, naming ${variable}, not at construction`, async () => {
      const c = client(settings(provider, model), {}); // constructing does not throw
      const err = await c.complete({ step: 't', messages }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MissingCredentialsError);
      expect((err as MissingCredentialsError).variable).toBe(variable);
      expect((err as Error).message).toContain(variable);
      expect(server.requests).toHaveLength(0);
    });
  }

  const echo: [ProviderName, string, string][] = [
    ['openai', 'gpt-5', KEYS.OPENAI_API_KEY],
    ['anthropic', 'claude-opus-4-6', KEYS.ANTHROPIC_API_KEY],
    ['azure', 'dep', KEYS.AZURE_API_KEY],
    ['anthropic_bedrock', 'us.anthropic.claude-opus-4-6-v1', KEYS.AWS_SECRET_ACCESS_KEY],
  ];
  for (const [provider, model, key] of echo) {
    it(`${provider}: a server echoing the key does not put it into the thrown message`, async () => {
      server.reply({ status: 401, error: `Incorrect API key provided: ${key}` });
      const err = await client(settings(provider, model)).complete({ step: 't', messages }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderError);
      expect((err as ProviderError).status).toBe(401);
      expect((err as ProviderError).retryable).toBe(false);
      expect(String((err as Error).message)).not.toContain(key);
      expect(JSON.stringify(err)).not.toContain(key);
      expect((err as Error).message).toContain('[redacted]');
    });
  }
});
