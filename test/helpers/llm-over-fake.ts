// The real LLM client pointed at the loopback fake provider server, for tests
// of the stages that talk to a model: settings, and a store-backed `complete`.
import { join } from 'node:path';
import { answerOf } from '../../stages/analyzer.ts';
import type { Complete } from '../../stages/categorize-llm.ts';
import { createLlmClient } from '../../stages/llm/client.ts';
import type { LlmClientOptions } from '../../stages/llm/client.ts';
import { openStore } from '../../stages/llm/store.ts';
import type { LlmSettings } from '../../stages/llm/types.ts';
import type { FakeProviderServer } from './fake-provider-server.ts';

/** OpenAI settings aimed at the fake server: one call at a time, no retries. */
export function fakeOpenAiSettings(server: FakeProviderServer, extra: Partial<LlmSettings> = {}): LlmSettings {
  return {
    provider: 'openai',
    model: 'gpt-5-mini',
    temperature: 1,
    max_tokens: 4000,
    concurrency: 1,
    base_url: `${server.url}/v1`,
    api_key_env: null,
    timeout_s: 10,
    max_retries: 0,
    max_cost_usd: null,
    batch: false,
    batch_poll_seconds: 30,
    batch_wait_minutes: 30,
    ...extra,
  };
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
