// Typed failures of the LLM layer. Messages are meant for people and logs, so
// they never carry a key: provider messages are passed through redactSecrets
// and SDK errors are not attached as `cause` (their bodies may echo a key).

export class LlmError extends Error {
  override name = 'LlmError';
}

/** A required credential is absent. Thrown at the first call, never at construction. */
export class MissingCredentialsError extends LlmError {
  override name = 'MissingCredentialsError';
  readonly provider: string;
  /** The environment variable (or variables, joined by " or ") that should hold it. */
  readonly variable: string;

  constructor(provider: string, variable: string, hint = '') {
    super(
      `${provider}: missing credentials: set ${variable} in the environment or in the workspace .env file${hint ? ` (${hint})` : ''}`,
    );
    this.provider = provider;
    this.variable = variable;
  }
}

/** The settings cannot work (e.g. openai_compatible without base_url). */
export class LlmConfigError extends LlmError {
  override name = 'LlmConfigError';
}

export type ProviderErrorKind = 'http' | 'connection' | 'timeout' | 'response';

/** The provider did not produce an answer. `retryable` drives retry.ts. */
export class ProviderError extends LlmError {
  override name = 'ProviderError';
  readonly provider: string;
  /** HTTP status, or null when no response arrived. */
  readonly status: number | null;
  readonly kind: ProviderErrorKind;
  readonly retryable: boolean;
  /** Delay the server asked for (Retry-After / retry-after-ms), in ms. */
  readonly retryAfterMs: number | null;
  /** HTTP attempts made before giving up (set by the client). */
  attempts: number;

  constructor(init: {
    provider: string;
    message: string;
    status?: number | null;
    kind: ProviderErrorKind;
    retryable: boolean;
    retryAfterMs?: number | null;
  }) {
    super(init.message);
    this.provider = init.provider;
    this.status = init.status ?? null;
    this.kind = init.kind;
    this.retryable = init.retryable;
    this.retryAfterMs = init.retryAfterMs ?? null;
    this.attempts = 0;
  }
}

export interface AnswerIssue {
  /** Dotted path into the answer ("" for the whole answer). */
  path: string;
  message: string;
}

/** The model kept answering with something the schema rejects. */
export class InvalidAnswerError extends LlmError {
  override name = 'InvalidAnswerError';
  readonly step: string;
  readonly requestHash: string;
  readonly issues: AnswerIssue[];
  /** The last answer, cut to 2000 characters. */
  readonly lastAnswer: string;
  readonly attempts: number;

  constructor(init: { step: string; requestHash: string; issues: AnswerIssue[]; lastAnswer: string; attempts: number; asks: number }) {
    super(
      `${init.step}: the answer did not match the expected shape after ${init.asks} ${init.asks === 1 ? 'try' : 'tries'}: ` +
        formatIssues(init.issues, 3),
    );
    this.step = init.step;
    this.requestHash = init.requestHash;
    this.issues = init.issues;
    this.lastAnswer = init.lastAnswer.length > 2000 ? `${init.lastAnswer.slice(0, 2000)}…` : init.lastAnswer;
    this.attempts = init.attempts;
  }
}

/** The call would take the stage beyond settings.max_cost_usd. */
export class BudgetExceededError extends LlmError {
  override name = 'BudgetExceededError';
  readonly limitUsd: number;
  /** Spent so far plus what calls in flight are expected to cost. */
  readonly committedUsd: number;
  /** Expected cost of the refused call, null when the model has no price. */
  readonly estimateUsd: number | null;
  /** Which cap: the stage's max_cost_usd, or the invocation's budget.max_cost_usd. */
  readonly scope: 'stage' | 'invocation';

  constructor(limitUsd: number, committedUsd: number, estimateUsd: number | null, model: string, scope: 'stage' | 'invocation' = 'stage', upperBoundUsd: number | null = estimateUsd) {
    const key = scope === 'stage' ? 'max_cost_usd' : 'budget.max_cost_usd (the whole invocation)';
    super(
      estimateUsd === null
        ? `budget: ${key} is ${usd(limitUsd)} but the price of model "${model}" is unknown, so the cost cannot be bounded; remove the cap or use a priced model`
        : `budget: stopping before a call expected to cost ${usd(estimateUsd)}${upperBoundUsd !== null && upperBoundUsd > estimateUsd ? ` (at most ${usd(upperBoundUsd)})` : ''}: ` +
            `${usd(committedUsd)} already spent or committed, limit ${key} ${usd(limitUsd)}`,
    );
    this.limitUsd = limitUsd;
    this.committedUsd = committedUsd;
    this.estimateUsd = estimateUsd;
    this.scope = scope;
  }
}

/** The run was interrupted (AbortSignal). */
export class AbortedError extends LlmError {
  override name = 'AbortError';
  constructor(message = 'LLM call aborted') {
    super(message);
  }
}

/** 408 (timeout), 409 (conflict/lock), 429 (rate limit) and every 5xx are worth another try. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 409 || status === 429 || status >= 500;
}

export function formatIssues(issues: AnswerIssue[], max: number): string {
  const shown = issues.slice(0, max).map((i) => `${i.path || '(answer)'}: ${i.message}`);
  const more = issues.length > max ? ` (and ${issues.length - max} more)` : '';
  return shown.join('; ') + more;
}

/** Replaces every occurrence of each secret (4+ characters) with "[redacted]". */
export function redactSecrets(text: string, secrets: readonly (string | null | undefined)[]): string {
  let out = text;
  for (const secret of secrets) {
    if (secret && secret.length >= 4) out = out.split(secret).join('[redacted]');
  }
  return out;
}

function usd(n: number): string {
  return `$${n.toFixed(n < 1 ? 4 : 2)}`;
}
