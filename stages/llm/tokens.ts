// Input tokens of a request, for the plan. OpenAI models are counted with
// their real tokenizer (gpt-tokenizer, offline): o200k_base for gpt-4o, gpt-5,
// gpt-4.1 and the o-series, cl100k_base for gpt-4 and gpt-3.5. Other models
// (Claude, open-weight models behind openai_compatible) have no public offline
// tokenizer: their count is an approximation, characters / 3.5, and says so.
import type { ChatMessage, ProviderName } from './types.ts';

export interface TokenCount {
  tokens: number;
  /** How it was counted, for the plan's output. */
  method: string;
}

type Counter = (text: string) => number;
const counters = new Map<string, Promise<Counter>>();

function encodingOf(provider: ProviderName, model: string): 'o200k_base' | 'cl100k_base' | null {
  if (provider !== 'openai' && provider !== 'azure') return null;
  const m = model.toLowerCase();
  if (/^(gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|o1|o3|o4|chatgpt-4o)/.test(m)) return 'o200k_base';
  if (/^(gpt-4|gpt-3\.5)/.test(m)) return 'cl100k_base';
  return null;
}

function counter(encoding: 'o200k_base' | 'cl100k_base'): Promise<Counter> {
  let c = counters.get(encoding);
  if (!c) {
    // Loaded on first use: the ranks take ~100 ms to load and only the plan counts tokens.
    c = (encoding === 'o200k_base' ? import('gpt-tokenizer/encoding/o200k_base') : import('gpt-tokenizer/encoding/cl100k_base')).then((m) => (text: string) => m.countTokens(text));
    counters.set(encoding, c);
  }
  return c;
}

/** Per-message overhead of the chat format (role and separators), as OpenAI documents it: about 4 tokens. */
const PER_MESSAGE = 4;

export async function countInputTokens(provider: ProviderName, model: string, messages: readonly ChatMessage[], schema: Record<string, unknown> | null): Promise<TokenCount> {
  const texts = [...messages.map((m) => m.content), ...(schema ? [JSON.stringify(schema)] : [])];
  const encoding = encodingOf(provider, model);
  if (encoding) {
    const count = await counter(encoding);
    return { tokens: texts.reduce((n, t) => n + count(t), 0) + PER_MESSAGE * messages.length, method: `tokenizer ${encoding}` };
  }
  const chars = texts.reduce((n, t) => n + t.length, 0);
  return { tokens: Math.ceil(chars / 3.5) + PER_MESSAGE * messages.length, method: 'approximation: characters / 3.5' };
}

/** Output tokens assumed for one call of a step before any answer was seen (the plan, the budget's first reservations). */
export function defaultOutputTokens(step: string): number {
  if (step.startsWith('summarize')) return 700;
  if (step.startsWith('categorize')) return 2500;
  if (step.startsWith('cluster')) return 6000;
  return 1000;
}
