// The contract between a stage and the stage runner (executors/lib/runner.ts),
// types only: what a stage is handed (its context, options, upstream reads,
// answerer, output folder) and what it gives back. It lives here so that no
// module under stages/ imports from executors/ (test/layering.test.ts).
import type { z } from 'zod';
import type { Answer } from './llm/answer.ts';
import type { LlmPlan } from './llm/client.ts';
import type { LlmStageName, ResolvedAnalysis, StageName } from './config.ts';
import type { SummaryInput } from './formats.ts';
import type { InputRecord } from './input-record.ts';
import type { ResponseStore } from './llm/store.ts';
import type { LlmRequest, LlmSettings, Usage } from './llm/types.ts';

export interface BaseOptions {
  analysis: string;
  outDir?: string;
}

export interface ExecutorContextLike {
  root: string;
  projectName?: string;
}

export interface StageContext {
  workspaceRoot: string;
  analysis: ResolvedAnalysis;
  /** Absolute output folder of a stage of this analysis. */
  outputOf(stage: StageName): string;
  /** Absolute folder for run logs: never an Nx output, never hashed. */
  logDir: string;
  /** Absolute path of the data root. */
  dataRoot: string;
  /** Absolute path of the response store. */
  storeDir: string;
  resolvePath(p: string): string;
}

export interface LlmRunOptions {
  /**
   * false (`--no-store`): neither read nor write the response store, nor the
   * answers carried in the stage's output (answers.jsonl is not read and not written).
   */
  store?: boolean;
}

/** Calls a stage would make: answers already stored, and calls to buy with their estimate. */
export interface CallPlan {
  reused: number;
  toPay: number;
  estInputTokens: number;
  /** Upper bound (output at max_tokens); null when the model has no price. */
  estCostUsd: number | null;
  /** True when every answer is known (all stored): the stage's result can be computed without a call. */
  known: boolean;
}

export interface StageAnswerer {
  readonly settings: LlmSettings;
  readonly stage: LlmStageName;
  /** The local store with the carried answers under it (null with --no-store). */
  readonly store: ResponseStore | null;
  /** META_ANALYSIS_REFRESH names this stage: no stored or carried answer is used. */
  readonly refresh: boolean;
  summarize(input: SummaryInput, template: string): Promise<Answer<string>>;
  /** The request summarize() sends for a run (batch mode sends the same). */
  summaryRequest(input: SummaryInput, template: string): LlmRequest<string>;
  offline<T>(step: string, input: unknown, compute: () => T): Answer<T>;
  /**
   * The answer a kept result was made from (summarize/reuse.ts: the previous
   * output's result for an unchanged input), from that output's answers.jsonl:
   * recorded as used and counted as reused, as the store hit that a full build
   * makes for it would be. null when the file does not hold it, and always
   * under --no-store or refresh (then nothing is kept).
   */
  kept(requestHash: string): Pick<Answer<unknown>, 'usage' | 'costUsd'> | null;
  complete<T>(req: LlmRequest<T>): Promise<Answer<T>>;
  /** What the store says about a request, without calling anyone (null for the offline provider). */
  probe(req: LlmRequest): LlmPlan | null;
  /**
   * Plan of a sequential stage: runs `walk` with a `complete` that serves
   * stored answers and stops at the first request the store cannot answer
   * (later requests depend on that answer). No call is made. `result` is the
   * walk's result when every answer was stored.
   */
  walkPlan<R>(walk: (complete: StageAnswerer['complete']) => Promise<R>, remainingCalls: (answered: number) => number): Promise<{ plan: CallPlan; result: R | null }>;
  /**
   * Writes `<dir>/answers.jsonl`: every answer used in this run, sorted by
   * request hash (call it while building the stage's output folder). Writes
   * nothing with --no-store.
   */
  writeAnswers(dir: string): void;
  totals(): {
    computed: number;
    reused: number;
    /** Of the reused answers, those taken from the output's answers.jsonl (then copied into the store). */
    carried: number;
    /** Usage and cost of calls paid in this run; the cost includes the abandoned attempts at their worst case. */
    paid: Usage;
    paidCostUsd: number | null;
    /** HTTP attempts abandoned after they were sent (timed out at timeout_s, or interrupted): the provider may still bill them. */
    abandoned: number;
    /** Their worst-case cost (prompt + max_tokens at the model's price), part of paidCostUsd; null when the model has no price. */
    abandonedCostUsd: number | null;
    /** Usage and cost of every answer used, wherever it came from (deterministic). */
    answers: Usage;
    answersCostUsd: number | null;
  };
  progressLine(failed: number): string;
  /**
   * Batch mode (`batch: true` on the stage): sends the requests the store
   * cannot answer through the provider's batch API at batch price and stores
   * every valid result, so the stage's own calls that follow are store hits
   * (counted as bought in this run). Errored, expired and over-budget
   * requests are left to those normal calls. Throws PendingBatchError when a
   * batch is still running after the stage's wait: the stage then fails (Nx
   * caches nothing) and a later run polls the same batch.
   */
  prefetchBatch(requests: LlmRequest[]): Promise<void>;
}

