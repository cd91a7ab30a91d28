// OpenAI: Chat Completions for most models, the Responses API for models that
// only speak it (gpt-5-pro). Structured answers use the SDK's zod helpers
// (zodResponseFormat + chat.completions.parse, zodTextFormat + responses.parse);
// when the server rejects the format, or the helper cannot express the schema,
// the provider steps down to JSON mode, then to a prompt instruction, and the
// client validates the extracted JSON with zod. The Azure and OpenAI-compatible
// providers reuse the chat logic with their own client.
import type { OpenAI } from 'openai';
import type { ChatCompletionCreateParamsNonStreaming } from 'openai/resources/chat/completions';
import type { ResponseCreateParamsNonStreaming } from 'openai/resources/responses/responses';
import type { LlmSettings } from '../types.ts';
import {
  lazy,
  malformed,
  parsedOrRaw,
  requireEnv,
  sdkTransport,
  toProviderError,
  usage,
  withFormatFallback,
  withJsonInstruction,
} from './shared.ts';
import type { NetworkProvider, ProviderAnswer, ProviderFactory, ProviderOptions, ProviderRequest, ProviderSpec } from './shared.ts';
import { openaiBaseURL } from './endpoints.ts';

/**
 * Reasoning models take `max_completion_tokens` and reject `max_tokens`. The
 * reference tested only "contains gpt-5 or o4", which sent o1/o3 names the
 * wrong parameter; we also cover names starting with o1/o3/o4.
 */
export function usesMaxCompletionTokens(model: string): boolean {
  const m = model.toLowerCase();
  return m.includes('gpt-5') || /^o[134](?:$|[-_.])/.test(m);
}

/** Models served only by the Responses API. */
export function usesResponsesApi(model: string): boolean {
  return model.toLowerCase().includes('gpt-5-pro');
}

/** How a structured answer is requested: the server's schema support, JSON mode, or only the prompt. */
export type StructuredMode = 'json_schema' | 'json_object' | 'prompt';

const FORMAT_WORDS = /response_format|json_schema|json_object|structured output|text\.format/i;

/** OpenAI schema names allow [a-zA-Z0-9_-]{1,64}. */
export function schemaName(name: string): string {
  const cleaned = name.replace(/[^a-zA-Z0-9_-]+/g, '_').slice(0, 64);
  return cleaned || 'answer';
}

export interface ChatClientHandle {
  client: OpenAI;
  /** Values to scrub from error messages. */
  secrets: string[];
}

export interface ChatProviderInit {
  name: string;
  settings: LlmSettings;
  getClient: () => Promise<ChatClientHandle>;
  /** Start with the server's json_schema support (default) or lower. */
  initialMode?: StructuredMode;
  /** Send gpt-5-pro style models to the Responses API (OpenAI only). */
  responsesApi?: boolean;
}

const DOWNGRADE: Record<StructuredMode, StructuredMode | null> = { json_schema: 'json_object', json_object: 'prompt', prompt: null };

/**
 * One call as it goes over the wire: which API, the body, and whether the
 * SDK's parse helper reads the answer. The format objects the zod helpers
 * build keep their parser in non-enumerable properties, so `JSON.stringify(body)`
 * is exactly the JSON the SDK sends; the batch engine (stages/llm/batch/)
 * writes it as a batch line, so a batched answer is the answer to the same request.
 */
export type OpenAIWireRequest =
  | { api: 'chat'; body: ChatCompletionCreateParamsNonStreaming; parse: boolean }
  | { api: 'responses'; body: ResponseCreateParamsNonStreaming; parse: boolean };

/** The URL path a batch line names for each API. */
export const OPENAI_BATCH_URLS = { chat: '/v1/chat/completions', responses: '/v1/responses' } as const;

/**
 * The request a provider call sends at structured mode `mode`. A mode the
 * helpers cannot express for this schema steps down to JSON mode here, as the
 * call itself does.
 */
export async function openaiWireRequest(req: ProviderRequest, mode: StructuredMode, responsesApi: boolean): Promise<OpenAIWireRequest> {
  return responsesApi && usesResponsesApi(req.model) ? responsesWireRequest(req, mode) : chatWireRequest(req, mode);
}

