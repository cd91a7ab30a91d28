// The real LLM client pointed at the loopback fake provider server, for tests
// of the stages that talk to a model: settings, and a store-backed `complete`.
import { join } from 'node:path';
import { BUILTIN_LLM } from '../../stages/config.ts';
import { answerOf } from '../../stages/llm/answer.ts';
import type { Complete } from '../../stages/llm/answer.ts';
import { createLlmClient } from '../../stages/llm/client.ts';
import type { LlmClientOptions } from '../../stages/llm/client.ts';
import { openStore } from '../../stages/llm/store.ts';
import type { LlmSettings, ProviderName } from '../../stages/llm/types.ts';
import type { FakeProviderServer } from './fake-provider-server.ts';

/**
 * Settings for tests of the LLM layer: the built-in defaults (stages/config.ts)
 * with a short timeout, no retries, one call at a time, temperature 1 and
 * max_tokens 1000, then `extra`.
 */
export function testLlmSettings(provider: ProviderName, model: string, extra: Partial<LlmSettings> = {}): LlmSettings {
  return { ...BUILTIN_LLM.summarize, provider, model, temperature: 1, max_tokens: 1000, concurrency: 1, timeout_s: 10, max_retries: 0, ...extra };
}

/** Where a provider's SDK reaches the fake server: OpenAI's under /v1, the others at its root. */
export function fakeBaseUrl(server: { url: string }, provider: ProviderName): string {
  return provider === 'openai' || provider === 'openai_compatible' ? `${server.url}/v1` : server.url;
}

/** OpenAI settings aimed at the fake server: one call at a time, no retries. */
export function fakeOpenAiSettings(server: FakeProviderServer, extra: Partial<LlmSettings> = {}): LlmSettings {
  return testLlmSettings('openai', 'gpt-5-mini', { max_tokens: 4000, base_url: fakeBaseUrl(server, 'openai'), ...extra });
}

/** `complete` through the real client and a response store in `dir/<storeName>`. */
export function completeOverFake(settings: LlmSettings, dir: string, storeName = 'store', extra: Partial<LlmClientOptions> = {}): Complete {
  const client = createLlmClient(settings, {
    store: openStore(join(dir, storeName)),
    env: { OPENAI_API_KEY: 'sk-test' },
    workspaceRoot: dir,
    retry: { sleep: async () => {} },
    ...extra,
  });
  return async (req) => answerOf(await client.complete(req), req.schema !== undefined);
}