/** What a stage is handed: its context and options, upstream reads, progress and its own output folder. */
export interface StageTools<O> {
  ctx: StageContext;
  options: O & BaseOptions;
  /** Under Nx: the record the stage's key was computed from (stages/input-record.ts), its named and upstream files already checked; null outside Nx. */
  keyed: InputRecord | null;
  /**
   * An upstream stage's output file (missing: a message naming the target
   * that makes it), checked against the file's schema (not what the stage
   * writes: an UpstreamFormatError naming the file, the fields and the target
   * to re-run). The value is returned as read.
   */
  upstream<T>(stage: StageName, file: string, schema: Schema<T>): T;
  /** A progress line for `total` steps, named `unit` when the counters count something else (live on a TTY, every ~10% in CI). */
  progress(total: number, unit?: string): (done: number, extra: string) => void;
  /**
   * Builds the stage's output in a fresh folder and swaps it in; `verify`
   * lists what the built folder lacks (then nothing is replaced). An LLM
   * stage's answers used are written into it (answers.jsonl).
   */
  output<R>(build: (dir: string) => Promise<R>, verify?: (dir: string) => string[]): Promise<R>;
}

/** A file format's shape (a zod schema), shared by the stage that writes the file and those that read it. */
export type Schema<T> = z.ZodType<T>;

export interface LlmTools<O> extends StageTools<O> {
  answerer: StageAnswerer;
  /** Which analyzer answers (provider and model, or the offline analyzer). */
  label: string;
}

/** What a stage's run leaves for the run log, the console and the failure policy. */
export interface StageResult {
  /** The run log's own fields (an LLM stage's answer counters are added by the runner); null: no run log. */
  log: Record<string, unknown> | null;
  /** The closing lines, given the run log's path. */
  summary(logFile: string | null): string[];
  /** Runs that failed at the provider: the stage fails, so Nx caches nothing and a re-run asks again. */
  providerFailures?: number;
  /** Runs never sent because a budget was reached: the stage fails and says what would finish it. */
  notAttempted?: number;
}

export interface StageDefinition<O, In> {
  stage: StageName;
  /**
   * True for a run that writes nothing of the analysis (task-list's one-off
   * reference-style query): it takes no writer lock and writes no run log, so
   * it leaves out/ as it was.
   */
  writesNothing?(options: O): boolean;
  /** Reads what the stage works from (upstream outputs, prompts, the lock) before anything is asked. */
  read(t: StageTools<O>): In | Promise<In>;
  run(input: In, t: StageTools<O>): Promise<StageResult>;
}

export interface LlmStageDefinition<O, In> {
  stage: LlmStageName;
  read(t: StageTools<O>): In | Promise<In>;
  /** What the opening line counts: "<stage>: <subject> with <analyzer>". */
  subject(input: In): string;
  run(input: In, t: LlmTools<O>): Promise<StageResult>;
}