async function chatWireRequest(req: ProviderRequest, mode: StructuredMode): Promise<OpenAIWireRequest> {
  const tokenParam = usesMaxCompletionTokens(req.model) ? 'max_completion_tokens' : 'max_tokens';
  const base = {
    model: req.model,
    messages: req.messages,
    temperature: req.temperature,
    [tokenParam]: req.max_tokens,
  } as ChatCompletionCreateParamsNonStreaming;
  const format = req.schema && mode === 'json_schema' ? await buildFormat('chat', req.schema) : null;
  if (req.schema && format) return { api: 'chat', body: { ...base, response_format: format }, parse: true };
  // json_schema the helper cannot express is asked for in JSON mode.
  const useMode = req.schema && mode === 'json_schema' ? 'json_object' : mode;
  if (!req.schema) return { api: 'chat', body: base, parse: false };
  const messages = withJsonInstruction(req.messages, req.schema);
  const body = useMode === 'json_object' ? { ...base, messages, response_format: { type: 'json_object' as const } } : { ...base, messages };
  return { api: 'chat', body, parse: false };
}

async function responsesWireRequest(req: ProviderRequest, mode: StructuredMode): Promise<OpenAIWireRequest> {
  const format = req.schema && mode === 'json_schema' ? await buildFormat('text', req.schema) : null;
  const useMode = format === null && req.schema && mode === 'json_schema' ? 'json_object' : mode;
  const messages = req.schema && useMode !== 'json_schema' ? withJsonInstruction(req.messages, req.schema) : req.messages;
  const base: ResponseCreateParamsNonStreaming = {
    model: req.model,
    input: messages.map((m) => ({ role: m.role, content: m.content })),
    temperature: req.temperature,
    max_output_tokens: req.max_tokens,
  };
  if (req.schema && format) return { api: 'responses', body: { ...base, text: { format } }, parse: true };
  const body = req.schema && useMode === 'json_object' ? { ...base, text: { format: { type: 'json_object' as const } } } : base;
  return { api: 'responses', body, parse: false };
}

/** A provider over an OpenAI SDK client (OpenAI, Azure, OpenAI-compatible servers). */
export function chatProvider(init: ChatProviderInit): NetworkProvider {
  const { name } = init;
  // Lowered for good once the server rejects a mode, so later calls do not pay for the probe again.
  let mode: StructuredMode = init.initialMode ?? 'json_schema';

  async function once(handle: ChatClientHandle, req: ProviderRequest, useMode: StructuredMode, signal?: AbortSignal): Promise<ProviderAnswer> {
    try {
      const wire = await openaiWireRequest(req, useMode, init.responsesApi === true);
      return wire.api === 'responses' ? await viaResponses(handle, wire.body, wire.parse, signal) : await viaChat(handle, wire.body, wire.parse, signal);
    } catch (err) {
      throw toProviderError(err, name, handle.secrets, signal);
    }
  }

  async function viaChat(handle: ChatClientHandle, body: ChatCompletionCreateParamsNonStreaming, parse: boolean, signal?: AbortSignal): Promise<ProviderAnswer> {
    if (parse) {
      return parsedOrRaw(
        () => handle.client.chat.completions.parse(body, { signal }),
        (completion) => {
          const message = completion.choices[0]?.message;
          if (!message) throw malformed(name, 'no choices');
          const u = completion.usage;
          return {
            text: message.content ?? message.refusal ?? '',
            parsed: message.parsed ?? undefined,
            usage: usage(u?.prompt_tokens, u?.completion_tokens, u?.total_tokens),
          };
        },
        (raw) => chatAnswerFromJson(name, raw),
      );
    }
    const completion = await handle.client.chat.completions.create(body, { signal });
    return chatAnswerFromJson(name, completion);
  }

  async function viaResponses(handle: ChatClientHandle, body: ResponseCreateParamsNonStreaming, parse: boolean, signal?: AbortSignal): Promise<ProviderAnswer> {
    if (parse) {
      return parsedOrRaw(
        () => handle.client.responses.parse(body, { signal }),
        (response) => {
          const u = response.usage;
          return {
            text: response.output_text ?? '',
            parsed: response.output_parsed ?? undefined,
            usage: usage(u?.input_tokens, u?.output_tokens, u?.total_tokens),
          };
        },
        (raw) => responsesAnswerFromJson(name, raw),
      );
    }
    const response = await handle.client.responses.create(body, { signal });
    return responsesAnswerFromJson(name, response);
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
          start: mode,
          // The server cannot take this way of asking for JSON: step down and ask again at once.
          lower: (useMode) => (req.schema === undefined ? null : DOWNGRADE[useMode]),
          words: FORMAT_WORDS,
          remember: (useMode) => {
            mode = useMode;
          },
        },
        (useMode) => once(handle, req, useMode, signal),
      );
    },
  };
}

