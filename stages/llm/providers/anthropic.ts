// Anthropic Messages API, direct (ANTHROPIC_API_KEY). Structured answers use
// messages.parse with output_config.format = zodOutputFormat(schema); its
// parse step is made lenient so an invalid (but paid) answer comes back as
// text for the client to re-ask about. Where the server or the helper cannot
// take the schema, the schema goes into the system prompt instead. The
// Bedrock provider reuses messagesProvider with its own client.
import type { Anthropic } from '@anthropic-ai/sdk';
import type { MessageCreateParamsNonStreaming } from '@anthropic-ai/sdk/resources/messages/messages';
import type { zodOutputFormat as ZodOutputFormat } from '@anthropic-ai/sdk/helpers/zod';
import type { ChatMessage, LlmSettings } from '../types.ts';
import {
  jsonInstruction,
  lazy,
  malformed,
  requireEnv,
  sdkTransport,
  toProviderError,
  usage,
  withFormatFallback,
} from './shared.ts';
import type { NetworkProvider, ProviderAnswer, ProviderFactory, ProviderOptions, ProviderRequest, ProviderSpec } from './shared.ts';
import { anthropicBaseURL } from './endpoints.ts';

/** The part of an Anthropic SDK client we use; AnthropicBedrock has it too. */
export interface MessagesClient {
  messages: Pick<Anthropic['messages'], 'create' | 'parse'>;
}

export interface MessagesClientHandle {
  client: MessagesClient;
  secrets: string[];
}

const FORMAT_WORDS = /output_config|output_format|json_schema|structured output/i;

/** System messages become the top-level `system` string; the rest stay in order. */
export function splitSystem(messages: ChatMessage[]): { system: string | undefined; messages: { role: 'user' | 'assistant'; content: string }[] } {
  const system = messages.filter((m) => m.role === 'system').map((m) => m.content);
  const rest = messages.filter((m) => m.role !== 'system') as { role: 'user' | 'assistant'; content: string }[];
  return { system: system.length ? system.join('\n\n') : undefined, messages: rest };
}

/**
 * The Messages API body of one call. With `parse`, output_config.format is the
 * zod helper's format (its parser is a function, so `JSON.stringify(body)` is
 * exactly what the SDK sends) and the answer is read with messages.parse.
 * The batch engine (stages/llm/batch/) sends this body as a batch request's
 * params, so a batched answer is the answer to the same request.
 */
export async function messagesWireRequest(req: ProviderRequest, schemaMode: boolean): Promise<{ body: MessageCreateParamsNonStreaming; parse: boolean }> {
  const format = req.schema && schemaMode ? await lenientFormat(req.schema.zod) : null;
  const split = splitSystem(req.messages);
  const system =
    req.schema && format === null ? [split.system, jsonInstruction(req.schema)].filter(Boolean).join('\n\n') : split.system;
  // temperature is sent as it always was, though this SDK version's types no longer list it.
  const body = {
    model: req.model,
    max_tokens: req.max_tokens,
    temperature: req.temperature,
    ...(system !== undefined ? { system } : {}),
    messages: split.messages,
  } as MessageCreateParamsNonStreaming;
  return format === null ? { body, parse: false } : { body: { ...body, output_config: { format } }, parse: true };
}

/** zodOutputFormat whose parse step keeps an answer that does not parse; null when the helper cannot express the schema. */
async function lenientFormat(zod: NonNullable<ProviderRequest['schema']>['zod']): Promise<ReturnType<typeof ZodOutputFormat> | null> {
  const { zodOutputFormat } = await import('@anthropic-ai/sdk/helpers/zod');
  try {
    const strict = zodOutputFormat(zod);
    return {
      ...strict,
      // Keep the answer when it does not parse: the client reports the zod issues and re-asks.
      parse: (content: string) => {
        try {
          return strict.parse(content);
        } catch {
          return undefined;
        }
      },
    };
  } catch {
    return null; // the helper cannot express this schema: ask through the prompt
  }
}

export function messagesProvider(init: { name: string; settings: LlmSettings; getClient: () => Promise<MessagesClientHandle> }): NetworkProvider {
  const { name } = init;
  let useSchema = true;

  async function once(handle: MessagesClientHandle, req: ProviderRequest, schemaMode: boolean, signal?: AbortSignal): Promise<ProviderAnswer> {
    try {
      const wire = await messagesWireRequest(req, schemaMode);
      if (wire.parse) {
        const message = await handle.client.messages.parse(wire.body, { signal });
        return { ...answerFromMessage(name, message), parsed: message.parsed_output ?? undefined };
      }
      const message = await handle.client.messages.create(wire.body, { signal });
      return answerFromMessage(name, message);
    } catch (err) {
      throw toProviderError(err, name, handle.secrets, signal);
    }
  }

  return {
    // The credentials and settings the client needs, checked without a request.
    async preflight() {
      await init.getClient();
    },
    async complete(req, signal) {
      const handle = await init.getClient();
      return withFormatFallback(
        {
          start: useSchema,
          // Without output_config.format: the JSON instruction in the prompt.
          lower: (schemaMode) => (req.schema && schemaMode ? false : null),
          words: FORMAT_WORDS,
          remember: (schemaMode) => {
            useSchema = schemaMode;
          },
        },
        (schemaMode) => once(handle, req, schemaMode, signal),
      );
    },
  };
}

/** Text and usage of a Messages API message (also of a batch's succeeded result). */
export function answerFromMessage(name: string, message: unknown): ProviderAnswer {
  const m = message as {
    content?: { type?: string; text?: string }[];
    usage?: { input_tokens?: number; output_tokens?: number; cache_read_input_tokens?: number | null; cache_creation_input_tokens?: number | null };
  } | null;
  if (!m || !Array.isArray(m.content)) throw malformed(name, 'no content');
  const text = m.content
    .filter((b) => b.type === 'text' && typeof b.text === 'string')
    .map((b) => b.text)
    .join('');
  const u = m.usage ?? {};
  // input_tokens excludes cache reads and writes; all of them were sent.
  const input = (u.input_tokens ?? 0) + (u.cache_read_input_tokens ?? 0) + (u.cache_creation_input_tokens ?? 0);
  return { text, usage: usage(input, u.output_tokens) };
}

/** The Anthropic SDK client the provider calls through (also the batch engine's); reads the key on first use. */
export async function createAnthropicClient(settings: LlmSettings, opts: ProviderOptions): Promise<{ client: Anthropic; secrets: string[] }> {
  const apiKey = requireEnv(opts.env, 'anthropic', [settings.api_key_env ?? 'ANTHROPIC_API_KEY']);
  const { Anthropic } = await import('@anthropic-ai/sdk');
  const client = new Anthropic({
    apiKey,
    baseURL: anthropicBaseURL(settings, opts.env),
    // The explicit timeout also keeps the SDK from refusing large max_tokens without streaming ("Streaming is required ...").
    ...sdkTransport(settings, opts),
  });
  return { client, secrets: [apiKey] };
}

export const createAnthropicProvider: ProviderFactory = (settings, opts) => {
  const getClient = lazy(() => createAnthropicClient(settings, opts));
  return messagesProvider({ name: 'anthropic', settings, getClient });
};

export const anthropicSpec: ProviderSpec = {
  create: createAnthropicProvider,
  noBatch: null,
};
