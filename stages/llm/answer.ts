// What a stage gets back from whoever answers it (the LLM client or the
// offline analyzer, both through the response store), and the model call
// every LLM step is given.
import type { LlmRequest, LlmResult, Usage } from './types.ts';

export interface Answer<T> {
  value: T;
  usage: Usage;
  costUsd: number | null;
  cached: boolean;
  requestHash: string;
}

/** An LLM client's result as a stage's answer: the validated value for structured requests, else the text. */
export function answerOf<T>(res: LlmResult<T>, structured: boolean): Answer<T> {
  return {
    value: (structured ? res.value : res.text) as T,
    usage: res.usage,
    costUsd: res.costUsd,
    cached: res.cached,
    requestHash: res.requestHash,
  };
}

/** The store-backed model call every LLM stage is given. */
export type Complete = <T>(req: LlmRequest<T>) => Promise<Answer<T>>;