/**
 * The SDK's strict-schema format for a zod schema, or null when strict mode
 * cannot express it (the helpers throw, e.g. for optional fields); the caller
 * then asks in JSON mode and zod does the checking.
 */
async function buildFormat(kind: 'chat', schema: NonNullable<ProviderRequest['schema']>): Promise<ReturnType<typeof import('openai/helpers/zod').zodResponseFormat> | null>;
async function buildFormat(kind: 'text', schema: NonNullable<ProviderRequest['schema']>): Promise<ReturnType<typeof import('openai/helpers/zod').zodTextFormat> | null>;
async function buildFormat(kind: 'chat' | 'text', schema: NonNullable<ProviderRequest['schema']>) {
  const helpers = await import('openai/helpers/zod');
  try {
    return kind === 'chat'
      ? helpers.zodResponseFormat(schema.zod, schemaName(schema.name))
      : helpers.zodTextFormat(schema.zod, schemaName(schema.name));
  } catch {
    return null;
  }
}

/** Text and usage of a Chat Completions response body (also the body of a batch output line). */
export function chatAnswerFromJson(name: string, raw: unknown): ProviderAnswer {
  const body = raw as {
    choices?: { message?: { content?: string | null; refusal?: string | null } }[];
    usage?: { prompt_tokens?: number; completion_tokens?: number; total_tokens?: number } | null;
  } | null;
  const message = body?.choices?.[0]?.message;
  if (!message) throw malformed(name, 'no choices[0].message');
  return {
    text: message.content ?? message.refusal ?? '',
    usage: usage(body?.usage?.prompt_tokens, body?.usage?.completion_tokens, body?.usage?.total_tokens),
  };
}

/** Text and usage of a Responses API response body (also the body of a batch output line). */
export function responsesAnswerFromJson(name: string, raw: unknown): ProviderAnswer {
  const body = raw as {
    output?: { type?: string; content?: { type?: string; text?: string }[] }[];
    usage?: { input_tokens?: number; output_tokens?: number; total_tokens?: number } | null;
  } | null;
  if (!body || !Array.isArray(body.output)) throw malformed(name, 'no output');
  const text = body.output
    .filter((item) => item.type === 'message')
    .flatMap((item) => item.content ?? [])
    .filter((c) => c.type === 'output_text' && typeof c.text === 'string')
    .map((c) => c.text)
    .join('');
  return { text, usage: usage(body.usage?.input_tokens, body.usage?.output_tokens, body.usage?.total_tokens) };
}

/** The OpenAI SDK client the provider calls through (also the batch engine's); reads the key on first use. */
export async function createOpenAIClient(settings: LlmSettings, opts: ProviderOptions): Promise<ChatClientHandle> {
  const apiKey = requireEnv(opts.env, 'openai', [settings.api_key_env ?? 'OPENAI_API_KEY']);
  const { OpenAI } = await import('openai');
  const client = new OpenAI({
    apiKey,
    baseURL: openaiBaseURL(settings, opts.env),
    organization: opts.env('OPENAI_ORG_ID') ?? null,
    project: opts.env('OPENAI_PROJECT_ID') ?? null,
    ...sdkTransport(settings, opts),
  });
  return { client, secrets: [apiKey] };
}

export const createOpenAIProvider: ProviderFactory = (settings, opts) => {
  const getClient = lazy(() => createOpenAIClient(settings, opts));
  return chatProvider({ name: 'openai', settings, getClient, responsesApi: true });
};

export const openaiSpec: ProviderSpec = {
  create: createOpenAIProvider,
  noBatch: null,
};
